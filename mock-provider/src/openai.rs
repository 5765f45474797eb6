//! OpenAI's Chat Completions wire format, which Groq's routes serve in Groq's dialect.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::auth::bearer_token;
use crate::chat::{self, ChatCall};
use crate::format::{ChatFormat, ErrorReply, WireFormat, retry_after_seconds};
use crate::groq;
use crate::reply::{Finish, Reply};
use crate::scripted::{MockToolCall, argument_fragments};
use crate::state::MockState;
use crate::stream::sse_data;

/// An SSE comment line that clients must skip, sent before the first chunk.
const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// The event that ends a successful stream.
const DONE: &str = "data: [DONE]\n\n";

pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new().route("/v1/chat/completions", post(chat_completions))
}

async fn chat_completions(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_chat(&state, Dialect::OpenAi, &uri, &headers, &body).await
}

/// The provider whose variant of Chat Completions a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAi,
    /// Usage in `x_groq` of the last chunk, `x_groq.error` for a failure in the stream, and
    /// Groq's error types. See [`crate::groq`].
    Groq,
}

/// Rejects a request without a non-empty bearer token, as OpenAI and Groq do, and serves the
/// others.
pub(crate) async fn serve_chat(
    state: &MockState,
    dialect: Dialect,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let format = ChatCompletions { dialect };
    let token = bearer_token(headers);
    if token.is_empty() {
        return format.missing_bearer(uri);
    }
    let call = ChatCall {
        path: uri.path(),
        api_key: token,
        bearer_token: token,
        body,
    };
    chat::respond(state, &format, call).await
}

/// Returns the model list to a request with a bearer token.
pub(crate) fn list_models(dialect: Dialect, uri: &Uri, headers: &HeaderMap) -> Response {
    let format = ChatCompletions { dialect };
    if bearer_token(headers).is_empty() {
        return format.missing_bearer(uri);
    }
    Json(json!({
        "object": "list",
        "data": [{
            "id": "mock-model",
            "object": "model",
            "created": 0,
            "owned_by": "mock-provider",
        }],
    }))
    .into_response()
}

/// Builds the error body that OpenAI and Groq share.
pub(crate) fn error_body(
    message: &str,
    error_type: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": param, "code": code}})
}

/// The Chat Completions format in one dialect.
struct ChatCompletions {
    dialect: Dialect,
}

impl ChatCompletions {
    fn missing_bearer(&self, uri: &Uri) -> Response {
        tracing::debug!(
            http.request.path = uri.path(),
            "rejected request without bearer token"
        );
        self.error_response(&ErrorReply {
            code: Some("invalid_api_key"),
            ..ErrorReply::new(
                StatusCode::UNAUTHORIZED,
                "Missing bearer token in the Authorization header.",
            )
        })
    }

    /// Returns whether the stream ends with a usage chunk. OpenAI sends one when the request
    /// sets `stream_options.include_usage`, and then adds `"usage": null` to every other
    /// chunk. Groq reports usage in `x_groq` instead.
    fn include_usage(&self, reply: &Reply) -> bool {
        self.dialect == Dialect::OpenAi
            && reply.request["stream_options"]["include_usage"] == Value::Bool(true)
    }

    /// Builds a `chat.completion.chunk` with one choice.
    fn chunk(&self, reply: &Reply, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": completion_id(reply),
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if self.include_usage(reply) {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// Builds OpenAI's last chunk, which carries usage and an empty `choices` array.
    fn usage_chunk(&self, reply: &Reply) -> Value {
        json!({
            "id": completion_id(reply),
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage(reply.prompt_tokens, reply.output_tokens()),
        })
    }
}

impl ChatFormat for ChatCompletions {
    fn wire_format(&self) -> WireFormat {
        match self.dialect {
            Dialect::OpenAi => WireFormat::OpenAi,
            Dialect::Groq => WireFormat::Groq,
        }
    }

    /// Sends OpenAI's `retry-after-ms` and `retry-after`, or only Groq's `retry-after`.
    fn error_response(&self, error: &ErrorReply<'_>) -> Response {
        let error_type = match self.dialect {
            Dialect::OpenAi => openai_error_type(error.status),
            Dialect::Groq => groq::error_type(error.status),
        };
        let body = error_body(error.message, error_type, None, error.code);
        let mut response = (error.status, Json(body)).into_response();
        if let Some(delay) = error.retry_after {
            let headers = response.headers_mut();
            if self.dialect == Dialect::OpenAi {
                let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                headers.insert("retry-after-ms", HeaderValue::from(millis));
            }
            headers.insert("retry-after", retry_after_seconds(delay));
        }
        response
    }

    /// Rejects a body without a string `model` or an array `messages`, naming the parameter.
    fn rejection(&self, request: &Value) -> Option<Response> {
        let param = if !request["model"].is_string() {
            "model"
        } else if !request["messages"].is_array() {
            "messages"
        } else {
            return None;
        };
        let message = format!("Missing or invalid required parameter: '{param}'.");
        let body = error_body(&message, "invalid_request_error", Some(param), None);
        Some((StatusCode::BAD_REQUEST, Json(body)).into_response())
    }

    fn is_streaming(&self, request: &Value) -> bool {
        request["stream"] == Value::Bool(true)
    }

    /// Reads `max_completion_tokens`, or the older `max_tokens`.
    fn max_tokens(&self, request: &Value) -> Option<u64> {
        ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|field| request[*field].as_u64())
    }

    /// Builds a `chat.completion`. A reply of tool calls has `content: null` and the calls in
    /// `message.tool_calls`.
    fn completion(&self, reply: &Reply) -> Value {
        let mut message = json!({"role": "assistant", "content": reply.text(), "refusal": null});
        if reply.finish == Finish::ToolCalls {
            let calls: Vec<Value> = reply
                .tool_calls
                .iter()
                .enumerate()
                .map(|(index, call)| {
                    json!({
                        "id": tool_call_id(reply, index),
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_text()},
                    })
                })
                .collect();
            message["content"] = Value::Null;
            message["tool_calls"] = json!(calls);
        }
        let mut completion = json!({
            "id": completion_id(reply),
            "object": "chat.completion",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason(reply.finish),
            }],
            "usage": usage(reply.prompt_tokens, reply.output_tokens()),
        });
        if self.dialect == Dialect::Groq {
            completion["usage"] = groq::usage(reply);
            completion["x_groq"] = groq::x_groq(reply);
        }
        completion
    }

    fn stream_opening(&self, _reply: &Reply) -> Vec<String> {
        match self.dialect {
            Dialect::OpenAi => vec![KEEP_ALIVE.to_owned()],
            Dialect::Groq => Vec::new(),
        }
    }

    /// Builds the first chunk, which carries the role and empty content, or `content: null`
    /// before tool calls. Groq adds its request id in `x_groq`.
    fn content_start(&self, reply: &Reply) -> Vec<String> {
        let mut role_delta = json!({"role": "assistant", "content": "", "refusal": null});
        if reply.finish == Finish::ToolCalls {
            role_delta["content"] = Value::Null;
        }
        let mut chunk = self.chunk(reply, role_delta, None);
        if self.dialect == Dialect::Groq {
            chunk["x_groq"] = groq::x_groq(reply);
        }
        vec![sse_data(&chunk)]
    }

    fn content_frame(&self, reply: &Reply, _index: usize, text: &str) -> String {
        sse_data(&self.chunk(reply, json!({"content": text}), None))
    }

    /// Builds a chunk with the call's id, type, name and empty arguments, then two chunks
    /// with the halves of its arguments text, as OpenAI streams a call in fragments.
    fn tool_call_frames(&self, reply: &Reply, index: usize, call: &MockToolCall) -> Vec<String> {
        let start = json!({"tool_calls": [{
            "index": index,
            "id": tool_call_id(reply, index),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }]});
        let mut frames = vec![sse_data(&self.chunk(reply, start, None))];

        let arguments = call.arguments_text();
        for fragment in argument_fragments(&arguments) {
            let delta = json!({"tool_calls": [{
                "index": index,
                "function": {"arguments": fragment},
            }]});
            frames.push(sse_data(&self.chunk(reply, delta, None)));
        }
        frames
    }

    /// Builds the finish chunk, the usage chunk when requested, and `[DONE]`. Groq puts the
    /// usage in `x_groq.usage` of the finish chunk.
    fn stream_closing(&self, reply: &Reply) -> Vec<String> {
        let mut finish = self.chunk(reply, json!({}), Some(finish_reason(reply.finish)));
        if self.dialect == Dialect::Groq {
            finish["x_groq"] = groq::x_groq_with_usage(reply);
        }
        let mut frames = vec![sse_data(&finish)];
        if self.include_usage(reply) {
            frames.push(sse_data(&self.usage_chunk(reply)));
        }
        frames.push(DONE.to_owned());
        frames
    }

    fn stream_error(&self, reply: &Reply) -> String {
        match self.dialect {
            Dialect::OpenAi => sse_data(&error_body(
                "The server had an error while processing your request.",
                "server_error",
                None,
                None,
            )),
            Dialect::Groq => sse_data(&groq::error_chunk(reply)),
        }
    }
}

/// Returns the id of the reply's completion and of its chunks, such as `chatcmpl-mock-1`.
pub(crate) fn completion_id(reply: &Reply) -> String {
    format!("chatcmpl-mock-{}", reply.sequence)
}

/// Returns the id of the tool call at `index` of the reply, such as `call_mock_1_0`.
fn tool_call_id(reply: &Reply, index: usize) -> String {
    format!("call_mock_{}_{index}", reply.sequence)
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

/// Returns OpenAI's error type for a status: `requests` for 429, `server_error` for 5xx and
/// `invalid_request_error` otherwise.
fn openai_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "requests",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// Builds OpenAI's `usage` object.
fn usage(prompt_tokens: i64, completion_tokens: i64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    })
}
