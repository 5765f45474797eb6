//! Base URL handling and the optional bearer token of the Ollama adapter.

#![allow(clippy::unwrap_used)]

use reqwest::header::AUTHORIZATION;

use super::*;
use crate::{HttpSettings, http_client};

fn adapter(base_url: &str, api_key: Option<&str>) -> Ollama {
    let client = http_client(&HttpSettings::default()).unwrap();
    Ollama::new(client, base_url, api_key.map(ApiKey::new))
}

/// Builds a probe request through the adapter's authorization step.
fn authorized_request(ollama: &Ollama) -> Result<reqwest::Request, ProviderError> {
    let builder = ollama.client.get(ollama.url("/api/version"));
    Ok(ollama.authorize(builder)?.build().unwrap())
}

#[test]
fn trailing_slashes_ignored() {
    let ollama = adapter("http://127.0.0.1:11434//", None);

    assert_eq!(ollama.url("/api/chat"), "http://127.0.0.1:11434/api/chat");
}

#[test]
fn default_base_url_is_local() {
    let ollama = adapter(Ollama::DEFAULT_BASE_URL, None);

    assert_eq!(
        ollama.url("/api/version"),
        "http://127.0.0.1:11434/api/version"
    );
}

#[test]
fn no_key_sends_no_authorization() {
    let request = authorized_request(&adapter(Ollama::DEFAULT_BASE_URL, None)).unwrap();

    assert_eq!(request.headers().get(AUTHORIZATION), None);
}

#[test]
fn key_sent_as_sensitive_bearer() {
    let ollama = adapter("https://ollama.internal.example", Some("proxy-secret"));

    let request = authorized_request(&ollama).unwrap();

    let value = request.headers().get(AUTHORIZATION).unwrap();
    assert_eq!(value, "Bearer proxy-secret");
    assert!(value.is_sensitive());
}

#[test]
fn key_with_newline_rejected() {
    let ollama = adapter(Ollama::DEFAULT_BASE_URL, Some("bad\nkey"));

    let error = authorized_request(&ollama).unwrap_err();

    assert!(
        matches!(error, ProviderError::Authentication(_)),
        "error: {error:?}"
    );
}

#[test]
fn debug_hides_key() {
    let ollama = adapter(Ollama::DEFAULT_BASE_URL, Some("proxy-secret"));

    let debug = format!("{ollama:?}");

    assert!(!debug.contains("proxy-secret"), "debug output: {debug}");
}
