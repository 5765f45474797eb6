//! The Gemini API of Google AI: `generateContent`, `streamGenerateContent?alt=sse`, Google's
//! error bodies, and the model list at `GET /v1beta/models`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::auth::{bearer_token, header_text};
use crate::chat::{self, ChatCall};
use crate::format::{ChatFormat, ErrorReply, WireFormat};
use crate::reply::{Finish, Reply};
use crate::scripted::MockToolCall;
use crate::state::MockState;

const API_KEY_HEADER: &str = "x-goog-api-key";

pub(crate) fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/v1beta/models", get(list_models))
        // One path segment contains the model and the method, such as
        // `gemini-2.5-flash:generateContent`.
        .route("/v1beta/models/{model_method}", post(generate))
}

async fn list_models(uri: Uri, headers: HeaderMap) -> Response {
    if let Err(error) = authenticate(&uri, &headers) {
        return google_error(&error);
    }
    Json(json!({
        "models": [{
            "name": "models/mock-model",
            "version": "001",
            "displayName": "Mock Model",
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }],
    }))
    .into_response()
}

async fn generate(
    State(state): State<Arc<MockState>>,
    Path(model_method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api_key = match authenticate(&uri, &headers) {
        Ok(api_key) => api_key,
        Err(error) => return google_error(&error),
    };
    let (model, method) = model_method.split_once(':').unwrap_or((&model_method, ""));
    let streaming = match method {
        "generateContent" => false,
        "streamGenerateContent" if requests_sse(&uri) => true,
        "streamGenerateContent" => {
            let message = "The mock serves streamGenerateContent only with alt=sse.";
            return google_error(&ErrorReply::new(StatusCode::BAD_REQUEST, message));
        }
        _ => {
            let message = format!(
                "Method '{method}' of models/{model} is not found: the mock serves \
                 generateContent and streamGenerateContent."
            );
            return google_error(&ErrorReply::new(StatusCode::NOT_FOUND, &message));
        }
    };

    let format = GenerateContent {
        model: model.to_owned(),
        streaming,
    };
    let call = ChatCall {
        path: uri.path(),
        api_key,
        bearer_token: bearer_token(&headers),
        body: &body,
    };
    chat::respond(&state, &format, call).await
}

/// Returns the `x-goog-api-key` value, or Google's 403 error for a caller without a key.
fn authenticate<'a>(uri: &Uri, headers: &'a HeaderMap) -> Result<&'a str, ErrorReply<'static>> {
    let api_key = header_text(headers, API_KEY_HEADER);
    if !api_key.is_empty() {
        return Ok(api_key);
    }
    tracing::debug!(
        http.request.path = uri.path(),
        "rejected Gemini request without API key"
    );
    let message = "Method doesn't allow unregistered callers (callers without established \
                   identity). Please use API Key or other form of API consumer identity to \
                   call this API.";
    Err(ErrorReply::new(StatusCode::FORBIDDEN, message))
}

/// Returns whether the query contains `alt=sse`, which selects server-sent events.
fn requests_sse(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "alt=sse"))
}

/// Builds a `google.rpc.Status` error body. A retry delay is a `RetryInfo` detail, where
/// Google sends it, rather than a header.
fn google_error(error: &ErrorReply<'_>) -> Response {
    let status_name = error.code.unwrap_or_else(|| status_name(error.status));
    let mut body = json!({"error": {
        "code": error.status.as_u16(),
        "message": error.message,
        "status": status_name,
    }});
    if let Some(delay) = error.retry_after {
        body["error"]["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": protobuf_duration(delay),
        }]);
    }
    (error.status, Json(body)).into_response()
}

/// The `generateContent` format for one model, streamed when the path's method is
/// `streamGenerateContent`.
struct GenerateContent {
    model: String,
    streaming: bool,
}

impl ChatFormat for GenerateContent {
    fn wire_format(&self) -> WireFormat {
        WireFormat::Gemini
    }

    fn error_response(&self, error: &ErrorReply<'_>) -> Response {
        google_error(error)
    }

    /// Rejects a body without a `contents` array, with Google's message for it.
    fn rejection(&self, request: &Value) -> Option<Response> {
        if request["contents"].is_array() {
            return None;
        }
        let message = "* GenerateContentRequest.contents: contents is not specified\n";
        Some(google_error(&ErrorReply::new(
            StatusCode::BAD_REQUEST,
            message,
        )))
    }

    fn is_streaming(&self, _request: &Value) -> bool {
        self.streaming
    }

    fn model(&self, _request: &Value) -> String {
        self.model.clone()
    }

    fn max_tokens(&self, request: &Value) -> Option<u64> {
        request["generationConfig"]["maxOutputTokens"].as_u64()
    }

    /// Builds a response with one text part, or with one `functionCall` part per tool call.
    fn completion(&self, reply: &Reply) -> Value {
        let parts = if reply.finish == Finish::ToolCalls {
            reply.tool_calls.iter().map(function_call_part).collect()
        } else {
            json!([{"text": reply.text()}])
        };
        response(reply, parts, Some(reply.finish), reply.output_tokens())
    }

    /// Builds one response per chunk, whose usage has the running totals so far.
    fn content_frame(&self, reply: &Reply, index: usize, text: &str) -> String {
        let candidates_tokens = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let parts = json!([{ "text": text }]);
        sse_data(&response(reply, parts, None, candidates_tokens))
    }

    /// Builds one response with the call's `functionCall` part, because Gemini sends a call
    /// whole, and usage with the running totals so far.
    fn tool_call_frames(&self, reply: &Reply, index: usize, call: &MockToolCall) -> Vec<String> {
        let candidates_tokens = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let parts = json!([function_call_part(call)]);
        vec![sse_data(&response(reply, parts, None, candidates_tokens))]
    }

    /// Builds the last response: an empty text part, the finish reason and the final usage.
    /// Gemini sends no end marker after it.
    fn stream_closing(&self, reply: &Reply) -> Vec<String> {
        let parts = json!([{"text": ""}]);
        let last = response(reply, parts, Some(reply.finish), reply.output_tokens());
        vec![sse_data(&last)]
    }

    fn stream_error(&self, _reply: &Reply) -> String {
        sse_data(&json!({"error": {
            "code": 500,
            "message": "An internal error has occurred. Please retry or report in \
                        https://developers.generativeai.google/guide/troubleshooting",
            "status": "INTERNAL",
        }}))
    }
}

/// Builds a `GenerateContentResponse` with one candidate made of `parts`, and usage with
/// `candidates_tokens` reply tokens.
fn response(reply: &Reply, parts: Value, finish: Option<Finish>, candidates_tokens: i64) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish_reason(finish));
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage_metadata(reply.prompt_tokens, candidates_tokens),
        "modelVersion": reply.model,
        "responseId": format!("mock-response-{}", reply.sequence),
    })
}

/// Builds a `functionCall` part. Gemini's `args` is a JSON object, sent as the call's
/// arguments are.
fn function_call_part(call: &MockToolCall) -> Value {
    json!({"functionCall": {"name": call.name, "args": call.arguments}})
}

/// Builds `usageMetadata`, leaving out zero counts as Google's JSON does.
fn usage_metadata(prompt_tokens: i64, candidates_tokens: i64) -> Value {
    let counts = [
        ("promptTokenCount", prompt_tokens),
        ("candidatesTokenCount", candidates_tokens),
        ("totalTokenCount", prompt_tokens + candidates_tokens),
    ];
    let mut usage = serde_json::Map::new();
    for (name, count) in counts.into_iter().filter(|(_, count)| *count != 0) {
        usage.insert(name.to_owned(), json!(count));
    }
    if prompt_tokens != 0 {
        usage.insert(
            "promptTokensDetails".to_owned(),
            json!([{"modality": "TEXT", "tokenCount": prompt_tokens}]),
        );
    }
    Value::Object(usage)
}

/// Frames a response as one server-sent event with the CRLF line endings Google sends.
fn sse_data(data: &Value) -> String {
    format!("data: {data}\r\n\r\n")
}

/// Returns Gemini's `finishReason`. Gemini reports `STOP` also after function calls.
fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::ToolCalls => "STOP",
        Finish::Length => "MAX_TOKENS",
    }
}

/// Returns the canonical code name Google sends with a status. Other client errors are
/// `INVALID_ARGUMENT` and other server errors `INTERNAL`.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        400..=499 => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    }
}

/// Formats a duration as protobuf's JSON duration: seconds with up to three decimals and an
/// `s` suffix, such as `"7s"` or `"1.200s"`.
fn protobuf_duration(delay: Duration) -> String {
    let millis = delay.subsec_millis();
    if millis == 0 {
        format!("{}s", delay.as_secs())
    } else {
        format!("{}.{millis:03}s", delay.as_secs())
    }
}
