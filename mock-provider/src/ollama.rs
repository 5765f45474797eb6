//! Ollama's native API: `POST /api/chat` as newline-delimited JSON or as one object, Ollama's
//! `{"error": "..."}` bodies, and the probes `GET /api/version` and `GET /api/tags`.
//!
//! Ollama itself takes no key, so the routes accept requests without one. A bearer token, as
//! a proxy in front of Ollama would require, is recorded when present.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::auth::bearer_token;
use crate::chat::{self, ChatCall};
use crate::format::{ChatFormat, ErrorReply, WireFormat, retry_after_seconds};
use crate::reply::{Finish, Reply};
use crate::scripted::MockToolCall;
use crate::state::MockState;

pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/api/chat", post(generate_chat_completion))
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
}

async fn generate_chat_completion(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer_token(&headers);
    let call = ChatCall {
        path: uri.path(),
        api_key: token,
        bearer_token: token,
        body: &body,
    };
    chat::respond(&state, &Chat, call).await
}

/// Returns the mock's own version in Ollama's version body.
async fn version() -> Json<Value> {
    Json(json!({"version": env!("CARGO_PKG_VERSION")}))
}

/// Lists the one model the mock serves, in Ollama's list of local models.
async fn tags() -> Json<Value> {
    Json(json!({
        "models": [{
            "name": "mock-model:latest",
            "model": "mock-model:latest",
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 0,
            "digest": "0000000000000000000000000000000000000000000000000000000000000000",
            "details": {"format": "gguf", "family": "mock", "parameter_size": "0B"},
        }],
    }))
}

/// The `/api/chat` format.
struct Chat;

impl Chat {
    /// Builds one object of the response: a line of a stream, or with `done` the last line
    /// and the whole body of a response that is not streamed.
    fn chat_object(&self, reply: &Reply, content: &str, done: Option<Finish>) -> Value {
        let mut object = json!({
            "model": reply.model,
            "created_at": Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            "message": {"role": "assistant", "content": content},
            "done": done.is_some(),
        });
        if let Some(finish) = done {
            object["done_reason"] = json!(done_reason(finish));
            // Ollama leaves zero counts out. It also reports durations in nanoseconds,
            // which the mock leaves out.
            let counts = [
                ("prompt_eval_count", reply.prompt_tokens),
                ("eval_count", reply.output_tokens()),
            ];
            for (name, count) in counts.into_iter().filter(|(_, count)| *count != 0) {
                object[name] = json!(count);
            }
        }
        object
    }
}

impl ChatFormat for Chat {
    fn wire_format(&self) -> WireFormat {
        WireFormat::Ollama
    }

    /// Sends `{"error": "..."}`, and `retry-after` in seconds. Ollama's body has no error
    /// code, so an injected code is not sent.
    fn error_response(&self, error: &ErrorReply<'_>) -> Response {
        let mut response = (error.status, Json(json!({"error": error.message}))).into_response();
        if let Some(delay) = error.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, retry_after_seconds(delay));
        }
        response
    }

    /// Rejects a body without a string `model`. A missing `messages` is an empty prompt.
    fn rejection(&self, request: &Value) -> Option<Response> {
        let message = if !request["model"].is_string() {
            "model is required"
        } else if !(request["messages"].is_array() || request["messages"].is_null()) {
            "messages must be an array"
        } else {
            return None;
        };
        Some(self.error_response(&ErrorReply::new(StatusCode::BAD_REQUEST, message)))
    }

    /// Streams unless the body sets `"stream": false`, because Ollama streams by default.
    fn is_streaming(&self, request: &Value) -> bool {
        request["stream"] != Value::Bool(false)
    }

    /// Reads `options.num_predict`. Ollama's -1 for no limit reads as no limit.
    fn max_tokens(&self, request: &Value) -> Option<u64> {
        request["options"]["num_predict"].as_u64()
    }

    /// Builds the whole reply in one object, with the tool calls in `message.tool_calls`.
    fn completion(&self, reply: &Reply) -> Value {
        let mut object = self.chat_object(reply, &reply.text(), Some(reply.finish));
        if reply.finish == Finish::ToolCalls {
            let calls: Vec<Value> = reply.tool_calls.iter().map(tool_call).collect();
            object["message"]["tool_calls"] = json!(calls);
        }
        object
    }

    fn stream_content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn content_frame(&self, reply: &Reply, _index: usize, text: &str) -> String {
        ndjson_line(&self.chat_object(reply, text, None))
    }

    /// Builds one line with empty content and the call in `message.tool_calls`, because
    /// Ollama sends a call whole.
    fn tool_call_frames(&self, reply: &Reply, _index: usize, call: &MockToolCall) -> Vec<String> {
        let mut object = self.chat_object(reply, "", None);
        object["message"]["tool_calls"] = json!([tool_call(call)]);
        vec![ndjson_line(&object)]
    }

    fn stream_closing(&self, reply: &Reply) -> Vec<String> {
        vec![ndjson_line(&self.chat_object(
            reply,
            "",
            Some(reply.finish),
        ))]
    }

    fn stream_error(&self, _reply: &Reply) -> String {
        ndjson_line(&json!({"error": "an error was encountered while running the model"}))
    }
}

fn ndjson_line(object: &Value) -> String {
    format!("{object}\n")
}

/// Builds an entry of `message.tool_calls`. Ollama's `arguments` is a JSON object, sent as
/// the call's arguments are.
fn tool_call(call: &MockToolCall) -> Value {
    json!({"function": {"name": call.name, "arguments": call.arguments}})
}

/// Returns Ollama's `done_reason`. Ollama reports `stop` also after tool calls.
fn done_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "stop",
        Finish::Length => "length",
    }
}
