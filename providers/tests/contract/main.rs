//! One contract suite that runs every provider adapter against a local server that speaks
//! the provider's documented wire format and checks the requests the adapter sends.
//!
//! Each provider contributes a [`ProviderFixture`] in its own module and one line in
//! [`fixtures`]. The scenario tests in `scenarios.rs` send the same chat requests to every
//! adapter and assert the same normalised outcome for each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod requests;
mod scenarios;
mod server;

mod anthropic;
mod gemini;
mod groq;
mod ollama;
mod openai;

use axum::http;

/// A provider behaviour the suite checks. Each fixture responds to it in its provider's wire
/// format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `complete()`: text [`ANSWER_TEXT`], finish reason stop, usage [`INPUT_TOKENS`] in and
    /// [`OUTPUT_TOKENS`] out.
    PlainAnswer,
    /// `stream()`: the text deltas [`ANSWER_DELTAS`], then finish reason stop and the same
    /// usage as [`Scenario::PlainAnswer`].
    StreamedAnswer,
    /// One call of `get_weather` with `{"city":"Paris"}`. Streamed, the arguments arrive in
    /// fragments where the provider streams them so.
    ToolCall,
    /// `get_weather` with `{"city":"Paris"}` and `get_time` with `{"zone":"UTC"}`, in that
    /// order.
    ParallelToolCalls,
    /// One call of `list_tools` with no or empty arguments, which the adapter returns as `{}`.
    ToolCallWithoutArguments,
    /// The plain answer with [`CACHED_INPUT_TOKENS`] of the input read from the prompt cache
    /// and [`REASONING_TOKENS`] of the output spent on reasoning, where the provider reports
    /// them.
    CachedUsage,
    /// The provider refuses the prompt; the adapter reports `FinishReason::ContentFilter`.
    Refused,
    /// An error status before any body, in the provider's error format. The suite runs it for
    /// each status in [`ProviderFixture::error_statuses`], and a 429 carries a retry-after of
    /// [`RETRY_AFTER_SECONDS`].
    ErrorStatus(u16),
    /// The provider's error for a prompt longer than the model's context window.
    ContextTooLong,
    /// `stream()`: the first two of [`ANSWER_DELTAS`], then the provider's in-stream error
    /// for a failure on its side.
    ErrorMidStream,
    /// `stream()`: the first two of [`ANSWER_DELTAS`], then the body ends without the
    /// provider's end marker.
    CutStream,
}

/// The text of every successful reply.
pub const ANSWER_TEXT: &str = "Hello, world";
/// [`ANSWER_TEXT`] as the streamed scenarios deliver it.
pub const ANSWER_DELTAS: [&str; 3] = ["Hel", "lo, ", "world"];
/// Prompt tokens of a reply, cached ones included.
pub const INPUT_TOKENS: i64 = 12;
/// Generated tokens of a reply, reasoning ones included.
pub const OUTPUT_TOKENS: i64 = 5;
/// Cached prompt tokens in [`Scenario::CachedUsage`].
pub const CACHED_INPUT_TOKENS: i64 = 10;
/// Reasoning tokens in [`Scenario::CachedUsage`].
pub const REASONING_TOKENS: i64 = 3;
/// The `retry-after` delay of a 429 response, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 7;

/// One HTTP request the local server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    /// The body parsed as JSON. An empty body is `Null`, and a body that is not JSON is a
    /// JSON string of its text.
    pub body: serde_json::Value,
}

/// The response a fixture returns for the local server to send.
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: MockBody,
}

/// The body of a [`MockResponse`].
#[derive(Debug, Clone)]
pub enum MockBody {
    /// Sent whole, with `content-type: application/json` unless the headers set one.
    Json(serde_json::Value),
    /// Sent as chunked transfer encoding, one chunk per element with a flush between them.
    /// Then the body ends, except in the cut-stream test that also aborts the connection.
    Chunks(Vec<Vec<u8>>),
}

/// A provider's side of the contract: its adapter, its wire format and its request checks.
pub trait ProviderFixture: Send + Sync {
    fn name(&self) -> &'static str;

    /// Returns the adapter under test, pointed at the local server.
    fn adapter(
        &self,
        client: reqwest::Client,
        server_base: &str,
    ) -> Box<dyn providers::ChatProvider>;

    /// Returns the provider's response to `request` in `scenario`, in its documented wire
    /// format.
    fn respond(&self, scenario: &Scenario, request: &RecordedRequest) -> MockResponse;

    /// Panics unless `request` is what the provider expects for `sent` (path, auth header,
    /// body fields such as model, system prompt, temperature, max tokens, stop, tools,
    /// tool results, images, stream flag).
    fn check_request(
        &self,
        request: &RecordedRequest,
        sent: &providers::ChatRequest,
        streaming: bool,
    );

    /// Returns the [`Scenario::ErrorStatus`] codes this provider documents.
    fn error_statuses(&self) -> Vec<u16>;

    /// Returns false for a scenario the provider cannot produce, such as Refused for Ollama,
    /// which has no content filter. The suite skips it for that fixture and prints a line to
    /// stderr.
    fn supports(&self, scenario: &Scenario) -> bool {
        let _ = scenario;
        true
    }

    /// Returns false when the provider's usage has no reasoning token count, so that
    /// [`Scenario::CachedUsage`] expects `reasoning_tokens: None` instead of
    /// [`REASONING_TOKENS`].
    fn reports_reasoning_tokens(&self) -> bool {
        true
    }
}

/// Lists every provider under contract, one line each.
fn fixtures() -> Vec<Box<dyn ProviderFixture>> {
    vec![
        Box::new(openai::OpenAiFixture),
        Box::new(anthropic::AnthropicFixture),
        Box::new(ollama::OllamaFixture),
        Box::new(gemini::GeminiFixture),
        Box::new(groq::GroqFixture),
    ]
}

/// Frames one server-sent event: an optional `event:` line, one `data:` line per line of
/// `data`, and the blank line that ends the event.
pub fn sse_event(event: Option<&str>, data: &str) -> Vec<u8> {
    let mut frame = String::new();
    if let Some(event) = event {
        frame.push_str(&format!("event: {event}\n"));
    }
    for line in data.lines() {
        frame.push_str(&format!("data: {line}\n"));
    }
    frame.push('\n');
    frame.into_bytes()
}

/// Returns the value of header `name`, and panics when it is missing or not text.
pub fn header<'a>(request: &'a RecordedRequest, name: &str) -> &'a str {
    let value = request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("request has no {name} header: {request:?}"));
    value
        .to_str()
        .unwrap_or_else(|_| panic!("header {name} is not text"))
}
