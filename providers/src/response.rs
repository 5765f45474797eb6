//! Sending an adapter's request and reading the response: the status check, the size-capped
//! error body, the `retry-after` delay and JSON success bodies.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::ProviderError;

/// Maximum number of bytes of an error body that are read, so that a misbehaving server
/// cannot make the client buffer an unbounded body.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Sends the request and returns the response if its status is a success.
///
/// On any other status, reads at most [`MAX_ERROR_BODY_BYTES`] of the body and returns the
/// error that `map_error` makes of the status, the headers and that body.
pub(crate) async fn send(
    request: RequestBuilder,
    map_error: impl FnOnce(StatusCode, &HeaderMap, &[u8]) -> ProviderError,
) -> Result<Response, ProviderError> {
    let response = request
        .send()
        .await
        .map_err(|error| ProviderError::from_transport(&error))?;

    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }

    let headers = response.headers().clone();
    let body = read_limited(response, MAX_ERROR_BODY_BYTES).await;
    let error = map_error(status, &headers, &body);
    tracing::debug!(
        http.response.status_code = status.as_u16(),
        error.type = error.code(),
        "provider returned an error status"
    );
    Err(error)
}

/// Reads a whole success body and parses it as `T`, naming `body_name` in a decode error.
pub(crate) async fn read_json<T: DeserializeOwned>(
    response: Response,
    body_name: &str,
) -> Result<T, ProviderError> {
    let body = response
        .bytes()
        .await
        .map_err(|error| ProviderError::from_transport(&error))?;
    serde_json::from_slice(&body)
        .map_err(|error| ProviderError::Decode(format!("invalid {body_name}: {error}")))
}

/// Reads at most `limit` bytes of the body. A body that fails half way returns what arrived,
/// because the status alone already classifies the error.
async fn read_limited(response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let remaining = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(remaining)]);
        if body.len() == limit {
            break;
        }
    }
    body
}

/// Reads the delay before a retry from the standard `retry-after` header, in seconds.
///
/// NOTE: the HTTP-date form of `retry-after` is ignored. The supported providers send seconds.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_number(headers, RETRY_AFTER.as_str()).and_then(duration_from_seconds)
}

/// Parses the header `name` as a decimal number. Returns `None` when the header is missing,
/// not a number, negative, NaN or infinite.
pub(crate) fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    let value = headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// Converts seconds to a [`Duration`]. Returns `None` when `seconds` is negative, NaN,
/// infinite or larger than a `Duration` can represent.
pub(crate) fn duration_from_seconds(seconds: f64) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests;
