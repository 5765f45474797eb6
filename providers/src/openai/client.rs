//! The HTTP client of the Chat Completions API: endpoints, bearer authentication and error
//! statuses, shared by OpenAI and the OpenAI-compatible providers.

use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, Response};

use super::errors::error_from_response;
use super::stream::decode_stream;
use super::wire::{Completion, ModelList, completion_request};
use crate::response::{self, read_json};
use crate::{ApiKey, ChatRequest, ChatResponse, EventStream, ProviderError};

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
        let completion: Completion = read_json(response, "chat completion").await?;
        ChatResponse::try_from(completion)
    }

    pub(crate) async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.post_completion(request, true).await?;
        Ok(decode_stream(response.bytes_stream()))
    }

    /// Lists the models, which costs no tokens.
    pub(crate) async fn probe(&self) -> Result<(), ProviderError> {
        let response = self.send(self.client.get(self.url("/models"))).await?;
        read_json::<ModelList>(response, "model list").await?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Adds the bearer token, marked sensitive so that HTTP logging does not print it.
    fn authorize(&self, builder: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        Ok(builder.header(AUTHORIZATION, self.api_key.bearer_header_value()?))
    }

    /// Sends the request and returns the response if its status is a success.
    async fn send(&self, builder: RequestBuilder) -> Result<Response, ProviderError> {
        response::send(self.authorize(builder)?, error_from_response).await
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
