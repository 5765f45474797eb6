//! The Ollama adapter for the native `/api/chat` endpoint: endpoints, optional authentication
//! and HTTP error handling.
//!
//! Ollama itself needs no API key. A key is sent as a bearer token only when one is
//! configured, for servers behind an authenticating proxy.

mod errors;
mod stream;
mod wire;

use async_trait::async_trait;
use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, Response};

use self::errors::error_from_response;
use self::stream::decode_stream;
use self::wire::{ChatChunk, Version, chat_request};
use crate::response::{self, read_json};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

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
        Ok(builder.header(AUTHORIZATION, api_key.bearer_header_value()?))
    }

    /// Sends the request and returns the response if its status is a success.
    async fn send(&self, builder: RequestBuilder) -> Result<Response, ProviderError> {
        response::send(self.authorize(builder)?, error_from_response).await
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
        let chunk: ChatChunk = read_json(response, "chat response").await?;
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
        let version: Version = read_json(response, "version response").await?;
        tracing::debug!(ollama.version = %version.version, "ollama probe succeeded");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
