//! GraphQL over HTTP on `/graphql`, as the GraphQL-over-HTTP specification describes it.
//!
//! - The response format comes from `Accept` (see [`media::negotiate`]), with 406 when
//!   neither `application/graphql-response+json` nor `application/json` is acceptable.
//! - POST takes a JSON body: one parameters object, or an array of them for a batch.
//!   Other content types get 415, and content types that cross-site forms can send get 400
//!   without running anything (see [`media::check_content_type`]).
//! - GET takes the parameters from the query string and runs queries only: a mutation gets
//!   405 with `Allow: POST`. A browser's GET without a `query` parameter gets GraphiQL.
//! - Malformed parameters get 400. Errors raised before execution (syntax, validation,
//!   limits) get 400 with `application/graphql-response+json`, and 200 with
//!   `application/json`. Their body has no `data` entry. Throttled sign-ins get 429 with
//!   `Retry-After` in either format. An operation that ran gets 200, with `Retry-After`
//!   when a per-minute limit refused it. A batch gets 200, with the longest `Retry-After`
//!   of its operations.

use std::collections::BTreeMap;

use async_graphql::{ServerError, parser::types::OperationType};
use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use tracing::{error, warn};

use super::{
    AppState, REQUEST_ID,
    caller::{identify, request_credential, request_data},
    client_ip::client_ip,
    media::{self, ContentTypeRejection, ResponseFormat},
    params::{self, Operations, ParamsError},
};
use service::RequestOrigin;

use crate::{
    graphiql,
    graphql::{
        context::Caller,
        document::selected_operation,
        error::{RETRY_AFTER, code},
        execution::ExecutionStarted,
        input_errors,
        sign_in_guard::ClientIp,
    },
};

/// Runs the operations of a POST request.
pub(super) async fn post(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(rejection) = media::check_content_type(&parts.headers) {
        return content_type_rejected(&parts.headers, rejection);
    }
    let Some(format) = media::negotiate(&parts.headers) else {
        return not_acceptable();
    };

    let settings = &state.platform.settings;
    let body = match read_body(&parts.headers, body, settings.max_request_bytes).await {
        Ok(body) => body,
        Err(response) => return response.with_format(format),
    };
    let operations = match params::from_json_body(&body, settings.graphql.max_batch_operations) {
        Ok(operations) => operations,
        Err(ParamsError(message)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format,
                &message,
                code::BAD_USER_INPUT,
            );
        }
    };

    execute(&state, &parts, format, operations).await
}

/// Serves GraphiQL to browsers, and runs a query from the query string otherwise.
pub(super) async fn get(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if media::accepts_html(&parts.headers) && !params::has_query(&parts.uri) {
        return graphiql::page().await.into_response();
    }
    let Some(format) = media::negotiate(&parts.headers) else {
        return not_acceptable();
    };

    let mut request = match params::from_query_string(&parts.uri) {
        Ok(request) => request,
        Err(ParamsError(message)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format,
                &message,
                code::BAD_USER_INPUT,
            );
        }
    };
    if is_mutation(&mut request) {
        return mutation_over_get(format);
    }

    execute(
        &state,
        &parts,
        format,
        Operations::Single(Box::new(request)),
    )
    .await
}

/// Whether the request's selected operation is a mutation. A document that does not parse
/// is not one here: execution reports it, like on POST.
pub(super) fn is_mutation(request: &mut async_graphql::Request) -> bool {
    let operation_name = request.operation_name.clone();
    request.parsed_query().is_ok_and(|document| {
        selected_operation(document, operation_name.as_deref())
            .is_some_and(|operation| operation.node.ty == OperationType::Mutation)
    })
}

/// 405 with `Allow: POST`, because GET must not change anything.
pub(super) fn mutation_over_get(format: ResponseFormat) -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        format,
        "mutations are not allowed over GET: send them with POST",
        code::BAD_USER_INPUT,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Stops a request that takes longer than `REQUEST_TIMEOUT_SECONDS`, reading its body
/// included, and responds 504 with a TIMEOUT error.
///
/// The handler is dropped at that point, so an operation stops at its next await. Work
/// that the operation handed to a task of its own, such as a reply being generated, goes on.
pub(super) async fn limit_duration(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.platform.settings.request_timeout;
    let format = media::negotiate(request.headers()).unwrap_or(ResponseFormat::Json);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            warn!(timeout.seconds = limit.as_secs(), "request timed out");
            let message = format!(
                "request took longer than the maximum of {} s and was stopped",
                limit.as_secs()
            );
            error_response(StatusCode::GATEWAY_TIMEOUT, format, &message, code::TIMEOUT)
        }
    }
}

/// Authenticates the request once and runs its operations one after the other.
async fn execute(
    state: &AppState,
    parts: &Parts,
    format: ResponseFormat,
    operations: Operations,
) -> Response {
    let (caller, origin) = authenticate(state, parts).await;
    match operations {
        Operations::Single(request) => {
            let outcome = run(state, caller, &origin, *request).await;
            single_response(format, &outcome)
        }
        Operations::Batch(requests) => {
            let mut outcomes = Vec::with_capacity(requests.len());
            for request in requests {
                outcomes.push(run(state, caller.clone(), &origin, request).await);
            }
            let bodies: Vec<ResponseBody<'_>> = outcomes.iter().map(Outcome::body).collect();
            let mut response = serialized(StatusCode::OK, format, &bodies);
            // A batch gets 200 as a whole, so the longest wait of its rejected operations
            // goes in `Retry-After` for clients that only read headers.
            let retry_after = outcomes
                .iter()
                .filter_map(|outcome| retry_after_seconds(&outcome.response.errors))
                .max();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    }
}

/// Authenticates the credentials of an HTTP request and returns the caller with the
/// request's id and client address.
pub(super) async fn authenticate(state: &AppState, parts: &Parts) -> (Caller, RequestOrigin) {
    let request_id = parts
        .headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let token = request_credential(&parts.headers);
    let client_ip = client_ip(parts, &state.platform.settings.trusted_proxies);
    let origin = RequestOrigin {
        request_id: request_id.clone(),
        client_ip,
    };
    let mut caller = identify(&state.platform, token.as_deref(), request_id).await;
    // The audit log records the address each change came from.
    if let Caller::Authenticated(ctx) = &mut caller {
        ctx.client_ip = client_ip;
    }
    (caller, origin)
}

/// Gives `request` the data its resolvers read, and returns the flag that tells whether
/// its operation started executing.
pub(super) fn prepare(
    state: &AppState,
    caller: Caller,
    origin: &RequestOrigin,
    request: &mut async_graphql::Request,
) -> ExecutionStarted {
    let executed = ExecutionStarted::default();
    request.data = request_data(&state.platform, caller);
    request.data.insert(executed.clone());
    if let Some(ip) = origin.client_ip {
        request.data.insert(ClientIp(ip));
    }
    request.data.insert(origin.clone());
    executed
}

/// A GraphQL response with whether its operation started executing.
pub(super) struct Outcome {
    pub(super) response: async_graphql::Response,
    pub(super) executed: bool,
}

impl Outcome {
    /// Returns the body to send, which has no `data` when the operation never ran, as the
    /// GraphQL specification requires for request errors.
    pub(super) fn body(&self) -> ResponseBody<'_> {
        if self.executed {
            ResponseBody::Executed(&self.response)
        } else {
            ResponseBody::RequestErrors {
                errors: &self.response.errors,
                extensions: &self.response.extensions,
            }
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum ResponseBody<'a> {
    Executed(&'a async_graphql::Response),
    RequestErrors {
        errors: &'a [ServerError],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extensions: &'a BTreeMap<String, async_graphql::Value>,
    },
}

async fn run(
    state: &AppState,
    caller: Caller,
    origin: &RequestOrigin,
    mut request: async_graphql::Request,
) -> Outcome {
    let executed = prepare(state, caller, origin, &mut request);
    let mut response = state.schema.execute(request).await;
    input_errors::label(&mut response.errors);
    Outcome {
        response,
        executed: executed.get(),
    }
}

fn single_response(format: ResponseFormat, outcome: &Outcome) -> Response {
    let retry_after = retry_after_seconds(&outcome.response.errors);
    let status = match (outcome.executed, retry_after, format) {
        (true, _, _) => StatusCode::OK,
        (false, Some(_), _) => StatusCode::TOO_MANY_REQUESTS,
        (false, None, ResponseFormat::GraphqlResponseJson) => StatusCode::BAD_REQUEST,
        (false, None, ResponseFormat::Json) => StatusCode::OK,
    };
    let mut response = serialized(status, format, &outcome.body());
    let headers = response.headers_mut();
    for (name, value) in &outcome.response.http_headers {
        headers.append(name, value.clone());
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `retryAfter` of the first RATE_LIMITED error.
fn retry_after_seconds(errors: &[ServerError]) -> Option<u64> {
    errors.iter().find_map(|error| {
        let extensions = error.extensions.as_ref()?;
        let is_rate_limited = matches!(
            extensions.get("code"),
            Some(async_graphql::Value::String(code)) if code == code::RATE_LIMITED
        );
        if !is_rate_limited {
            return None;
        }
        match extensions.get(RETRY_AFTER)? {
            async_graphql::Value::Number(seconds) => seconds.as_u64(),
            _ => None,
        }
    })
}

/// A body that could not be read: the status and message of the response, which gets its
/// content type once the response format is known.
pub(super) struct BodyError {
    status: StatusCode,
    message: String,
}

impl BodyError {
    pub(super) fn with_format(self, format: ResponseFormat) -> Response {
        error_response(self.status, format, &self.message, code::BAD_USER_INPUT)
    }
}

/// Reads the whole body, or fails with 413 as soon as it is known to exceed `max_bytes`:
/// at once from `Content-Length`, or while streaming a body sent without one.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max_bytes: usize,
) -> Result<Vec<u8>, BodyError> {
    let too_large = || BodyError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body is larger than the maximum of {max_bytes} bytes"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return Err(too_large());
    }

    let mut bytes = Vec::with_capacity(declared.map_or(0, |length| length as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| BodyError {
            status: StatusCode::BAD_REQUEST,
            message: format!("reading the request body failed: {error}"),
        })?;
        if bytes.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

pub(super) fn content_type_rejected(
    headers: &HeaderMap,
    rejection: ContentTypeRejection,
) -> Response {
    let format = media::negotiate(headers).unwrap_or(ResponseFormat::Json);
    let (status, message) = match rejection {
        ContentTypeRejection::CrossSiteRequest => (
            StatusCode::BAD_REQUEST,
            "request rejected as possible cross-site request forgery: send the operation \
             with Content-Type: application/json"
                .to_owned(),
        ),
        ContentTypeRejection::Unsupported(None) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type is missing: send application/json".to_owned(),
        ),
        ContentTypeRejection::Unsupported(Some(content_type)) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {content_type:?} is not supported: send application/json in UTF-8"
            ),
        ),
    };
    error_response(status, format, &message, code::BAD_USER_INPUT)
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        ResponseFormat::Json,
        "Accept allows no available response type: accept application/graphql-response+json \
         or application/json",
        code::BAD_USER_INPUT,
    )
}

/// Builds a response in GraphQL's error shape for a request that never reached the schema.
pub(super) fn error_response(
    status: StatusCode,
    format: ResponseFormat,
    message: &str,
    code: &str,
) -> Response {
    let body = json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    serialized(status, format, &body)
}

fn serialized(status: StatusCode, format: ResponseFormat, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, format.content_type());
            response
        }
        Err(serialize_error) => {
            error!(error = %serialize_error, "serializing a GraphQL response failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::ErrorExtensionValues;

    use super::*;

    fn error_with(code: &str, retry_after: Option<u64>) -> ServerError {
        let mut error = ServerError::new("failed", None);
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", code);
        if let Some(seconds) = retry_after {
            extensions.set(RETRY_AFTER, seconds);
        }
        error.extensions = Some(extensions);
        error
    }

    fn outcome(executed: bool, errors: Vec<ServerError>) -> Outcome {
        Outcome {
            response: async_graphql::Response::from_errors(errors),
            executed,
        }
    }

    #[test]
    fn request_errors_status_follows_format() {
        let rejected = outcome(false, vec![error_with(code::BAD_USER_INPUT, None)]);
        let graphql = single_response(ResponseFormat::GraphqlResponseJson, &rejected);
        assert_eq!(graphql.status(), StatusCode::BAD_REQUEST);
        let json = single_response(ResponseFormat::Json, &rejected);
        assert_eq!(json.status(), StatusCode::OK);
    }

    #[test]
    fn executed_operation_gets_ok_with_field_errors() {
        let ran = outcome(true, vec![error_with(code::NOT_FOUND, None)]);
        let response = single_response(ResponseFormat::GraphqlResponseJson, &ran);
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn rate_limited_gets_retry_after() {
        let throttled = outcome(false, vec![error_with(code::RATE_LIMITED, Some(6))]);
        for format in [ResponseFormat::GraphqlResponseJson, ResponseFormat::Json] {
            let response = single_response(format, &throttled);
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[header::RETRY_AFTER], "6");
        }
    }

    #[test]
    fn request_error_body_has_no_data() {
        let rejected = outcome(false, vec![error_with(code::BAD_USER_INPUT, None)]);
        let body = serde_json::to_value(rejected.body()).unwrap();
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["message"], "failed");

        let ran = outcome(true, Vec::new());
        let body = serde_json::to_value(ran.body()).unwrap();
        assert!(body.get("data").is_some(), "{body}");
    }

    #[tokio::test]
    async fn body_without_length_limited_while_read() {
        let chunks = || {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                vec![Ok(vec![b'a'; 6]), Ok(vec![b'b'; 4])];
            Body::from_stream(futures_util::stream::iter(chunks))
        };
        let body = read_body(&HeaderMap::new(), chunks(), 10)
            .await
            .ok()
            .unwrap();
        assert_eq!(body.len(), 10);

        let error = read_body(&HeaderMap::new(), chunks(), 9)
            .await
            .err()
            .unwrap();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            error.message,
            "request body is larger than the maximum of 9 bytes"
        );
    }

    #[tokio::test]
    async fn declared_length_over_limit_rejected_unread() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("11"));
        let error = read_body(&headers, Body::empty(), 10).await.err().unwrap();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
