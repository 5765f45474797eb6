//! GraphQL over Server-Sent Events on `/graphql/stream`, in the distinct-connections mode
//! of the GraphQL over SSE protocol (the one the `graphql-sse` client library speaks), for
//! clients behind proxies that block WebSockets.
//!
//! Each operation is its own request: POST with a JSON body, or GET with the parameters in
//! the query string (queries and subscriptions only). The client must accept
//! `text/event-stream`. Every result, request errors included, is a `next` event, and a
//! `complete` event follows the last one. A client ends a subscription by closing the
//! connection. A comment line every 15 s keeps idle connections open through proxies.
//! The credentials are checked again as on a WebSocket: once they stop holding, the
//! stream ends with a `next` event carrying the error, then `complete`.

use std::{convert::Infallible, future::Future, pin::Pin, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use futures_util::{
    Stream, StreamExt,
    stream::{self, BoxStream},
};
use serde_json::json;
use service::RequestOrigin;
use tokio::time::Instant;
use tokio_stream::wrappers::IntervalStream;
use tracing::error;

use super::{
    AppState,
    caller::request_credential,
    credential::{self, Lapsed},
    graphql::{
        Outcome, authenticate, content_type_rejected, error_response, is_mutation,
        mutation_over_get, prepare, read_body,
    },
    media::{self, ResponseFormat},
    params::{self, Operations, ParamsError},
};
use crate::graphql::{context::Caller, error::code, input_errors};

/// Starts the operation of a POST request.
pub(super) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(rejection) = media::check_content_type(&parts.headers) {
        return content_type_rejected(&parts.headers, rejection);
    }
    if !accepts_event_stream(&parts.headers) {
        return not_acceptable();
    }
    let settings = &state.platform.settings;
    let body = match read_body(&parts.headers, body, settings.max_request_bytes).await {
        Ok(body) => body,
        Err(rejection) => return rejection.with_format(ResponseFormat::Json),
    };
    let request = match params::from_json_body(&body, 1) {
        Ok(Operations::Single(request)) => *request,
        Ok(Operations::Batch(_)) => {
            return bad_request("send one operation per request: batches are not streamed");
        }
        Err(ParamsError(message)) => return bad_request(&message),
    };
    let (caller, origin) = authenticate(&state, &parts).await;
    let lapsed = watch_credential(&state, &parts, &caller);
    stream_results(state, caller, origin, request, lapsed)
}

/// Starts the operation of a GET request, which may not be a mutation.
pub(super) async fn get(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if !accepts_event_stream(&parts.headers) {
        return not_acceptable();
    }
    let mut request = match params::from_query_string(&parts.uri) {
        Ok(request) => request,
        Err(ParamsError(message)) => return bad_request(&message),
    };
    if is_mutation(&mut request) {
        return mutation_over_get(ResponseFormat::Json);
    }
    let (caller, origin) = authenticate(&state, &parts).await;
    let lapsed = watch_credential(&state, &parts, &caller);
    stream_results(state, caller, origin, request, lapsed)
}

/// Starts watching the request's credential, for a caller that authenticated.
fn watch_credential(state: &AppState, parts: &Parts, caller: &Caller) -> Option<LapsedWatch> {
    let Caller::Authenticated(context) = caller else {
        return None;
    };
    let token = request_credential(&parts.headers)?;
    Some(credential::watch(&state.platform, token, context.clone()))
}

type LapsedWatch = Pin<Box<dyn Future<Output = Lapsed> + Send>>;

/// How often an idle stream sends a comment line, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn stream_results(
    state: AppState,
    caller: Caller,
    origin: RequestOrigin,
    mut request: async_graphql::Request,
    lapsed: Option<LapsedWatch>,
) -> Response {
    let executed = prepare(&state, caller, &origin, &mut request);
    let results = state
        .schema
        .execute_stream(request)
        .map(move |mut response| {
            input_errors::label(&mut response.errors);
            let outcome = Outcome {
                response,
                executed: executed.get(),
            };
            next_event(&outcome)
        });
    // The empty `data` line makes browsers' EventSource deliver the event.
    let complete = stream::once(async { Bytes::from_static(b"event: complete\ndata: \n\n") });
    let events = results.chain(complete);
    let keep_alive = IntervalStream::new(tokio::time::interval_at(
        Instant::now() + KEEP_ALIVE,
        KEEP_ALIVE,
    ))
    .map(|_| Bytes::from_static(b":\n\n"));
    // The stream ends with its last event, not with the keep-alive timer.
    let events = stream::select(
        events.map(Some).chain(stream::once(async { None })),
        keep_alive.map(Some),
    )
    .take_while(|chunk| std::future::ready(chunk.is_some()))
    .filter_map(std::future::ready);
    let body = until_lapsed(events.boxed(), lapsed)
        .take_until(state.websockets.closing_owned())
        .map(Ok::<_, Infallible>);

    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx buffer responses unless this header disables it.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Ends `events` once the credential stops holding, with a `next` event carrying the
/// reason and a `complete` event, like an expired or revoked WebSocket connection.
fn until_lapsed(
    events: BoxStream<'static, Bytes>,
    lapsed: Option<LapsedWatch>,
) -> impl Stream<Item = Bytes> + Send {
    stream::unfold(Some((events, lapsed)), |state| async move {
        let (mut events, mut lapsed) = state?;
        let next = match lapsed.as_mut() {
            Some(watch) => tokio::select! {
                item = events.next() => item,
                lapsed = watch => return Some((lapsed_events(&lapsed), None)),
            },
            None => events.next().await,
        };
        next.map(|bytes| (bytes, Some((events, lapsed))))
    })
}

fn lapsed_events(lapsed: &Lapsed) -> Bytes {
    let code = if lapsed.forbidden {
        code::FORBIDDEN
    } else {
        code::UNAUTHENTICATED
    };
    let result = json!({ "errors": [{
        "message": format!("the stream ended: {}", lapsed.reason),
        "extensions": { "code": code },
    }] });
    Bytes::from(format!(
        "event: next\ndata: {result}\n\nevent: complete\ndata: \n\n"
    ))
}

/// Formats a `next` event with one result. JSON has no raw line breaks, so one `data` line
/// contains it.
fn next_event(outcome: &Outcome) -> Bytes {
    let json = serde_json::to_string(&outcome.body()).unwrap_or_else(|serialize_error| {
        error!(error = %serialize_error, "serializing a GraphQL result failed");
        r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#.to_owned()
    });
    Bytes::from(format!("event: next\ndata: {json}\n\n"))
}

/// Returns whether `Accept` allows `text/event-stream`.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let media_type = range.split(';').next().unwrap_or("").trim();
            media_type.eq_ignore_ascii_case("text/event-stream") || media_type == "*/*"
        })
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        ResponseFormat::Json,
        "this endpoint streams results as Server-Sent Events: accept text/event-stream",
        code::BAD_USER_INPUT,
    )
}

fn bad_request(message: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        ResponseFormat::Json,
        message,
        code::BAD_USER_INPUT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_must_be_acceptable() {
        let accepting = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            accepts_event_stream(&headers)
        };
        assert!(accepting("text/event-stream"));
        assert!(accepting("application/json, Text/Event-Stream; q=0.5"));
        assert!(accepting("*/*"));
        assert!(!accepting("application/json"));
        assert!(!accepting("text/html"));
        assert!(!accepts_event_stream(&HeaderMap::new()));
    }
}
