//! Groq's dialect of Chat Completions under `/openai/v1`. The bodies are OpenAI's, built in
//! [`crate::openai`], with the differences this module builds: the request id and usage in
//! `x_groq`, a failure in the stream as `x_groq.error`, and Groq's error types.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::openai::{self, Dialect, completion_id};
use crate::reply::Reply;
use crate::state::MockState;

pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/openai/v1/chat/completions", post(chat_completions))
        .route("/openai/v1/models", get(list_models))
}

async fn chat_completions(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    openai::serve_chat(&state, Dialect::Groq, &uri, &headers, &body).await
}

async fn list_models(uri: Uri, headers: HeaderMap) -> Response {
    openai::list_models(Dialect::Groq, &uri, &headers)
}

/// Returns Groq's error type for a status. Groq sends 498 when its flex service tier has no
/// capacity left.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "requests",
        498 => "capacity_exceeded",
        500..=599 => "internal_server_error",
        _ => "invalid_request_error",
    }
}

/// Builds the `x_groq` object with Groq's request id, sent in the first chunk of a stream
/// and in a completion that is not streamed.
pub(crate) fn x_groq(reply: &Reply) -> Value {
    json!({"id": request_id(reply)})
}

/// Builds the `x_groq` object of a stream's finish chunk, which carries the usage.
pub(crate) fn x_groq_with_usage(reply: &Reply) -> Value {
    json!({"id": request_id(reply), "usage": usage(reply)})
}

/// Builds Groq's `usage` object. Groq also reports queue and processing times in seconds,
/// which the mock leaves out.
pub(crate) fn usage(reply: &Reply) -> Value {
    let completion_tokens = reply.output_tokens();
    json!({
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": reply.prompt_tokens + completion_tokens,
    })
}

/// Builds the chunk that ends a stream Groq stopped early, with the reason in
/// `x_groq.error`.
pub(crate) fn error_chunk(reply: &Reply) -> Value {
    json!({
        "id": completion_id(reply),
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "choices": [],
        "x_groq": {"id": request_id(reply), "error": "Internal Server Error"},
    })
}

fn request_id(reply: &Reply) -> String {
    format!("req_mock_{}", reply.sequence)
}
