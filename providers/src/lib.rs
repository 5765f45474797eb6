//! LLM provider adapters behind one trait: chat requests, streamed events, errors and prices.
//!
//! Every adapter implements [`ChatProvider`]. Adapters speak their provider's own wire format
//! over a shared [`reqwest::Client`] built once by [`http_client`]; they never build one.

mod accumulate;
mod chat;
mod error;
mod http;
mod kind;
mod openai;
pub mod pricing;
mod provider;
mod secret;

pub use accumulate::{ResponseAccumulator, collect_response};
pub use chat::{
    ChatMessage, ChatRequest, ChatResponse, EventStream, FinishReason, Role, StreamEvent, ToolCall,
    ToolDefinition, Usage,
};
pub use error::ProviderError;
pub use http::{HttpSettings, http_client};
pub use kind::{ProviderKind, UnknownProviderKind};
pub use openai::OpenAi;
pub use provider::ChatProvider;
pub use secret::ApiKey;
