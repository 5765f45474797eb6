//! OpenAI Chat Completions wire types and their conversions to the crate's types.

mod chunk;

use serde::{Deserialize, Serialize};

pub(super) use self::chunk::StreamPayload;
use crate::chat::parse_tool_arguments;
use crate::{ChatRequest, ChatResponse, FinishReason, ProviderError, Role, ToolCall, Usage};

/// Body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(super) struct CompletionRequest<'a> {
    model: &'a str,
    messages: Vec<RequestMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// `max_tokens` is deprecated for this endpoint and rejected by OpenAI's reasoning
    /// models (o1, o3, gpt-5), which count hidden reasoning tokens against the limit.
    /// `max_completion_tokens` is accepted by every current chat model.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<RequestTool<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize)]
struct RequestMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct RequestTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: RequestFunction<'a>,
}

#[derive(Debug, Serialize)]
struct RequestFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// Builds the request body. A streaming request sets `stream_options.include_usage`, because
/// OpenAI sends the usage chunk only then.
pub(super) fn completion_request(
    request: &ChatRequest,
    stream: bool,
) -> Result<CompletionRequest<'_>, ProviderError> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(RequestMessage {
            role: "system",
            content: system,
        });
    }
    for message in &request.messages {
        let role = match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            // TODO: tool results need the tool call id, which ChatMessage does not carry yet.
            Role::Tool => {
                return Err(ProviderError::InvalidRequest(
                    "tool result messages are not supported yet".to_owned(),
                ));
            }
        };
        messages.push(RequestMessage {
            role,
            content: &message.content,
        });
    }

    let tools = request
        .tools
        .iter()
        .map(|tool| RequestTool {
            kind: "function",
            function: RequestFunction {
                name: &tool.name,
                description: &tool.description,
                parameters: &tool.parameters,
            },
        })
        .collect();

    Ok(CompletionRequest {
        model: &request.model,
        messages,
        temperature: request.temperature,
        max_completion_tokens: request.max_tokens,
        stop: &request.stop,
        tools,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    })
}

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

    /// Takes the first choice, because the request body never sets `n` above one.
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

        Ok(ChatResponse {
            text: message.content.or(message.refusal).unwrap_or_default(),
            tool_calls,
            usage: completion.usage.map(Usage::from),
            finish_reason: choice
                .finish_reason
                .as_deref()
                .map_or(FinishReason::Other, finish_reason),
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
