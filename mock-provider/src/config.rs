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

/// A failure for the next chat completion request, queued with
/// [`MockProvider::fail_next`](crate::MockProvider::fail_next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockFailure {
    /// Respond with this HTTP status and an OpenAI error body. The body's `type` follows the
    /// status (`requests` for 429, `server_error` for 5xx, `invalid_request_error`
    /// otherwise). `retry_after` sets the `retry-after-ms` and `retry-after` headers.
    Status {
        status: u16,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// Stream `after_tokens` content chunks, then an error object instead of the next chunk,
    /// then end the body. A non-streamed request gets a 500 status instead.
    ErrorMidStream { after_tokens: usize },
    /// Stream `after_tokens` content chunks, then end the body without a finish reason or
    /// `[DONE]`. A non-streamed request gets a 500 status instead.
    CutMidStream { after_tokens: usize },
}
