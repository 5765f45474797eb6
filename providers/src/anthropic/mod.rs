//! The Anthropic Messages API adapter: endpoints, authentication and HTTP error handling.

mod errors;
mod stream;
mod wire;

use async_trait::async_trait;
use reqwest::{RequestBuilder, Response};

use self::errors::error_from_response;
use self::stream::decode_stream;
use self::wire::{Message, ModelList, messages_request};
use crate::response::{self, read_json};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

/// The API version this adapter's wire types follow, sent in the `anthropic-version` header.
const API_VERSION: &str = "2023-06-01";

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
        Ok(builder
            .header("x-api-key", self.api_key.header_value()?)
            .header("anthropic-version", API_VERSION))
    }

    /// Sends the request and returns the response if its status is a success.
    async fn send(&self, builder: RequestBuilder) -> Result<Response, ProviderError> {
        response::send(self.authorize(builder)?, error_from_response).await
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
        let message: Message = read_json(response, "message").await?;
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
        read_json::<ModelList>(response, "model list").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
