//! The steps that every chat request takes, whatever its wire format: parse the body, record
//! it, check it, apply a queued failure or take a scripted reply, then stream or return the
//! reply.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::format::{ChatFormat, ErrorReply};
use crate::reply::{Interruption, Reply, plan_content, prompt_tokens};
use crate::state::{MockState, ReceivedRequest};
use crate::{MockConfig, MockFailure, MockReply, stream};

/// A chat request whose credentials the format's handler has already checked.
pub(crate) struct ChatCall<'a> {
    pub(crate) path: &'a str,
    pub(crate) api_key: &'a str,
    pub(crate) bearer_token: &'a str,
    pub(crate) body: &'a [u8],
}

/// Serves one chat request in `format`.
pub(crate) async fn respond(
    state: &MockState,
    format: &impl ChatFormat,
    call: ChatCall<'_>,
) -> Response {
    let request: Value = match serde_json::from_slice(call.body) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(error = %error, "rejected chat request body that is not JSON");
            let message = format!("The request body is not valid JSON: {error}");
            return format.error_response(&ErrorReply::new(StatusCode::BAD_REQUEST, &message));
        }
    };
    state.record(ReceivedRequest {
        format: format.wire_format(),
        path: call.path.to_owned(),
        api_key: call.api_key.to_owned(),
        bearer_token: call.bearer_token.to_owned(),
        body: request.clone(),
    });
    if let Some(rejection) = format.rejection(&request) {
        tracing::debug!(
            http.response.status_code = rejection.status().as_u16(),
            "rejected chat request body"
        );
        return rejection;
    }

    let interruption = match state.take_failure() {
        Some(MockFailure::Status {
            status,
            code,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::debug!(
                http.response.status_code = status.as_u16(),
                "sending injected failure status"
            );
            let message = format!("Injected failure with HTTP status {status}.");
            return format.error_response(&ErrorReply {
                status,
                message: &message,
                code: code.as_deref(),
                retry_after,
            });
        }
        Some(MockFailure::ErrorMidStream { after_tokens }) => {
            Some(Interruption::Error { after_tokens })
        }
        Some(MockFailure::CutMidStream { after_tokens }) => {
            Some(Interruption::Cut { after_tokens })
        }
        None => None,
    };

    // A failure takes precedence, and the scripted reply stays queued for the next request.
    let scripted = if interruption.is_none() {
        state.take_reply()
    } else {
        None
    };

    let config = state.config;
    let reply = plan_reply(state, format, request, interruption, scripted);
    tracing::debug!(
        format = ?format.wire_format(),
        reply.sequence = reply.sequence,
        tokens = reply.tokens.len(),
        tool_calls = reply.tool_calls.len(),
        "mock chat reply"
    );

    if format.is_streaming(&reply.request) {
        return stream::response(format, &reply, &config);
    }
    if reply.interruption.is_some() {
        let message = "Injected failure: a mid-stream failure fails a request that is not \
                       streamed with HTTP status 500.";
        return format.error_response(&ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, message));
    }
    completion_response(format, &reply, &config).await
}

fn plan_reply(
    state: &MockState,
    format: &impl ChatFormat,
    request: Value,
    interruption: Option<Interruption>,
    scripted: Option<MockReply>,
) -> Reply {
    let limit = format.max_tokens(&request);
    let (tokens, tool_calls, finish) = plan_content(scripted, limit, state.config.tokens);
    Reply {
        sequence: state.next_sequence(),
        created: unix_seconds(),
        model: format.model(&request),
        prompt_tokens: prompt_tokens(&request),
        request,
        tokens,
        tool_calls,
        finish,
        interruption,
    }
}

/// Returns the whole reply in one body, after as long as the streamed reply would take.
async fn completion_response(
    format: &impl ChatFormat,
    reply: &Reply,
    config: &MockConfig,
) -> Response {
    let gaps = u32::try_from(reply.chunk_count().saturating_sub(1)).unwrap_or(u32::MAX);
    tokio::time::sleep(config.time_to_first_token + config.gap.saturating_mul(gaps)).await;
    Json(format.completion(reply)).into_response()
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
