//! The wire formats the mock serves, and the trait through which each format module builds
//! its bodies for the shared request flow in [`crate::chat`].

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use crate::reply::Reply;
use crate::scripted::MockToolCall;

/// A provider's chat wire format. Each is served under its provider's own paths, so one
/// server can take the place of all five providers at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// OpenAI Chat Completions: `POST /v1/chat/completions` and `GET /v1/models`.
    OpenAi,
    /// Anthropic Messages: `POST /v1/messages` and `GET /v1/models` with `x-api-key`.
    Anthropic,
    /// Google Gemini: `POST /v1beta/models/{model}:generateContent`,
    /// `:streamGenerateContent?alt=sse` and `GET /v1beta/models`.
    Gemini,
    /// Groq's dialect of Chat Completions: `POST /openai/v1/chat/completions` and
    /// `GET /openai/v1/models`.
    Groq,
    /// Ollama's native API: `POST /api/chat`, `GET /api/tags` and `GET /api/version`.
    Ollama,
}

impl WireFormat {
    /// Every format, in a fixed order.
    pub const ALL: [WireFormat; 5] = [
        WireFormat::OpenAi,
        WireFormat::Anthropic,
        WireFormat::Gemini,
        WireFormat::Groq,
        WireFormat::Ollama,
    ];

    /// Returns the path that a client's base URL for this provider ends with. It is the part
    /// of the provider's public base URL after the host, such as `/openai/v1` for Groq. It is
    /// empty for Anthropic and Ollama, whose clients append `/v1/...` and `/api/...`.
    pub const fn base_path(self) -> &'static str {
        match self {
            WireFormat::OpenAi => "/v1",
            WireFormat::Anthropic => "",
            WireFormat::Gemini => "/v1beta",
            WireFormat::Groq => "/openai/v1",
            WireFormat::Ollama => "",
        }
    }
}

/// An error to send in a format's own error body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorReply<'a> {
    pub(crate) status: StatusCode,
    pub(crate) message: &'a str,
    /// The code of an injected failure, placed where the format has one.
    pub(crate) code: Option<&'a str>,
    /// The delay before a retry, sent where the provider sends it.
    pub(crate) retry_after: Option<Duration>,
}

impl<'a> ErrorReply<'a> {
    pub(crate) fn new(status: StatusCode, message: &'a str) -> Self {
        Self {
            status,
            message,
            code: None,
            retry_after: None,
        }
    }
}

/// Returns a `retry-after` header value: the delay in whole seconds, rounded up.
pub(crate) fn retry_after_seconds(delay: Duration) -> HeaderValue {
    let seconds = delay.as_millis().div_ceil(1000);
    HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX))
}

/// The bodies of one wire format. [`crate::chat::respond`] runs the steps that every format
/// shares and calls these methods for the parts that differ.
///
/// A streamed reply is built from frames: [`stream_opening`](ChatFormat::stream_opening) at
/// once, [`content_start`](ChatFormat::content_start) and the first
/// [`content_frame`](ChatFormat::content_frame) after the time to first token, one content
/// frame per gap, then [`stream_closing`](ChatFormat::stream_closing), or
/// [`stream_error`](ChatFormat::stream_error) when a failure was queued. A reply of scripted
/// tool calls sends the [`tool_call_frames`](ChatFormat::tool_call_frames) of one call per
/// gap in place of content frames.
pub(crate) trait ChatFormat {
    fn wire_format(&self) -> WireFormat;

    /// Builds an error response with the provider's status, body and retry headers.
    fn error_response(&self, error: &ErrorReply<'_>) -> Response;

    /// Returns the provider's 400 response when the body lacks a field the mock needs.
    fn rejection(&self, request: &Value) -> Option<Response>;

    fn is_streaming(&self, request: &Value) -> bool;

    /// Returns the model the reply names.
    fn model(&self, request: &Value) -> String {
        request["model"].as_str().unwrap_or_default().to_owned()
    }

    /// Returns the request's limit on output tokens, if it sets one.
    fn max_tokens(&self, request: &Value) -> Option<u64>;

    /// Builds the body of a reply that is not streamed.
    fn completion(&self, reply: &Reply) -> Value;

    /// Returns the `content-type` of a streamed body.
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    /// Builds the frames sent as soon as a stream starts.
    fn stream_opening(&self, reply: &Reply) -> Vec<String> {
        let _ = reply;
        Vec::new()
    }

    /// Builds the frames sent right before the first content frame.
    fn content_start(&self, reply: &Reply) -> Vec<String> {
        let _ = reply;
        Vec::new()
    }

    /// Builds the frame that carries the content chunk at `index`.
    fn content_frame(&self, reply: &Reply, index: usize, text: &str) -> String;

    /// Builds the frames that carry the tool call at `index`, sent together.
    fn tool_call_frames(&self, reply: &Reply, index: usize, call: &MockToolCall) -> Vec<String>;

    /// Builds the frames after the last content frame of a complete reply: the finish reason,
    /// the usage and the end marker, as the provider sends them.
    fn stream_closing(&self, reply: &Reply) -> Vec<String>;

    /// Builds the provider's in-stream error frame, which ends a failed stream.
    fn stream_error(&self, reply: &Reply) -> String;
}
