//! The body of `POST /v1/messages` and its conversion from a [`ChatRequest`].

use std::borrow::Cow;

use serde::Serialize;

use crate::{ChatMessage, ChatRequest, ImageInput, ProviderError, Role, ToolDefinition};

/// Output limit sent when the request sets none, because Anthropic requires `max_tokens`.
/// Every Claude model since Claude 3 accepts 4096 output tokens.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub(in crate::anthropic) struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<RequestMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<RequestTool<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// One turn of the conversation. Anthropic requires user and assistant turns to alternate.
#[derive(Debug, Serialize)]
struct RequestMessage<'a> {
    role: TurnRole,
    content: Vec<ContentBlock<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum TurnRole {
    User,
    Assistant,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Cow<'a, serde_json::Value>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
    },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Debug, Serialize)]
struct RequestTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    input_schema: &'a serde_json::Value,
}

/// Builds the request body.
///
/// System messages join the top-level `system` text after the request's own system prompt,
/// because Anthropic takes no system role inside `messages`. Tool results become
/// `tool_result` blocks of a user turn, and consecutive turns of one role merge into one.
/// A message without content, such as an empty assistant reply, is left out, because
/// Anthropic rejects empty turns.
pub(in crate::anthropic) fn messages_request(
    request: &ChatRequest,
    stream: bool,
) -> Result<MessagesRequest<'_>, ProviderError> {
    let mut system: Vec<&str> = request.system.iter().map(String::as_str).collect();
    let mut turns: Vec<RequestMessage<'_>> = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        if !message.images.is_empty() && message.role != Role::User {
            return Err(ProviderError::InvalidRequest(
                "images are supported only in user messages".to_owned(),
            ));
        }
        match message.role {
            Role::System => system.push(&message.content),
            Role::User => push_blocks(&mut turns, TurnRole::User, user_blocks(message)?),
            Role::Assistant => {
                push_blocks(&mut turns, TurnRole::Assistant, assistant_blocks(message));
            }
            Role::Tool => push_blocks(&mut turns, TurnRole::User, vec![tool_result(message)?]),
        }
    }
    system.retain(|part| !part.is_empty());

    Ok(MessagesRequest {
        model: &request.model,
        max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns,
        temperature: request.temperature,
        stop_sequences: &request.stop,
        tools: request.tools.iter().map(request_tool).collect(),
        stream,
    })
}

/// Appends blocks to the last turn when it has the same role, and otherwise starts a turn.
fn push_blocks<'a>(
    turns: &mut Vec<RequestMessage<'a>>,
    role: TurnRole,
    blocks: Vec<ContentBlock<'a>>,
) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => turns.push(RequestMessage {
            role,
            content: blocks,
        }),
    }
}

/// Converts a user message: its images first, as Anthropic recommends, then its text.
fn user_blocks(message: &ChatMessage) -> Result<Vec<ContentBlock<'_>>, ProviderError> {
    let mut blocks = Vec::with_capacity(message.images.len() + 1);
    for image in &message.images {
        blocks.push(ContentBlock::Image {
            source: image_source(image)?,
        });
    }
    if !message.content.is_empty() {
        blocks.push(ContentBlock::Text {
            text: &message.content,
        });
    }
    Ok(blocks)
}

/// Converts an assistant message: its text, then one `tool_use` block per tool call.
fn assistant_blocks(message: &ChatMessage) -> Vec<ContentBlock<'_>> {
    let mut blocks = Vec::with_capacity(message.tool_calls.len() + 1);
    if !message.content.is_empty() {
        blocks.push(ContentBlock::Text {
            text: &message.content,
        });
    }
    for call in &message.tool_calls {
        // Anthropic requires `input` to be an object. Arguments that were not a JSON object
        // are sent as an empty one, and the tool result that follows reports the malformed call.
        let input = if call.arguments.is_object() {
            Cow::Borrowed(&call.arguments)
        } else {
            Cow::Owned(serde_json::Value::Object(serde_json::Map::new()))
        };
        blocks.push(ContentBlock::ToolUse {
            id: &call.id,
            name: &call.name,
            input,
        });
    }
    blocks
}

fn tool_result(message: &ChatMessage) -> Result<ContentBlock<'_>, ProviderError> {
    let Some(tool_use_id) = message.tool_call_id.as_deref() else {
        return Err(ProviderError::InvalidRequest(
            "tool result message has no tool_call_id".to_owned(),
        ));
    };
    Ok(ContentBlock::ToolResult {
        tool_use_id,
        content: &message.content,
    })
}

/// Converts an image. A `data:` URL is sent as base64 data, because Anthropic's `url` source
/// is for images that Anthropic downloads.
fn image_source(image: &ImageInput) -> Result<ImageSource<'_>, ProviderError> {
    match image {
        ImageInput::Inline {
            media_type,
            data_base64,
        } => Ok(ImageSource::Base64 {
            media_type,
            data: data_base64,
        }),
        ImageInput::Url(url) => match strip_data_scheme(url) {
            Some(data_url) => data_url_source(data_url),
            None => Ok(ImageSource::Url { url }),
        },
    }
}

/// Returns the part of `url` after a `data:` scheme, which is case-insensitive.
fn strip_data_scheme(url: &str) -> Option<&str> {
    let scheme = url.get(..5)?;
    scheme
        .eq_ignore_ascii_case("data:")
        .then(|| &url[scheme.len()..])
}

/// Splits the rest of a data URL, such as `image/png;base64,iVBOR…`, into a base64 source.
fn data_url_source(data_url: &str) -> Result<ImageSource<'_>, ProviderError> {
    let invalid = || {
        ProviderError::InvalidRequest(
            "image data URL is invalid: expected data:<media type>;base64,<data>".to_owned(),
        )
    };
    let (header, data) = data_url.split_once(',').ok_or_else(invalid)?;
    let media_type = header.strip_suffix(";base64").ok_or_else(invalid)?;
    if media_type.is_empty() || data.is_empty() {
        return Err(invalid());
    }
    Ok(ImageSource::Base64 { media_type, data })
}

fn request_tool(tool: &ToolDefinition) -> RequestTool<'_> {
    RequestTool {
        name: &tool.name,
        description: &tool.description,
        input_schema: &tool.parameters,
    }
}
