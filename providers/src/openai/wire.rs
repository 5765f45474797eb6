//! OpenAI Chat Completions wire types and their conversions to the crate's types.

mod chunk;
mod request;

use serde::Deserialize;

pub(super) use self::chunk::StreamPayload;
pub(super) use self::request::completion_request;
use crate::chat::parse_tool_arguments;
use crate::{ChatResponse, FinishReason, ProviderError, ToolCall, Usage};

/// Body of a successful non-streamed response.
#[derive(Debug, Deserialize)]
pub(super) struct Completion {
    choices: Vec<CompletionChoice>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    message: ResponseMessage,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseMessage {
    content: Option<String>,
    /// Text the model returns instead of `content` when it declines the request.
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ResponseToolCall>,
}

#[derive(Debug, Deserialize)]
struct ResponseToolCall {
    id: String,
    function: ResponseFunction,
}

#[derive(Debug, Deserialize)]
struct ResponseFunction {
    name: String,
    /// JSON text produced by the model, not a JSON object.
    arguments: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct WireUsage {
    prompt_tokens: i64,
    completion_tokens: i64,
    prompt_tokens_details: Option<PromptTokensDetails>,
    completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct PromptTokensDetails {
    cached_tokens: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct CompletionTokensDetails {
    reasoning_tokens: Option<i64>,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            cached_input_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens),
            reasoning_tokens: usage
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens),
        }
    }
}

/// Maps OpenAI's `finish_reason`. The deprecated `function_call` is a tool call.
pub(super) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

impl TryFrom<Completion> for ChatResponse {
    type Error = ProviderError;

    /// Takes the first choice, because the request body never sets `n` above one. A refusal
    /// becomes the text, with [`FinishReason::ContentFilter`] whatever the wire reason.
    fn try_from(completion: Completion) -> Result<Self, Self::Error> {
        let Some(choice) = completion.choices.into_iter().next() else {
            return Err(ProviderError::Decode(
                "response contains no choices".to_owned(),
            ));
        };
        let message = choice.message;

        let tool_calls = message
            .tool_calls
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: parse_tool_arguments(&call.function.arguments),
            })
            .collect();

        let refused = message
            .refusal
            .as_deref()
            .is_some_and(|text| !text.is_empty());
        let finish_reason = match choice.finish_reason.as_deref() {
            _ if refused => FinishReason::ContentFilter,
            Some(reason) => finish_reason(reason),
            None => FinishReason::Other,
        };

        Ok(ChatResponse {
            text: message.content.or(message.refusal).unwrap_or_default(),
            tool_calls,
            usage: completion.usage.map(Usage::from),
            finish_reason,
        })
    }
}

/// OpenAI's error body: `{"error": {"message", "type", "code", "param"}}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub(super) error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(default)]
    pub(super) message: String,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// A string such as `context_length_exceeded`. Some compatible servers send a number.
    pub(super) code: Option<serde_json::Value>,
}

impl ErrorDetail {
    pub(super) fn code(&self) -> Option<&str> {
        self.code.as_ref().and_then(serde_json::Value::as_str)
    }
}

/// Body of `GET /models`, parsed only to check that the response is a model list.
#[derive(Debug, Deserialize)]
pub(super) struct ModelList {
    #[allow(dead_code, reason = "deserialized to check the body's shape")]
    data: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests;
