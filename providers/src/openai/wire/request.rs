//! The body of `POST /chat/completions` and its conversion from a [`ChatRequest`].

use std::borrow::Cow;

use serde::Serialize;

use crate::openai::Dialect;
use crate::{ChatMessage, ChatRequest, ImageInput, ProviderError, Role, ToolCall};

/// Body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(in crate::openai) struct CompletionRequest<'a> {
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

/// One message. `content` is absent only for an assistant message that made tool calls
/// and produced no text.
#[derive(Debug, Serialize)]
struct RequestMessage<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<MessageContent<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<RequestToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// Plain text, or content parts for a user message with images.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum MessageContent<'a> {
    Text(&'a str),
    Parts(Vec<ContentPart<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

/// An `https:` URL, or a `data:` URL that carries the image inline.
#[derive(Debug, Serialize)]
struct ImageUrl<'a> {
    url: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
struct RequestToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CalledFunction<'a>,
}

#[derive(Debug, Serialize)]
struct CalledFunction<'a> {
    name: &'a str,
    /// JSON text, as the model produced it.
    arguments: Cow<'a, str>,
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

/// Builds the request body. A streaming request sets `stream_options.include_usage` when
/// the dialect's `stream_usage_option` is on, because OpenAI sends the usage chunk only then.
pub(in crate::openai) fn completion_request<'a>(
    request: &'a ChatRequest,
    stream: bool,
    dialect: &Dialect,
) -> Result<CompletionRequest<'a>, ProviderError> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(text_message("system", system));
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

    Ok(CompletionRequest {
        model: &request.model,
        messages,
        temperature: request.temperature,
        max_completion_tokens: request.max_tokens,
        stop: &request.stop,
        tools,
        stream,
        stream_options: (stream && dialect.stream_usage_option).then_some(StreamOptions {
            include_usage: true,
        }),
    })
}

fn request_message(message: &ChatMessage) -> Result<RequestMessage<'_>, ProviderError> {
    if !message.images.is_empty() && message.role != Role::User {
        return Err(ProviderError::InvalidRequest(
            "images are accepted only in user messages".to_owned(),
        ));
    }

    match message.role {
        Role::System => Ok(text_message("system", &message.content)),
        Role::User if message.images.is_empty() => Ok(text_message("user", &message.content)),
        Role::User => Ok(RequestMessage {
            content: Some(MessageContent::Parts(content_parts(message))),
            ..text_message("user", "")
        }),
        Role::Assistant => Ok(assistant_message(message)),
        Role::Tool => tool_message(message),
    }
}

fn text_message<'a>(role: &'static str, content: &'a str) -> RequestMessage<'a> {
    RequestMessage {
        role,
        content: Some(MessageContent::Text(content)),
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// Builds the text part, unless the text is empty, then one part per image.
fn content_parts(message: &ChatMessage) -> Vec<ContentPart<'_>> {
    let mut parts = Vec::with_capacity(message.images.len() + 1);
    if !message.content.is_empty() {
        parts.push(ContentPart::Text {
            text: &message.content,
        });
    }
    for image in &message.images {
        let url = match image {
            ImageInput::Url(url) => Cow::Borrowed(url.as_str()),
            ImageInput::Inline {
                media_type,
                data_base64,
            } => Cow::Owned(format!("data:{media_type};base64,{data_base64}")),
        };
        parts.push(ContentPart::ImageUrl {
            image_url: ImageUrl { url },
        });
    }
    parts
}

fn assistant_message(message: &ChatMessage) -> RequestMessage<'_> {
    let content = if message.content.is_empty() && !message.tool_calls.is_empty() {
        None
    } else {
        Some(MessageContent::Text(&message.content))
    };
    RequestMessage {
        role: "assistant",
        content,
        tool_calls: message.tool_calls.iter().map(request_tool_call).collect(),
        tool_call_id: None,
    }
}

fn request_tool_call(call: &ToolCall) -> RequestToolCall<'_> {
    // Arguments that were not valid JSON are kept as a JSON string holding the raw text,
    // which goes back to the provider unchanged.
    let arguments = match &call.arguments {
        serde_json::Value::String(raw) => Cow::Borrowed(raw.as_str()),
        arguments => Cow::Owned(arguments.to_string()),
    };
    RequestToolCall {
        id: &call.id,
        kind: "function",
        function: CalledFunction {
            name: &call.name,
            arguments,
        },
    }
}

fn tool_message(message: &ChatMessage) -> Result<RequestMessage<'_>, ProviderError> {
    let Some(call_id) = &message.tool_call_id else {
        return Err(ProviderError::InvalidRequest(
            "tool result message is missing tool_call_id, the id of the call whose result it contains"
                .to_owned(),
        ));
    };
    Ok(RequestMessage {
        tool_call_id: Some(call_id),
        ..text_message("tool", &message.content)
    })
}

#[cfg(test)]
mod tests;
