//! Gemini `generateContent` request bodies and the model path, built from a [`ChatRequest`].

mod response;

use serde::Serialize;

#[cfg(test)]
pub(super) use self::response::GENERATED_CALL_ID_PREFIX;
pub(super) use self::response::{
    ErrorBody, ErrorStatus, GenerateContentResponse, ModelList, ResponseDecoder, chat_response,
};
use crate::{ChatMessage, ChatRequest, ImageInput, ProviderError, Role, ToolCall};

/// Thought signature that makes Gemini skip its validation of a `functionCall` part.
///
/// Gemini 3 models reject a request whose current turn replays a function call without the
/// thought signature that came with it, and [`ToolCall`] does not store signatures. Google
/// documents this value for replayed calls that have no signature, such as history from
/// another model. Gemini's own error message for a missing signature warns that it may
/// degrade the model's performance.
const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// Body of `POST /models/{model}:generateContent` and `:streamGenerateContent`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContentRequest<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
}

/// One turn of the conversation. Gemini has two roles: `user` and `model`.
#[derive(Debug, Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<Part<'a>>,
}

#[derive(Debug, Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<Part<'a>>,
}

/// A part of a turn. Each variant serializes as an object with one key, such as `{"text"}`.
#[derive(Debug, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum Part<'a> {
    Text {
        text: &'a str,
    },
    InlineData {
        inline_data: Blob<'a>,
    },
    FileData {
        file_data: FileData<'a>,
    },
    FunctionCall {
        function_call: FunctionCall<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        thought_signature: Option<&'static str>,
    },
    FunctionResponse {
        function_response: FunctionResponse<'a>,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    /// Base64-encoded bytes.
    data: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<&'static str>,
    file_uri: &'a str,
}

#[derive(Debug, Serialize)]
struct FunctionCall<'a> {
    // NOTE: ids that this adapter generated are sent back as well. Gemini documents `id` as
    // optional, and whether it accepts ids that it did not issue is not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    name: &'a str,
    /// Gemini's `args` is a JSON object, so arguments of any other shape are left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct FunctionResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    name: &'a str,
    /// The tool's output. Gemini requires a JSON object here.
    response: serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Debug, Serialize)]
struct FunctionDeclaration<'a> {
    name: &'a str,
    description: &'a str,
    // NOTE: `parameters` takes Gemini's OpenAPI subset of JSON Schema, which has rejected
    // keywords such as `additionalProperties`. The schema is sent unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a serde_json::Value>,
}

/// Returns the resource path of `model`, such as `models/gemini-2.5-flash`.
///
/// A bare model id gets the `models/` prefix. Names that already start with `models/` or
/// `tunedModels/` are kept. The id is checked because it becomes part of the URL path.
pub(super) fn model_path(model: &str) -> Result<String, ProviderError> {
    let (collection, id) = match model.split_once('/') {
        Some((collection @ ("models" | "tunedModels"), id)) => (collection, id),
        _ => ("models", model),
    };

    let valid_id = !id.is_empty()
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'));
    if !valid_id {
        return Err(ProviderError::InvalidRequest(format!(
            "invalid Gemini model name {model:?}: expected letters, digits, '-', '.' or '_', \
             optionally after \"models/\""
        )));
    }
    Ok(format!("{collection}/{id}"))
}

/// Builds the request body.
///
/// The system prompt and any [`Role::System`] messages become `systemInstruction`. Tool
/// results become `functionResponse` parts of a user turn. Consecutive messages with the same
/// Gemini role are merged into one turn, so the results of parallel calls travel together.
pub(super) fn generate_content_request(
    request: &ChatRequest,
) -> Result<GenerateContentRequest<'_>, ProviderError> {
    let mut system_parts: Vec<Part<'_>> = request
        .system
        .iter()
        .filter(|system| !system.is_empty())
        .map(|system| Part::Text { text: system })
        .collect();
    let mut contents: Vec<Content<'_>> = Vec::with_capacity(request.messages.len());

    for message in &request.messages {
        let (role, parts) = match message.role {
            Role::System => {
                if !message.content.is_empty() {
                    system_parts.push(Part::Text {
                        text: &message.content,
                    });
                }
                continue;
            }
            Role::User => ("user", user_parts(message)?),
            Role::Assistant => ("model", model_parts(message)),
            Role::Tool => ("user", vec![function_response(message, request)?]),
        };
        push_turn(&mut contents, role, parts);
    }

    Ok(GenerateContentRequest {
        contents,
        system_instruction: (!system_parts.is_empty()).then_some(SystemInstruction {
            parts: system_parts,
        }),
        generation_config: generation_config(request),
        tools: tools(request),
    })
}

/// Appends `parts` to the last turn when it has the same role, or starts a new turn. A
/// message without parts adds nothing, because Gemini rejects empty turns and empty text.
fn push_turn<'a>(contents: &mut Vec<Content<'a>>, role: &'static str, parts: Vec<Part<'a>>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => contents.push(Content { role, parts }),
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn text_part(text: &str) -> Option<Part<'_>> {
    (!text.is_empty()).then_some(Part::Text { text })
}

fn user_parts(message: &ChatMessage) -> Result<Vec<Part<'_>>, ProviderError> {
    let mut parts: Vec<Part<'_>> = text_part(&message.content).into_iter().collect();
    for image in &message.images {
        parts.push(image_part(image)?);
    }
    Ok(parts)
}

/// Converts an assistant message: its text, then its function calls. The first call carries
/// the thought signature that Gemini 3 checks (see [`SKIP_THOUGHT_SIGNATURE`]).
fn model_parts(message: &ChatMessage) -> Vec<Part<'_>> {
    let mut parts: Vec<Part<'_>> = text_part(&message.content).into_iter().collect();
    for (position, call) in message.tool_calls.iter().enumerate() {
        parts.push(Part::FunctionCall {
            function_call: function_call(call),
            thought_signature: (position == 0).then_some(SKIP_THOUGHT_SIGNATURE),
        });
    }
    parts
}

fn function_call(call: &ToolCall) -> FunctionCall<'_> {
    FunctionCall {
        id: non_empty(&call.id),
        name: &call.name,
        args: call.arguments.is_object().then_some(&call.arguments),
    }
}

/// Converts a [`Role::Tool`] message into a `functionResponse` part.
///
/// Gemini matches results to calls by function name. The name comes from `tool_name`, or
/// else from the earlier assistant call with the same `tool_call_id`. Output that is a JSON
/// object is sent as it is, and any other output is wrapped as `{"content": output}`.
fn function_response<'a>(
    message: &'a ChatMessage,
    request: &'a ChatRequest,
) -> Result<Part<'a>, ProviderError> {
    let call_id = message.tool_call_id.as_deref().and_then(non_empty);
    let name = message
        .tool_name
        .as_deref()
        .or_else(|| call_id.and_then(|id| called_tool_name(request, id)))
        .ok_or_else(|| {
            ProviderError::InvalidRequest(
                "a tool result message needs tool_name, or a tool_call_id that matches an \
                 earlier assistant tool call, because Gemini matches results by function name"
                    .to_owned(),
            )
        })?;

    let response = match serde_json::from_str::<serde_json::Value>(&message.content) {
        Ok(object @ serde_json::Value::Object(_)) => object,
        _ => serde_json::json!({ "content": message.content }),
    };

    Ok(Part::FunctionResponse {
        function_response: FunctionResponse {
            id: call_id,
            name,
            response,
        },
    })
}

fn called_tool_name<'a>(request: &'a ChatRequest, call_id: &str) -> Option<&'a str> {
    request
        .messages
        .iter()
        .flat_map(|message| &message.tool_calls)
        .find(|call| call.id == call_id)
        .map(|call| call.name.as_str())
}

/// Converts an image. A `data:` URL becomes `inlineData`. Any other URL becomes `fileData`,
/// with a media type guessed from the file extension when it has a known one.
fn image_part(image: &ImageInput) -> Result<Part<'_>, ProviderError> {
    match image {
        ImageInput::Inline {
            media_type,
            data_base64,
        } => Ok(Part::InlineData {
            inline_data: Blob {
                mime_type: media_type,
                data: data_base64,
            },
        }),
        ImageInput::Url(url) if url.starts_with("data:") => {
            let inline_data = parse_data_url(url).ok_or_else(|| {
                ProviderError::InvalidRequest(
                    "image data URL must have the form data:<media type>;base64,<data>".to_owned(),
                )
            })?;
            Ok(Part::InlineData { inline_data })
        }
        ImageInput::Url(url) => Ok(Part::FileData {
            file_data: FileData {
                mime_type: image_media_type(url),
                file_uri: url,
            },
        }),
    }
}

/// Splits `data:image/png;base64,iVBOR...` into its media type and base64 data.
fn parse_data_url(url: &str) -> Option<Blob<'_>> {
    let (header, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mime_type = header.strip_suffix(";base64")?;
    (!mime_type.is_empty() && !data.is_empty()).then_some(Blob { mime_type, data })
}

/// Guesses the media type of an image URL from its extension, ignoring query and fragment.
fn image_media_type(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let (_, extension) = path.rsplit_once('.')?;
    match extension.to_ascii_lowercase().as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "webp" => Some("image/webp"),
        "heic" => Some("image/heic"),
        "heif" => Some("image/heif"),
        "gif" => Some("image/gif"),
        _ => None,
    }
}

fn generation_config(request: &ChatRequest) -> Option<GenerationConfig<'_>> {
    let config = GenerationConfig {
        temperature: request.temperature,
        max_output_tokens: request.max_tokens,
        stop_sequences: &request.stop,
    };
    let is_empty = config.temperature.is_none()
        && config.max_output_tokens.is_none()
        && config.stop_sequences.is_empty();
    (!is_empty).then_some(config)
}

/// Declares every tool in one `tools` entry. A tool without arguments is declared without
/// `parameters`, because Gemini rejects an object schema with no properties.
fn tools(request: &ChatRequest) -> Vec<Tool<'_>> {
    if request.tools.is_empty() {
        return Vec::new();
    }
    let function_declarations = request
        .tools
        .iter()
        .map(|tool| FunctionDeclaration {
            name: &tool.name,
            description: &tool.description,
            parameters: (!is_empty_object_schema(&tool.parameters)).then_some(&tool.parameters),
        })
        .collect();
    vec![Tool {
        function_declarations,
    }]
}

/// Returns whether `schema` declares no arguments: null, `{}`, or an object type whose
/// `properties` are missing or empty.
fn is_empty_object_schema(schema: &serde_json::Value) -> bool {
    match schema {
        serde_json::Value::Null => true,
        serde_json::Value::Object(fields) => {
            let is_object_type = fields
                .get("type")
                .is_none_or(|kind| kind.as_str() == Some("object"));
            let has_properties = fields
                .get("properties")
                .and_then(serde_json::Value::as_object)
                .is_some_and(|properties| !properties.is_empty());
            is_object_type && !has_properties
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
