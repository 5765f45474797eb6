//! Anthropic Messages API wire types for responses, usage and errors, and their conversions.

mod event;
mod request;

use serde::Deserialize;

pub(super) use self::event::{BlockDelta, StartBlock, StreamPayload};
pub(super) use self::request::messages_request;
use crate::{ChatResponse, FinishReason, ToolCall, Usage};

/// Body of a successful non-streamed `POST /v1/messages` response.
#[derive(Debug, Deserialize)]
pub(super) struct Message {
    content: Vec<ResponseBlock>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

/// A content block of a response. Thinking and server tool blocks are not part of the
/// normalised response, so they are read as `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    #[serde(other)]
    Other,
}

/// Anthropic's `usage` object. Every field is optional because a stream's `message_delta`
/// repeats only some of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(super) struct WireUsage {
    /// Input tokens that were neither read from nor written to the prompt cache.
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_creation_input_tokens: Option<i64>,
    cache_read_input_tokens: Option<i64>,
}

impl WireUsage {
    /// Replaces the counts that `later` reports. Anthropic's stream reports running totals,
    /// so the latest value of each field is the total.
    pub(super) fn update(&mut self, later: WireUsage) {
        let fields = [
            (&mut self.input_tokens, later.input_tokens),
            (&mut self.output_tokens, later.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                later.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                later.cache_read_input_tokens,
            ),
        ];
        for (field, value) in fields {
            if value.is_some() {
                *field = value;
            }
        }
    }
}

impl From<WireUsage> for Usage {
    /// Normalises Anthropic's counts. Anthropic's `input_tokens` leaves out the tokens read
    /// from and written to the prompt cache, whereas [`Usage::input_tokens`] counts the whole
    /// prompt, so all three are added up. Cache reads become `cached_input_tokens`, billed at
    /// the cached price. Cache writes are billed as ordinary input, although Anthropic charges
    /// more for them. Anthropic counts thinking tokens in `output_tokens` without reporting
    /// them apart, so `reasoning_tokens` is `None`.
    fn from(usage: WireUsage) -> Self {
        let cache_read = usage.cache_read_input_tokens;
        let input = usage.input_tokens.unwrap_or(0)
            + cache_read.unwrap_or(0)
            + usage.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: input,
            output_tokens: usage.output_tokens.unwrap_or(0),
            cached_input_tokens: cache_read,
            reasoning_tokens: None,
        }
    }
}

/// Maps Anthropic's `stop_reason`.
pub(super) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // `pause_turn` (a server tool paused a long turn) and reasons added later.
        _ => FinishReason::Other,
    }
}

impl From<Message> for ChatResponse {
    /// Joins the text blocks into one text and collects the `tool_use` blocks in order.
    fn from(message: Message) -> Self {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in message.content {
            match block {
                ResponseBlock::Text { text: part } => text.push_str(&part),
                ResponseBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input,
                }),
                ResponseBlock::Other => {}
            }
        }

        ChatResponse {
            text,
            tool_calls,
            usage: message.usage.map(Usage::from),
            finish_reason: message
                .stop_reason
                .as_deref()
                .map_or(FinishReason::Other, finish_reason),
        }
    }
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub(super) error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorDetail {
    /// The error type, such as `overloaded_error`.
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) message: String,
}

/// Body of `GET /v1/models`, parsed only to check that the response is a model list.
#[derive(Debug, Deserialize)]
pub(super) struct ModelList {
    #[allow(dead_code, reason = "deserialized to check the body's shape")]
    data: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests;
