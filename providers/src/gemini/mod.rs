//! The Google Gemini API adapter (`generateContent`): endpoints, authentication and HTTP error
//! handling.

mod errors;
mod stream;
mod wire;

use async_trait::async_trait;
use reqwest::{RequestBuilder, Response};

use self::errors::{error_from_response, error_from_status};
use self::stream::decode_stream;
use self::wire::{
    GenerateContentResponse, ModelList, chat_response, generate_content_request, model_path,
};
use crate::response::{self, read_json};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

/// The header that carries the API key.
const API_KEY_HEADER: &str = "x-goog-api-key";

/// Adapter for the Gemini API of Google AI (`generativelanguage.googleapis.com`).
#[derive(Debug, Clone)]
pub struct Gemini {
    client: reqwest::Client,
    base_url: String,
    api_key: ApiKey,
}

impl Gemini {
    /// The public Gemini API. Endpoint paths are appended to it, so it includes `/v1beta`.
    pub const DEFAULT_BASE_URL: &'static str = "https://generativelanguage.googleapis.com/v1beta";

    /// Creates an adapter that sends requests through `client` to `base_url`, such as
    /// [`Gemini::DEFAULT_BASE_URL`]. A trailing slash on `base_url` is ignored.
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

    /// Adds the API key header, marked sensitive so that HTTP logging does not print it.
    fn authorize(&self, builder: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        if self.api_key.expose().is_empty() {
            return Err(ProviderError::Authentication(
                "Gemini API key is empty: configure a key for this provider".to_owned(),
            ));
        }
        Ok(builder.header(API_KEY_HEADER, self.api_key.header_value()?))
    }

    /// Sends the request and returns the response if its status is a success.
    async fn send(&self, builder: RequestBuilder) -> Result<Response, ProviderError> {
        response::send(self.authorize(builder)?, error_from_response).await
    }

    /// Posts the request to `{model}:generateContent`, or to `{model}:streamGenerateContent`
    /// with server-sent events when `stream` is set.
    async fn post_generate(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<Response, ProviderError> {
        let model = model_path(&request.model)?;
        let body = generate_content_request(request)?;
        let path = if stream {
            format!("/{model}:streamGenerateContent?alt=sse")
        } else {
            format!("/{model}:generateContent")
        };
        self.send(self.client.post(self.url(&path)).json(&body))
            .await
    }
}

#[async_trait]
impl ChatProvider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "gemini", gen_ai.request.model = %request.model)
    )]
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let response = self.post_generate(request, false).await?;
        let response: GenerateContentResponse = read_json(response, "Gemini response").await?;
        if let Some(status) = &response.error {
            return Err(error_from_status(status));
        }

        chat_response(response)
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "gemini", gen_ai.request.model = %request.model)
    )]
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.post_generate(request, true).await?;
        Ok(decode_stream(response.bytes_stream()))
    }

    #[tracing::instrument(skip_all, fields(gen_ai.provider.name = "gemini"))]
    async fn probe(&self) -> Result<(), ProviderError> {
        let response = self.send(self.client.get(self.url("/models"))).await?;
        read_json::<ModelList>(response, "model list").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
