//! Settings of a mock server: reply timing and length, and failures to inject.

use std::time::Duration;

/// Timing and length of every reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockConfig {
    /// Delay between the start of the response and the first content chunk.
    pub time_to_first_token: Duration,
    /// Number of content chunks in a reply, unless the request's max tokens is smaller.
    pub tokens: usize,
    /// Delay between two content chunks.
    pub gap: Duration,
}

impl Default for MockConfig {
    /// No delays and 12 tokens.
    fn default() -> Self {
        Self {
            time_to_first_token: Duration::ZERO,
            tokens: 12,
            gap: Duration::ZERO,
        }
    }
}

/// A failure for the next chat request, of any wire format, queued with
/// [`MockProvider::fail_next`](crate::MockProvider::fail_next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockFailure {
    /// Respond with this HTTP status and the format's error body, whose error type follows
    /// the status as the provider documents it (for OpenAI: `requests` for 429,
    /// `server_error` for 5xx, `invalid_request_error` otherwise).
    ///
    /// `code` sets OpenAI's and Groq's `error.code`, Anthropic's `error.type` and Gemini's
    /// `error.status`; Ollama's error body has no such field. `retry_after` is sent where the
    /// provider sends it: `retry-after-ms` and `retry-after` for OpenAI, `retry-after` in
    /// whole seconds, rounded up, for Anthropic, Groq and Ollama, and a `RetryInfo` detail
    /// for Gemini.
    Status {
        status: u16,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// Stream `after_tokens` content chunks, then the format's in-stream error instead of the
    /// next chunk, then end the body. A non-streamed request gets a 500 status instead.
    ErrorMidStream { after_tokens: usize },
    /// Stream `after_tokens` content chunks, then end the body without the format's finish
    /// reason or end marker. A non-streamed request gets a 500 status instead.
    CutMidStream { after_tokens: usize },
}
