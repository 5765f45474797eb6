//! HTTP tools: the URL check when a tool is defined, and the call through the guarded
//! outbound client, which rejects private and metadata addresses after DNS resolution.

use std::time::{Duration, Instant};

use entity::tool;
use reqwest::Url;
use serde_json::Value;

use crate::{
    Platform, TenantId,
    error::{ServiceError, ServiceResult},
};

use super::{HttpMethod, string_map};

/// Characters of a response body passed back to the model.
const MAX_RESULT_CHARS: usize = 16_000;

/// Checks that `url` is an absolute http or https URL whose host is not a blocked address
/// literal, and returns it. Host names are checked again on every call, after resolution.
pub(crate) fn check_url(platform: &Platform, field: &str, url: &str) -> ServiceResult<String> {
    let parsed = Url::parse(url)
        .map_err(|error| ServiceError::invalid(field, format!("is not a valid URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ServiceError::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    // A URL is shown back and written to the audit log, so it must not carry secrets.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ServiceError::invalid(
            field,
            "must not contain a user name or password; send credentials in secretHeaders",
        ));
    }
    platform
        .guarded_http
        .policy()
        .check_url(&parsed)
        .map_err(|error| ServiceError::invalid(field, error.to_string()))?;
    Ok(url.to_owned())
}

/// Calls the tool with `arguments`: as query parameters for GET and DELETE, as a JSON body
/// otherwise. Only a 2xx response is a success, and its body, cut to a fixed length, is the result.
pub(crate) async fn call(
    platform: &Platform,
    tenant_id: TenantId,
    tool: &tool::Model,
    arguments: &Value,
) -> Result<String, String> {
    let client = platform
        .guarded_http
        .client_for(&tool.url)
        .map_err(|error| format!("the tool's URL is rejected: {error}"))?;
    let method = HttpMethod::from_stored(&tool.method).unwrap_or(HttpMethod::Post);
    let timeout = Duration::from_millis(u64::try_from(tool.timeout_ms).unwrap_or(10_000));
    let mut request = match method {
        HttpMethod::Get => client.get(with_query(&tool.url, arguments)?),
        HttpMethod::Delete => client.delete(with_query(&tool.url, arguments)?),
        HttpMethod::Post => client.post(&tool.url).json(arguments),
        HttpMethod::Put => client.put(&tool.url).json(arguments),
        HttpMethod::Patch => client.patch(&tool.url).json(arguments),
    }
    .timeout(timeout);
    for (name, value) in string_map(&tool.headers) {
        request = request.header(name, value);
    }
    if let Some(token) = &tool.secret_headers {
        let decrypted = platform
            .cipher
            .decrypt(tenant_id.as_uuid(), token)
            .map_err(|_| "the tool's secret headers cannot be decrypted".to_owned())?;
        let secret: Value = serde_json::from_str(decrypted.expose())
            .map_err(|_| "the tool's secret headers are damaged".to_owned())?;
        for (name, value) in string_map(&secret) {
            request = request.header(name, value);
        }
    }

    let started = Instant::now();
    let response = request.send().await.map_err(|error| {
        if error.is_timeout() {
            format!("the tool did not answer within {} ms", timeout.as_millis())
        } else {
            format!("calling the tool failed: {}", error_chain(&error))
        }
    })?;
    let status = response.status();
    let remaining = timeout.saturating_sub(started.elapsed());
    let body = tokio::time::timeout(remaining, response.text())
        .await
        .map_err(|_| format!("the tool did not answer within {} ms", timeout.as_millis()))?
        .map_err(|error| format!("reading the tool's answer failed: {error}"))?;
    let body = truncate(&body);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!(
            "the tool answered with HTTP status {}: {body}",
            status.as_u16()
        ))
    }
}

/// Appends the arguments to `url` as query parameters.
fn with_query(url: &str, arguments: &Value) -> Result<Url, String> {
    let mut url = Url::parse(url).map_err(|error| format!("the tool's URL is invalid: {error}"))?;
    let pairs = query_pairs(arguments);
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(url)
}

/// Flattens arguments into query parameters: strings as they are, other values as JSON.
fn query_pairs(arguments: &Value) -> Vec<(String, String)> {
    let Some(object) = arguments.as_object() else {
        return Vec::new();
    };
    object
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}

fn truncate(body: &str) -> String {
    match body.char_indices().nth(MAX_RESULT_CHARS) {
        Some((end, _)) => format!("{}... (cut at {MAX_RESULT_CHARS} characters)", &body[..end]),
        None => body.to_owned(),
    }
}

/// Joins an error's message with its sources, which name the rejected address.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn query_pairs_keep_strings_and_encode_the_rest() {
        let pairs = query_pairs(&json!({"city": "Oslo", "days": 3, "skip": null}));
        assert_eq!(
            pairs,
            vec![("city".into(), "Oslo".into()), ("days".into(), "3".into())]
        );
    }

    #[test]
    fn long_bodies_cut() {
        let body = "é".repeat(MAX_RESULT_CHARS + 5);
        let cut = truncate(&body);
        assert!(cut.starts_with(&"é".repeat(MAX_RESULT_CHARS)));
        assert!(cut.ends_with("(cut at 16000 characters)"));
        assert_eq!(truncate("short"), "short");
    }
}
