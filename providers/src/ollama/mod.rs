//! The Ollama adapter for the native `/api/chat` endpoint: endpoints, optional authentication
//! and HTTP error handling.
//!
//! Ollama itself needs no API key. A key is sent as a bearer token only when one is
//! configured, for servers behind an authenticating proxy.

mod errors;
mod stream;
mod wire;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{RequestBuilder, Response};

use self::errors::error_from_response;
use self::stream::decode_stream;
use self::wire::{ChatChunk, Version, chat_request};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

/// Maximum number of bytes of an error body that are read, so that a misbehaving server
/// cannot make the client buffer an unbounded body.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Adapter for Ollama's native chat API.
#[derive(Debug, Clone)]
pub struct Ollama {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<ApiKey>,
}

impl Ollama {
    /// The address a local Ollama server listens on by default. Endpoint paths such as
    /// `/api/chat` are appended to it.
    pub const DEFAULT_BASE_URL: &'static str = "http://127.0.0.1:11434";

    /// Creates an adapter that sends requests through `client` to `base_url`, such as
    /// [`Ollama::DEFAULT_BASE_URL`]. A trailing slash on `base_url` is ignored. `api_key` is
    /// sent as `Authorization: Bearer` when present.
    pub fn new(
        client: reqwest::Client,
        base_url: impl Into<String>,
        api_key: Option<ApiKey>,
    ) -> Self {
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

    /// Adds the bearer token when a key is configured, marked sensitive so that HTTP logging
    /// does not print it.
    fn authorize(&self, builder: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        let Some(api_key) = &self.api_key else {
            return Ok(builder);
        };
        let mut value =
            HeaderValue::try_from(format!("Bearer {}", api_key.expose())).map_err(|_| {
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

    async fn post_chat(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<Response, ProviderError> {
        let body = chat_request(request, stream)?;
        self.send(self.client.post(self.url("/api/chat")).json(&body))
            .await
    }

    /// Reads a whole success body and parses it as `T`, naming `body_name` in a decode error.
    async fn read_json<T: serde::de::DeserializeOwned>(
        response: Response,
        body_name: &str,
    ) -> Result<T, ProviderError> {
        let body = response
            .bytes()
            .await
            .map_err(|error| ProviderError::from_transport(&error))?;
        serde_json::from_slice(&body)
            .map_err(|error| ProviderError::Decode(format!("invalid {body_name}: {error}")))
    }
}

#[async_trait]
impl ChatProvider for Ollama {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ollama
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "ollama", gen_ai.request.model = %request.model)
    )]
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let response = self.post_chat(request, false).await?;
        let chunk: ChatChunk = Self::read_json(response, "chat response").await?;
        ChatResponse::try_from(chunk)
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "ollama", gen_ai.request.model = %request.model)
    )]
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.post_chat(request, true).await?;
        Ok(decode_stream(response.bytes_stream()))
    }

    /// Asks for the server's version, which loads no model and costs no tokens.
    #[tracing::instrument(skip_all, fields(gen_ai.provider.name = "ollama"))]
    async fn probe(&self) -> Result<(), ProviderError> {
        let response = self.send(self.client.get(self.url("/api/version"))).await?;
        let version: Version = Self::read_json(response, "version response").await?;
        tracing::debug!(ollama.version = %version.version, "ollama probe succeeded");
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
