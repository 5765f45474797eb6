//! The OpenAI Chat Completions adapter.
//!
//! Any server that speaks the same wire format works too, by pointing the base URL at it.
//! The client, wire types and stream decoding also serve the Groq adapter, which speaks a
//! dialect of this API.

mod client;
mod errors;
mod stream;
mod wire;

use async_trait::async_trait;

pub(crate) use self::client::{ChatCompletionsClient, Dialect};
use crate::{
    ApiKey, ChatProvider, ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind,
};

const OPENAI: Dialect = Dialect {
    stream_usage_option: true,
};

/// Adapter for OpenAI's Chat Completions API.
#[derive(Debug, Clone)]
pub struct OpenAi {
    api: ChatCompletionsClient,
}

impl OpenAi {
    /// OpenAI's public API. Endpoint paths are appended to it, so it includes `/v1`.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openai.com/v1";

    /// Creates an adapter that sends requests through `client` to `base_url`, such as
    /// [`OpenAi::DEFAULT_BASE_URL`]. A trailing slash on `base_url` is ignored.
    pub fn new(client: reqwest::Client, base_url: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            api: ChatCompletionsClient::new(client, base_url, api_key, OPENAI),
        }
    }
}

#[async_trait]
impl ChatProvider for OpenAi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenAi
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "openai", gen_ai.request.model = %request.model)
    )]
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.api.complete(request).await
    }

    #[tracing::instrument(
        skip_all,
        fields(gen_ai.provider.name = "openai", gen_ai.request.model = %request.model)
    )]
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        self.api.stream(request).await
    }

    #[tracing::instrument(skip_all, fields(gen_ai.provider.name = "openai"))]
    async fn probe(&self) -> Result<(), ProviderError> {
        self.api.probe().await
    }
}
