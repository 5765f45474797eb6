//! HTTP routes of the mock: authentication, chat completions, the model list and 404s.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::Value;

use crate::reply::{ReplyPlan, plan_reply, prompt_tokens, reply_tokens};
use crate::state::MockState;
use crate::stream::{Interruption, stream_response};
use crate::wire::{ReplyHeader, error_body, model_list};
use crate::{MockConfig, MockFailure};

pub(crate) fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .route_layer(middleware::from_fn(require_bearer))
        .fallback(not_found)
        .with_state(state)
}

/// Rejects requests without a non-empty `Authorization: Bearer` token, as OpenAI does.
async fn require_bearer(request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        tracing::debug!(
            http.request.path = request.uri().path(),
            "rejected request without bearer token"
        );
        let message = "Missing bearer token in the Authorization header.";
        return error_response(
            StatusCode::UNAUTHORIZED,
            message,
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        );
    }
    next.run(request).await
}

async fn list_models() -> Json<Value> {
    Json(model_list())
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("Invalid URL ({method} {})", uri.path());
    error_response(
        StatusCode::NOT_FOUND,
        &message,
        "invalid_request_error",
        None,
        None,
    )
}

/// Records the body, applies a queued failure, then streams or returns the reply.
async fn chat_completions(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(error = %error, "rejected chat completion body that is not JSON");
            let message = format!("The request body is not valid JSON: {error}");
            return error_response(
                StatusCode::BAD_REQUEST,
                &message,
                "invalid_request_error",
                None,
                None,
            );
        }
    };
    state.record(request.clone());
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    state.record_bearer_token(token.to_owned());
    if let Some(rejection) = validate(&request) {
        return rejection;
    }

    let failure = state.take_failure();
    let interruption = match failure {
        Some(MockFailure::Status {
            status,
            code,
            retry_after,
        }) => {
            return failure_response(status, code.as_deref(), retry_after);
        }
        Some(MockFailure::ErrorMidStream { after_tokens }) => {
            Some(Interruption::Error { after_tokens })
        }
        Some(MockFailure::CutMidStream { after_tokens }) => {
            Some(Interruption::Cut { after_tokens })
        }
        None => None,
    };

    let config = state.config;
    let plan = plan_reply(&request, config.tokens);
    let prompt_tokens = prompt_tokens(&request);
    let header = ReplyHeader {
        id: state.next_completion_id(),
        created: unix_seconds(),
        model: request["model"].as_str().unwrap_or_default().to_owned(),
        include_usage: request["stream_options"]["include_usage"] == Value::Bool(true),
    };
    tracing::debug!(completion.id = %header.id, tokens = plan.tokens, "mock chat completion");

    if request["stream"] == Value::Bool(true) {
        return stream_response(&header, plan, prompt_tokens, &config, interruption);
    }
    if interruption.is_some() {
        return failure_response(500, None, None);
    }
    completion_response(&header, plan, prompt_tokens, &config).await
}

/// Returns the whole reply as one `chat.completion`, after as long as the streamed reply
/// would take.
async fn completion_response(
    header: &ReplyHeader,
    plan: ReplyPlan,
    prompt_tokens: i64,
    config: &MockConfig,
) -> Response {
    let gaps = u32::try_from(plan.tokens.saturating_sub(1)).unwrap_or(u32::MAX);
    tokio::time::sleep(config.time_to_first_token + config.gap.saturating_mul(gaps)).await;

    let text = reply_tokens(plan.tokens).concat();
    let completion_tokens = i64::try_from(plan.tokens).unwrap_or(i64::MAX);
    Json(header.completion(&text, plan.finish_reason, prompt_tokens, completion_tokens))
        .into_response()
}

/// Rejects a body without a string `model` or an array `messages`, naming the parameter.
fn validate(request: &Value) -> Option<Response> {
    let param = if !request["model"].is_string() {
        "model"
    } else if !request["messages"].is_array() {
        "messages"
    } else {
        return None;
    };
    let message = format!("Missing or invalid required parameter: '{param}'.");
    Some(error_response(
        StatusCode::BAD_REQUEST,
        &message,
        "invalid_request_error",
        Some(param),
        None,
    ))
}

fn failure_response(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error_type = match status.as_u16() {
        429 => "requests",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    let message = format!("Injected failure with HTTP status {status}.");
    let mut response = error_response(status, &message, error_type, None, code);
    if let Some(delay) = retry_after {
        insert_retry_after(response.headers_mut(), delay);
    }
    response
}

/// Sets `retry-after-ms` in milliseconds and `retry-after` in whole seconds, rounded up.
fn insert_retry_after(headers: &mut HeaderMap, delay: Duration) {
    let millis = delay.as_millis();
    let seconds = millis.div_ceil(1000);
    headers.insert(
        "retry-after-ms",
        HeaderValue::from(u64::try_from(millis).unwrap_or(u64::MAX)),
    );
    headers.insert(
        "retry-after",
        HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX)),
    );
}

fn error_response(
    status: StatusCode,
    message: &str,
    error_type: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    (status, Json(error_body(message, error_type, param, code))).into_response()
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
