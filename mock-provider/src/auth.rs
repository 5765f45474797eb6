//! Reading the credentials that clients send in request headers.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// Returns the token of an `Authorization: Bearer` header, or an empty string when the header
/// is missing, is not text or uses another scheme.
pub(crate) fn bearer_token(headers: &HeaderMap) -> &str {
    header_text(headers, AUTHORIZATION.as_str())
        .strip_prefix("Bearer ")
        .map(str::trim)
        .unwrap_or_default()
}

/// Returns the trimmed value of header `name`, or an empty string when it is missing or is
/// not text.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or_default()
}
