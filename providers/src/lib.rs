//! LLM provider adapters behind one trait: chat requests, streamed events, errors and prices.
//!
//! Every adapter implements [`ChatProvider`]. Adapters speak their provider's own wire format
//! over a shared [`reqwest::Client`] built once by [`http_client`]; they never build one.

mod accumulate;
mod anthropic;
mod chat;
mod error;
mod gemini;
mod groq;
mod http;
mod kind;
mod ollama;
mod openai;
pub mod outbound;
pub mod pricing;
mod provider;
mod response;
mod secret;
#[cfg(test)]
mod test_support;

pub use accumulate::{ResponseAccumulator, collect_response};
pub use anthropic::Anthropic;
pub use chat::{
    ChatMessage, ChatRequest, ChatResponse, EventStream, FinishReason, ImageInput, Role,
    StreamEvent, ToolCall, ToolDefinition, Usage,
};
pub use error::ProviderError;
pub use gemini::Gemini;
pub use groq::Groq;
pub use http::{HttpSettings, http_client};
pub use kind::{ProviderKind, UnknownProviderKind};
pub use ollama::Ollama;
pub use openai::OpenAi;
pub use provider::ChatProvider;
pub use secret::ApiKey;
