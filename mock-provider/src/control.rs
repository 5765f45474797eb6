//! The control routes under `/mock/`, which queue, count and clear scripted replies over HTTP.
//! They use the same queue as [`MockProvider::reply_next`](crate::MockProvider::reply_next)
//! and take no key.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::scripted::{MockReply, MockToolCall};
use crate::state::MockState;

const TOOL_CALLS: &str = "toolCalls";
const TEXT: &str = "text";
const NAME: &str = "name";
const ARGUMENTS: &str = "arguments";

pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new().route(
        "/mock/replies",
        post(queue_reply).get(count_replies).delete(clear_replies),
    )
}

/// Queues the scripted reply in the body. The body is parsed as JSON whatever its
/// `Content-Type`, so `curl -d` works without a `Content-Type` header.
async fn queue_reply(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    let reply = match parse_reply(&body) {
        Ok(reply) => reply,
        Err(message) => {
            tracing::debug!(error.message = %message, "rejected scripted reply");
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response();
        }
    };

    state.push_reply(reply);
    tracing::debug!(
        mock.queued_replies = state.queued_replies(),
        "queued scripted reply"
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn count_replies(State(state): State<Arc<MockState>>) -> Json<Value> {
    Json(json!({ "queued": state.queued_replies() }))
}

async fn clear_replies(State(state): State<Arc<MockState>>) -> StatusCode {
    state.clear_replies();
    StatusCode::NO_CONTENT
}

/// Parses a body of the form `{"toolCalls": [{"name": ..., "arguments": ...}, ...]}` or
/// `{"text": ...}`. The error names the first problem found.
fn parse_reply(body: &[u8]) -> Result<MockReply, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("body is not valid JSON: {error}"))?;
    let Value::Object(mut fields) = value else {
        return Err("body must be a JSON object with either toolCalls or text".to_owned());
    };
    if let Some(field) = unknown_field(&fields, &[TOOL_CALLS, TEXT]) {
        return Err(format!(
            "unknown field `{field}`: body must have either toolCalls or text"
        ));
    }

    match (fields.remove(TOOL_CALLS), fields.remove(TEXT)) {
        (Some(calls), None) => parse_tool_calls(calls).map(MockReply::ToolCalls),
        (None, Some(Value::String(text))) => Ok(MockReply::Text(text)),
        (None, Some(_)) => Err("text must be a string".to_owned()),
        (Some(_), Some(_)) => Err("body must have either toolCalls or text, not both".to_owned()),
        (None, None) => Err("body must have either toolCalls or text".to_owned()),
    }
}

fn parse_tool_calls(calls: Value) -> Result<Vec<MockToolCall>, String> {
    let Value::Array(calls) = calls else {
        return Err("toolCalls must be an array of tool calls".to_owned());
    };
    if calls.is_empty() {
        return Err("toolCalls must contain at least one tool call".to_owned());
    }
    calls
        .into_iter()
        .enumerate()
        .map(|(index, call)| parse_tool_call(index, call))
        .collect()
}

/// Parses one tool call. Missing `arguments` become `{}`, the arguments of a tool without
/// parameters.
fn parse_tool_call(index: usize, call: Value) -> Result<MockToolCall, String> {
    let Value::Object(mut fields) = call else {
        return Err(format!(
            "toolCalls[{index}] must be an object with name and arguments"
        ));
    };
    if let Some(field) = unknown_field(&fields, &[NAME, ARGUMENTS]) {
        return Err(format!(
            "unknown field `{field}` in toolCalls[{index}]: a tool call has name and arguments"
        ));
    }

    let name = match fields.remove(NAME) {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => {
            return Err(format!(
                "toolCalls[{index}].name must be a non-empty string"
            ));
        }
    };
    let arguments = fields.remove(ARGUMENTS).unwrap_or_else(|| json!({}));
    Ok(MockToolCall { name, arguments })
}

/// Returns the first key of `fields` that is not in `known`, so a misspelt field is
/// reported instead of ignored.
fn unknown_field<'a>(fields: &'a Map<String, Value>, known: &[&str]) -> Option<&'a str> {
    fields
        .keys()
        .map(String::as_str)
        .find(|key| !known.contains(key))
}
