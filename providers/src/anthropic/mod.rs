//! The Anthropic Messages API adapter: endpoints, authentication and HTTP error handling.

mod errors;
mod stream;
mod wire;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Response};

use self::errors::error_from_response;
use self::stream::decode_stream;
use self::wire::{Message, ModelList, messages_request};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

/// The API version this adapter's wire types follow, sent in the `anthropic-version` header.
const API_VERSION: &str = "2023-06-01";

/// Maximum number of bytes of an error body that are read, so that a misbehaving server
/// cannot make the client buffer an unbounded body.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Adapter for Anthropic's Messages API.
#[derive(Debug, Clone)]
pub struct Anthropic {
    client: reqwest::Client,
    base_url: String,
    api_key: ApiKey,
}

impl Anthropic {
    /// Anthropic's public API. Endpoint paths, which start with `/v1`, are appended to it.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.anthropic.com";

    /// Creates an adapter that sends requests through `client` to `base_url`, such as
    /// [`Anthropic::DEFAULT_BASE_URL`]. A trailing slash on `base_url` is ignored.
    pub fn new(client: reqwest::Client, base_url: impl Into<String>, api_key: ApiKey) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        Self {
            client,
            base_url,
            api_key,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Adds the `x-api-key` header, marked sensitive so that HTTP logging does not print it,
    /// and the `anthropic-version` header.
    fn authorize(&self, builder: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        if self.api_key.expose().is_empty() {
            return Err(ProviderError::Authentication("API key is empty".to_owned()));
        }
        let mut key = HeaderValue::try_from(self.api_key.expose()).map_err(|_| {
            ProviderError::Authentication(
                "API key contains characters that are not allowed in an HTTP header".to_owned(),
            )
        })?;
        key.set_sensitive(true);
        Ok(builder
            .header("x-api-key", key)
            .header("anthropic-version", API_VERSION))
    }

    /// Sends the request and returns the response if its status is a success.
    async fn send(&self, builder: RequestBuilder) -> Result<Response, ProviderError> {
        let response = self
            .authorize(builder)?
            .send()
            .await
            .map_err(|error| ProviderError::from_transport(&error))?;

        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }

        let headers = response.headers().clone();
        let body = read_limited(response, MAX_ERROR_BODY_BYTES).await;
        let error = error_from_response(status, &headers, &body);
        tracing::debug!(
            http.response.status_code = status.as_u16(),
            error.type = error.code(),
            "provider returned an error status"
        );
        Err(error)
    }

    async fn post_messages(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<Response, ProviderError> {
        let body = messages_request(request, stream)?;
        self.send(self.client.post(self.url("/v1/messages")).json(&body))
            .await
    }
}

#[async_trait]
impl ChatProvider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "anthropic", gen_ai.request.model = %request.model)
    )]
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let response = self.post_messages(request, false).await?;

        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::from_transport(&error))?;
        let message: Message = serde_json::from_slice(&body)
            .map_err(|error| ProviderError::Decode(format!("invalid message: {error}")))?;

        Ok(ChatResponse::from(message))
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "anthropic", gen_ai.request.model = %request.model)
    )]
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.post_messages(request, true).await?;
        Ok(decode_stream(response.bytes_stream()))
    }

    /// Lists models, which costs no tokens.
    #[tracing::instrument(skip_all, fields(gen_ai.provider.name = "anthropic"))]
    async fn probe(&self) -> Result<(), ProviderError> {
        let response = self.send(self.client.get(self.url("/v1/models"))).await?;

        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::from_transport(&error))?;
        serde_json::from_slice::<ModelList>(&body)
            .map_err(|error| ProviderError::Decode(format!("invalid model list: {error}")))?;
        Ok(())
    }
}

/// Reads at most `limit` bytes of the body. A body that fails half way returns what arrived,
/// because the status alone already classifies the error.
async fn read_limited(response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let remaining = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(remaining)]);
        if body.len() == limit {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests;
