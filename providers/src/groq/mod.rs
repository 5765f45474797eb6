//! The Groq adapter, which speaks Groq's OpenAI-compatible dialect of Chat Completions.
//!
//! The request and response shapes are OpenAI's, so the adapter reuses the OpenAI client.
//! What differs, per Groq's API reference and its official SDK's types:
//! - A stream reports usage in `x_groq.usage` of its last chunk, so requests leave out
//!   OpenAI's `stream_options`.
//! - A chunk may carry `x_groq.error`, the reason Groq stopped the stream early.
//! - Status 498 means the flex service tier is out of capacity.
//! - `n` must be 1 and `logprobs` is not supported; the adapter sends neither.

use async_trait::async_trait;

use crate::openai::{ChatCompletionsClient, Dialect};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

const GROQ: Dialect = Dialect {
    stream_usage_option: false,
};

/// Adapter for Groq's chat completions.
#[derive(Debug, Clone)]
pub struct Groq {
    api: ChatCompletionsClient,
}

impl Groq {
    /// Groq's public API. Endpoint paths such as `/chat/completions` are appended to it.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.groq.com/openai/v1";

    /// Creates an adapter that sends requests through `client` to `base_url`, such as
    /// [`Groq::DEFAULT_BASE_URL`]. A trailing slash on `base_url` is ignored.
    pub fn new(client: reqwest::Client, base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            api: ChatCompletionsClient::new(client, base_url, api_key, GROQ),
        }
    }
}

#[async_trait]
impl ChatProvider for Groq {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Groq
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "groq", gen_ai.request.model = %request.model)
    )]
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.api.complete(request).await
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "groq", gen_ai.request.model = %request.model)
    )]
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        self.api.stream(request).await
    }

    #[tracing::instrument(skip_all, fields(gen_ai.provider.name = "groq"))]
    async fn probe(&self) -> Result<(), ProviderError> {
        self.api.probe().await
    }
}
