//! Ollama `/api/chat` wire types and their conversions to the crate's types.

use serde::{Deserialize, Serialize};

use super::errors::error_from_message;
use crate::chat::parse_tool_arguments;
use crate::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, ImageInput, ProviderError, Role,
    StreamEvent, ToolCall, Usage,
};

/// Body of `POST /api/chat`.
#[derive(Debug, Serialize)]
pub(super) struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<RequestMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<RequestTool<'a>>,
    /// Always written, because Ollama streams when the field is missing.
    stream: bool,
    #[serde(skip_serializing_if = "RequestOptions::is_empty")]
    options: RequestOptions<'a>,
}

#[derive(Debug, Serialize)]
struct RequestMessage<'a> {
    role: &'static str,
    content: &'a str,
    /// Base64-encoded images without a `data:` prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<RequestToolCall<'a>>,
    /// Name of the tool whose result a `tool` message carries. Ollama matches results to
    /// calls by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct RequestToolCall<'a> {
    function: RequestCallFunction<'a>,
}

#[derive(Debug, Serialize)]
struct RequestCallFunction<'a> {
    name: &'a str,
    /// A JSON object, not JSON text as in OpenAI's format.
    arguments: &'a serde_json::Value,
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

/// Sampling options. Ollama keeps the model's own defaults for options that are left out.
#[derive(Debug, Serialize)]
struct RequestOptions<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Maximum number of tokens to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
}

impl RequestOptions<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.num_predict.is_none() && self.stop.is_empty()
    }
}

/// Builds the request body. The system prompt becomes the first message.
///
/// Returns [`ProviderError::InvalidRequest`] for what Ollama cannot take: an image given by
/// a URL other than a base64 `data:` URL, a tool result without its tool's name, and tool
/// call arguments that are not a JSON object.
pub(super) fn chat_request(
    request: &ChatRequest,
    stream: bool,
) -> Result<ChatBody<'_>, ProviderError> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(RequestMessage {
            role: "system",
            content: system,
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_name: None,
        });
    }
    for message in &request.messages {
        messages.push(request_message(message)?);
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

    Ok(ChatBody {
        model: &request.model,
        messages,
        tools,
        stream,
        options: RequestOptions {
            temperature: request.temperature,
            num_predict: request.max_tokens,
            stop: &request.stop,
        },
    })
}

fn request_message(message: &ChatMessage) -> Result<RequestMessage<'_>, ProviderError> {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };

    let tool_name = match message.role {
        Role::Tool => Some(message.tool_name.as_deref().ok_or_else(|| {
            ProviderError::InvalidRequest(
                "a tool result message has no tool_name, which Ollama needs to match it to its \
                 call"
                    .to_owned(),
            )
        })?),
        _ => None,
    };

    let images = message
        .images
        .iter()
        .map(image_base64)
        .collect::<Result<_, _>>()?;

    let tool_calls = message
        .tool_calls
        .iter()
        .map(request_tool_call)
        .collect::<Result<_, _>>()?;

    Ok(RequestMessage {
        role,
        content: &message.content,
        images,
        tool_calls,
        tool_name,
    })
}

fn request_tool_call(call: &ToolCall) -> Result<RequestToolCall<'_>, ProviderError> {
    if !call.arguments.is_object() {
        return Err(ProviderError::InvalidRequest(format!(
            "the arguments of tool call {:?} are not a JSON object, and Ollama accepts only objects",
            call.id
        )));
    }
    Ok(RequestToolCall {
        function: RequestCallFunction {
            name: &call.name,
            arguments: &call.arguments,
        },
    })
}

/// Returns the base64 data of an image. Ollama takes only inline base64 images, so a URL is
/// accepted only in the form `data:<media type>;base64,<data>`.
fn image_base64(image: &ImageInput) -> Result<&str, ProviderError> {
    let url = match image {
        ImageInput::Inline { data_base64, .. } => return Ok(data_base64),
        ImageInput::Url(url) => url,
    };

    let unsupported = || {
        ProviderError::InvalidRequest(
            "Ollama accepts images only as inline base64 data or base64 data: URLs, not as \
             links to fetch"
                .to_owned(),
        )
    };
    let scheme = url.get(..5).ok_or_else(unsupported)?;
    if !scheme.eq_ignore_ascii_case("data:") {
        return Err(unsupported());
    }
    let (metadata, data) = url[5..].split_once(',').ok_or_else(unsupported)?;
    let is_base64 = metadata
        .rsplit(';')
        .next()
        .is_some_and(|parameter| parameter.eq_ignore_ascii_case("base64"));
    if !is_base64 {
        return Err(unsupported());
    }
    Ok(data)
}

/// One object of the response: the whole body of a non-streamed response, or one line of a
/// streamed one. Only the last line of a stream has `done: true`, the finish reason and the
/// token counts.
#[derive(Debug, Deserialize)]
pub(super) struct ChatChunk {
    message: Option<ResponseMessage>,
    #[serde(default)]
    pub(super) done: bool,
    done_reason: Option<String>,
    /// Input tokens. Ollama leaves zero counts out of the body.
    prompt_eval_count: Option<i64>,
    /// Output tokens. Ollama leaves zero counts out of the body.
    eval_count: Option<i64>,
    /// The message of a failure, in place of the other fields.
    pub(super) error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: String,
    /// Complete calls, because Ollama sends arguments as a JSON object and never in
    /// fragments.
    tool_calls: Option<Vec<ResponseToolCall>>,
}

#[derive(Debug, Deserialize)]
struct ResponseToolCall {
    /// Sent by Ollama 0.12.10 and later. Older servers send no call ids.
    id: Option<String>,
    function: ResponseFunction,
}

#[derive(Debug, Deserialize)]
struct ResponseFunction {
    name: String,
    arguments: Option<serde_json::Value>,
}

impl ResponseToolCall {
    /// Converts the call, generating an id when the server sent none. Missing arguments
    /// become `{}`, and arguments sent as JSON text are parsed.
    fn into_tool_call(self) -> ToolCall {
        let arguments = match self.function.arguments {
            None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
            Some(serde_json::Value::String(text)) => parse_tool_arguments(&text),
            Some(value) => value,
        };
        ToolCall {
            id: self
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(generate_call_id),
            name: self.function.name,
            arguments,
        }
    }
}

/// Generates a unique tool call id, because a conversation may continue with a provider that
/// matches tool results to calls by id.
fn generate_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

/// Maps `done_reason`. Ollama reports `stop` also when the model made tool calls, so calls
/// turn `stop` (or no reason) into [`FinishReason::ToolCalls`]. Other reasons, such as
/// `load` and `unload` for requests that only load or unload a model, are
/// [`FinishReason::Other`].
pub(super) fn finish_reason(done_reason: Option<&str>, made_tool_calls: bool) -> FinishReason {
    match done_reason {
        Some("stop") | None if made_tool_calls => FinishReason::ToolCalls,
        Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

impl ChatChunk {
    /// Returns the token counts of a final chunk. Missing counts are zero, because Ollama
    /// omits zero values.
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_eval_count.unwrap_or(0),
            output_tokens: self.eval_count.unwrap_or(0),
            cached_input_tokens: None,
            reasoning_tokens: None,
        }
    }

    /// Converts a streamed line into events in this order: text, tool calls, and on the final
    /// line the finish reason and usage. `tool_call_count` is the number of calls in the
    /// stream so far, which numbers new calls and decides the finish reason.
    pub(super) fn into_events(self, tool_call_count: &mut u32) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        let usage = self.usage();

        if let Some(message) = self.message {
            if !message.content.is_empty() {
                events.push(StreamEvent::TextDelta(message.content));
            }
            for call in message.tool_calls.unwrap_or_default() {
                let call = call.into_tool_call();
                events.push(StreamEvent::ToolCallDelta {
                    index: *tool_call_count,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments.to_string(),
                });
                *tool_call_count += 1;
            }
        }

        if self.done {
            let reason = finish_reason(self.done_reason.as_deref(), *tool_call_count > 0);
            events.push(StreamEvent::Finish(reason));
            events.push(StreamEvent::Usage(usage));
        }
        events
    }
}

impl TryFrom<ChatChunk> for ChatResponse {
    type Error = ProviderError;

    /// Converts a non-streamed response. A body with `error` is that error.
    fn try_from(chunk: ChatChunk) -> Result<Self, Self::Error> {
        if let Some(message) = chunk.error {
            return Err(error_from_message(message));
        }
        let usage = chunk.usage();
        let Some(message) = chunk.message else {
            return Err(ProviderError::Decode(
                "chat response contains no message".to_owned(),
            ));
        };

        let tool_calls: Vec<ToolCall> = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(ResponseToolCall::into_tool_call)
            .collect();
        let finish_reason = finish_reason(chunk.done_reason.as_deref(), !tool_calls.is_empty());

        Ok(ChatResponse {
            text: message.content,
            tool_calls,
            usage: Some(usage),
            finish_reason,
        })
    }
}

/// Ollama's error body, `{"error": "message"}`, sent with an error status and as a line of a
/// stream that failed after the 200 status.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub(super) error: String,
}

/// Body of `GET /api/version`.
#[derive(Debug, Deserialize)]
pub(super) struct Version {
    pub(super) version: String,
}

#[cfg(test)]
mod tests;
