//! Anthropic's Messages API: `POST /v1/messages` as one JSON message or as server-sent
//! events, Anthropic's error bodies, and its model list at `GET /v1/models`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::auth::{bearer_token, header_text};
use crate::chat::{self, ChatCall};
use crate::format::{ChatFormat, ErrorReply, WireFormat, retry_after_seconds};
use crate::reply::{Finish, Reply};
use crate::scripted::{MockToolCall, argument_fragments};
use crate::state::MockState;
use crate::stream::sse_event;

const API_KEY_HEADER: &str = "x-api-key";
const VERSION_HEADER: &str = "anthropic-version";

pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new().route("/v1/messages", post(create_message))
}

/// Returns whether a request carries `x-api-key` or `anthropic-version`. Anthropic and OpenAI
/// both list models at `GET /v1/models`, so these headers select Anthropic's list.
pub(crate) fn is_anthropic_request(headers: &HeaderMap) -> bool {
    headers.contains_key(API_KEY_HEADER) || headers.contains_key(VERSION_HEADER)
}

/// Returns Anthropic's model list to a request with a key and a version header.
pub(crate) fn list_models(uri: &Uri, headers: &HeaderMap) -> Response {
    if let Err(error) = authenticate(uri, headers) {
        return Messages.error_response(&error);
    }
    Json(json!({
        "data": [{
            "type": "model",
            "id": "mock-model",
            "display_name": "Mock Model",
            "created_at": "2025-01-01T00:00:00Z",
        }],
        "has_more": false,
        "first_id": "mock-model",
        "last_id": "mock-model",
    }))
    .into_response()
}

async fn create_message(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api_key = match authenticate(&uri, &headers) {
        Ok(api_key) => api_key,
        Err(error) => return Messages.error_response(&error),
    };
    let call = ChatCall {
        path: uri.path(),
        api_key,
        bearer_token: bearer_token(&headers),
        body: &body,
    };
    chat::respond(&state, &Messages, call).await
}

/// Returns the `x-api-key` value, or the error for a request without a key (401) or without
/// `anthropic-version` (400), as Anthropic sends them.
fn authenticate<'a>(uri: &Uri, headers: &'a HeaderMap) -> Result<&'a str, ErrorReply<'static>> {
    let api_key = header_text(headers, API_KEY_HEADER);
    let (status, message) = if api_key.is_empty() {
        (StatusCode::UNAUTHORIZED, "x-api-key header is required")
    } else if header_text(headers, VERSION_HEADER).is_empty() {
        (
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
        )
    } else {
        return Ok(api_key);
    };
    tracing::debug!(
        http.request.path = uri.path(),
        error.message = message,
        "rejected Anthropic request"
    );
    Err(ErrorReply::new(status, message))
}

/// The Messages API format.
struct Messages;

impl Messages {
    /// Builds a `message` object with the given content, stop reason and output count.
    fn message(&self, reply: &Reply, content: Value, stop_reason: Value, output: i64) -> Value {
        json!({
            "id": format!("msg_mock_{}", reply.sequence),
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {
                "input_tokens": reply.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output,
            },
        })
    }
}

impl ChatFormat for Messages {
    fn wire_format(&self) -> WireFormat {
        WireFormat::Anthropic
    }

    /// Sends `{"type": "error", "error": {"type", "message"}}`, and `retry-after` in seconds.
    fn error_response(&self, error: &ErrorReply<'_>) -> Response {
        let error_type = error.code.unwrap_or_else(|| error_type(error.status));
        let body = json!({
            "type": "error",
            "error": {"type": error_type, "message": error.message},
        });
        let mut response = (error.status, Json(body)).into_response();
        if let Some(delay) = error.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, retry_after_seconds(delay));
        }
        response
    }

    /// Rejects a body without a string `model`, an array `messages` or an integer
    /// `max_tokens`, which Anthropic requires.
    fn rejection(&self, request: &Value) -> Option<Response> {
        let field = if !request["model"].is_string() {
            "model"
        } else if !request["messages"].is_array() {
            "messages"
        } else if !request["max_tokens"].is_u64() {
            "max_tokens"
        } else {
            return None;
        };
        let message = format!("{field}: Field required");
        Some(self.error_response(&ErrorReply::new(StatusCode::BAD_REQUEST, &message)))
    }

    fn is_streaming(&self, request: &Value) -> bool {
        request["stream"] == Value::Bool(true)
    }

    fn max_tokens(&self, request: &Value) -> Option<u64> {
        request["max_tokens"].as_u64()
    }

    /// Builds a `message` with one text block, or with one `tool_use` block per tool call.
    fn completion(&self, reply: &Reply) -> Value {
        let content = if reply.finish == Finish::ToolCalls {
            let blocks: Vec<Value> = reply
                .tool_calls
                .iter()
                .enumerate()
                .map(|(index, call)| {
                    json!({
                        "type": "tool_use",
                        "id": tool_use_id(reply, index),
                        "name": call.name,
                        "input": call.arguments,
                    })
                })
                .collect();
            json!(blocks)
        } else {
            json!([{"type": "text", "text": reply.text()}])
        };
        let stop_reason = json!(stop_reason(reply.finish));
        self.message(reply, content, stop_reason, reply.output_tokens())
    }

    /// Builds `message_start`, whose usage has the input count and a first output count of
    /// 1 as Anthropic sends it, then a `ping`.
    fn stream_opening(&self, reply: &Reply) -> Vec<String> {
        let message = self.message(reply, json!([]), Value::Null, 1);
        vec![
            event(&json!({"type": "message_start", "message": message})),
            event(&json!({"type": "ping"})),
        ]
    }

    /// Starts the text block at index 0. A reply of tool calls has no text block.
    fn content_start(&self, reply: &Reply) -> Vec<String> {
        if reply.finish == Finish::ToolCalls {
            return Vec::new();
        }
        vec![event(&json!({
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }))]
    }

    fn content_frame(&self, _reply: &Reply, _index: usize, text: &str) -> String {
        event(&json!({
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }))
    }

    /// Builds the `tool_use` block at content block `index`: `content_block_start` with an
    /// empty `input`, two `input_json_delta` events with the halves of the arguments text,
    /// and `content_block_stop`.
    fn tool_call_frames(&self, reply: &Reply, index: usize, call: &MockToolCall) -> Vec<String> {
        let mut frames = vec![event(&json!({
            "type": "content_block_start",
            "index": index,
            "content_block": {
                "type": "tool_use",
                "id": tool_use_id(reply, index),
                "name": call.name,
                "input": {},
            },
        }))];
        let arguments = call.arguments_text();
        for fragment in argument_fragments(&arguments) {
            frames.push(event(&json!({
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": fragment},
            })));
        }
        frames.push(event(
            &json!({"type": "content_block_stop", "index": index}),
        ));
        frames
    }

    /// Builds `content_block_stop` of the text block, `message_delta` with the stop reason
    /// and the final output count, and `message_stop`. Each `tool_use` block has already
    /// sent its own `content_block_stop`.
    fn stream_closing(&self, reply: &Reply) -> Vec<String> {
        let mut frames = Vec::new();
        if reply.finish != Finish::ToolCalls {
            frames.push(event(&json!({"type": "content_block_stop", "index": 0})));
        }
        frames.push(event(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(reply.finish), "stop_sequence": null},
            "usage": {"output_tokens": reply.output_tokens()},
        })));
        frames.push(event(&json!({"type": "message_stop"})));
        frames
    }

    fn stream_error(&self, _reply: &Reply) -> String {
        event(&json!({
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }))
    }
}

/// Frames a payload as a server-sent event named after its `type`, as Anthropic does.
fn event(payload: &Value) -> String {
    let name = payload["type"].as_str().unwrap_or_default();
    sse_event(name, payload)
}

/// Returns the id of the `tool_use` block at `index` of the reply, such as `toolu_mock_1_0`.
fn tool_use_id(reply: &Reply, index: usize) -> String {
    format!("toolu_mock_{}_{index}", reply.sequence)
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
    }
}

/// Returns the error type Anthropic documents for a status. 529 is Anthropic's status for an
/// overloaded API.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}
