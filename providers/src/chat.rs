//! Provider-neutral chat types: the request, the complete response and the streamed events.

use std::pin::Pin;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::ProviderError;

/// The author of a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    #[default]
    User,
    Assistant,
    Tool,
}

/// One message of a conversation.
///
/// An assistant message may carry the tool calls the model made, and a [`Role::Tool`]
/// message carries the result of one call, named by `tool_call_id` and `tool_name`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Images sent with a user message, for models that accept them.
    pub images: Vec<ImageInput>,
    /// Tool calls made by the model in an assistant message.
    pub tool_calls: Vec<ToolCall>,
    /// The call whose result a [`Role::Tool`] message carries.
    pub tool_call_id: Option<String>,
    /// The tool whose result a [`Role::Tool`] message carries; Gemini and Ollama match
    /// results by name.
    pub tool_name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            ..Self::default()
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// Builds an assistant message that asked for `tool_calls`, with any text it produced.
    pub fn assistant_tool_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// Builds the result of the tool call `call_id` of tool `name`.
    pub fn tool_result(
        call_id: impl Into<String>,
        name: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            tool_name: Some(name.into()),
            ..Self::new(Role::Tool, content)
        }
    }

    /// Adds images to a user message.
    pub fn with_images(mut self, images: Vec<ImageInput>) -> Self {
        self.images = images;
        self
    }
}

/// An image given to the model, by URL or inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// An `https:` or `data:` URL the provider fetches or decodes itself.
    Url(String),
    /// Raw image bytes, base64-encoded, with their media type such as `image/png`.
    Inline {
        media_type: String,
        data_base64: String,
    },
}

/// A function the model may call, described by a JSON Schema for its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema object that the call's arguments must match.
    pub parameters: serde_json::Value,
}

/// A chat completion request in the form every adapter accepts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    /// The agent's instructions, sent before `messages` in the provider's own way.
    pub system: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f32>,
    /// Maximum number of tokens to generate, reasoning tokens included where the provider
    /// counts them.
    pub max_tokens: Option<u32>,
    /// Sequences that end generation when the model produces them.
    pub stop: Vec<String>,
    pub tools: Vec<ToolDefinition>,
}

/// Token counts reported by a provider for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: i64,
    /// Generated tokens, reasoning tokens included.
    pub output_tokens: i64,
    /// The part of `input_tokens` read from the provider's prompt cache, when reported.
    pub cached_input_tokens: Option<i64>,
    /// The part of `output_tokens` spent on hidden reasoning, when reported.
    pub reasoning_tokens: Option<i64>,
}

/// The reason the model stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its reply or produced a stop sequence.
    Stop,
    /// The output reached the maximum token count.
    Length,
    /// The model asked for one or more tool calls.
    ToolCalls,
    /// The provider's content filter cut the output.
    ContentFilter,
    /// The provider reported that generation failed.
    Error,
    /// A reason this crate does not map, or none was reported.
    Other,
}

impl FinishReason {
    /// Returns the snake_case name, such as `"tool_calls"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
            FinishReason::Other => "other",
        }
    }
}

/// One normalised event of a streamed response.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Generated text to append to the reply. Never empty.
    TextDelta(String),
    /// A fragment of a tool call. Fragments with the same `index` belong to one call: the
    /// first carries `id` and `name`, and the `arguments` fragments concatenate to JSON.
    ToolCallDelta {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// Token counts, usually sent once near the end.
    Usage(Usage),
    /// The reason generation ended.
    Finish(FinishReason),
}

/// A stream of events that ends after the provider's end marker or after the first error.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A complete tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The parsed arguments. When the model produced text that is not valid JSON, this is
    /// that text as a JSON string, so the caller can report the malformed call.
    pub arguments: serde_json::Value,
}

/// A complete (non-streamed) response.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    pub finish_reason: FinishReason,
}

/// Parses tool call arguments as described on [`ToolCall::arguments`]. Empty text means no
/// arguments and becomes an empty object.
pub(crate) fn parse_tool_arguments(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tool_arguments_parse_json() {
        assert_eq!(
            parse_tool_arguments(r#"{"city":"Paris"}"#),
            json!({"city": "Paris"})
        );
    }

    #[test]
    fn tool_arguments_empty_is_object() {
        assert_eq!(parse_tool_arguments(""), json!({}));
        assert_eq!(parse_tool_arguments("  "), json!({}));
    }

    #[test]
    fn tool_arguments_malformed_kept_raw() {
        assert_eq!(parse_tool_arguments(r#"{"city":"#), json!(r#"{"city":"#));
    }

    #[test]
    fn finish_reason_names_match_serde() {
        for reason in [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ToolCalls,
            FinishReason::ContentFilter,
            FinishReason::Error,
            FinishReason::Other,
        ] {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, json!(reason.as_str()));
        }
    }
}
