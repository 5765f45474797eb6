//! The HTTP client of the Chat Completions API: endpoints, bearer authentication and error
//! statuses, shared by OpenAI and the OpenAI-compatible providers.

use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{RequestBuilder, Response};

use super::errors::error_from_response;
use super::stream::decode_stream;
use super::wire::{Completion, ModelList, completion_request};
use crate::{ApiKey, ChatRequest, ChatResponse, EventStream, ProviderError};

/// Maximum number of bytes of an error body that are read, so that a misbehaving server
/// cannot make the client buffer an unbounded body.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The differences of an OpenAI-compatible provider from OpenAI's Chat Completions API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// Whether a streaming request sets `stream_options.include_usage`, without which
    /// OpenAI sends no usage in a stream.
    pub(crate) stream_usage_option: bool,
}

/// A Chat Completions endpoint with its key, spoken in one [`Dialect`].
#[derive(Debug, Clone)]
pub(crate) struct ChatCompletionsClient {
    client: reqwest::Client,
    base_url: String,
    api_key: ApiKey,
    dialect: Dialect,
}

impl ChatCompletionsClient {
    /// Creates a client for `base_url`, which includes the version path such as `/v1`. A
    /// trailing slash on `base_url` is ignored.
    pub(crate) fn new(
        client: reqwest::Client,
        base_url: impl Into<String>,
        api_key: ApiKey,
        dialect: Dialect,
    ) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        Self {
            client,
            base_url,
            api_key,
            dialect,
        }
    }

    pub(crate) async fn complete(
        &self,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.post_completion(request, false).await?;

        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::from_transport(&error))?;
        let completion: Completion = serde_json::from_slice(&body)
            .map_err(|error| ProviderError::Decode(format!("invalid chat completion: {error}")))?;

        ChatResponse::try_from(completion)
    }

    pub(crate) async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.post_completion(request, true).await?;
        Ok(decode_stream(response.bytes_stream()))
    }

    /// Lists the models, which costs no tokens.
    pub(crate) async fn probe(&self) -> Result<(), ProviderError> {
        let response = self.send(self.client.get(self.url("/models"))).await?;

        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::from_transport(&error))?;
        serde_json::from_slice::<ModelList>(&body)
            .map_err(|error| ProviderError::Decode(format!("invalid model list: {error}")))?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Adds the bearer token, marked sensitive so that HTTP logging does not print it.
    fn authorize(&self, builder: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.api_key.expose()))
            .map_err(|_| {
                ProviderError::Authentication(
                    "API key contains characters that are not allowed in an HTTP header".to_owned(),
                )
            })?;
        value.set_sensitive(true);
        Ok(builder.header(AUTHORIZATION, value))
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

    async fn post_completion(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<Response, ProviderError> {
        let body = completion_request(request, stream, &self.dialect)?;
        self.send(self.client.post(self.url("/chat/completions")).json(&body))
            .await
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
