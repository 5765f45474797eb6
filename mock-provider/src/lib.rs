//! A local HTTP server that speaks the chat wire formats of OpenAI, Anthropic, Google Gemini,
//! Groq and Ollama, for tests, demos and benchmarks.
//!
//! Each format is served under its provider's own paths, so one server takes the place of all
//! five providers. [`MockProvider::base_url_for`] returns the base URL for each provider's
//! client. The routes:
//! - OpenAI: `POST /v1/chat/completions` and `GET /v1/models`.
//! - Anthropic: `POST /v1/messages` and `GET /v1/models`.
//! - Gemini: `POST /v1beta/models/{model}:generateContent`,
//!   `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` and `GET /v1beta/models`.
//! - Groq: `POST /openai/v1/chat/completions` and `GET /openai/v1/models`.
//! - Ollama: `POST /api/chat`, `GET /api/version` and `GET /api/tags`.
//!
//! Each format rejects a request without a key in its provider's header: `Authorization:
//! Bearer` for OpenAI and Groq, `x-api-key` (with `anthropic-version`) for Anthropic, and
//! `x-goog-api-key` for Gemini. Any non-empty key is accepted. Ollama's routes also accept
//! requests without a key, as Ollama does. `GET /v1/models` returns Anthropic's list when the
//! request carries Anthropic's headers, and OpenAI's otherwise.
//!
//! Every reply, streamed or not, is the same deterministic text from [`reply_tokens`], with
//! input tokens counted by [`prompt_tokens`] and one output token per content chunk, timed by
//! [`MockConfig`]. [`MockProvider::fail_next`] makes the next chat request of any format fail
//! in that format's own way.
//!
//! [`MockProvider::reply_next`] replaces the deterministic text of the next reply with a
//! [`MockReply`]: an exact text, or tool calls that drive a client's tool loop. Each format
//! sends tool calls in its provider's own way:
//! - OpenAI and Groq: for each call, a chunk with its id (`call_mock_<sequence>_<index>`),
//!   type and name, then two chunks with the fragments of its `function.arguments`. The
//!   finish reason is `tool_calls`. A reply that is not streamed has `message.tool_calls`
//!   and `content: null`.
//! - Anthropic: one `tool_use` content block per call, with id
//!   `toolu_mock_<sequence>_<index>` and its arguments in two `input_json_delta` fragments.
//!   The stop reason is `tool_use`.
//! - Gemini: one `functionCall` part per call, with `name` and `args`, and the finish reason
//!   `STOP`, which Gemini also reports after function calls. Gemini's calls carry no id.
//! - Ollama: one line per call with the call in `message.tool_calls`, then the last line
//!   with `done_reason` `stop`. Ollama's calls carry no id.
//!
//! A tool-call reply counts one output token per tool call. `<sequence>` is the number of the
//! reply on the server, starting at 1, and `<index>` the position of the call, starting at 0.
//!
//! The control routes under `/mock/`, a prefix that no provider path uses, script replies
//! over HTTP, for clients that run the server as a separate process:
//! - `POST /mock/replies` queues a scripted reply and returns 204. The body is either
//!   `{"toolCalls": [{"name": "calculate", "arguments": {"a": 6}}, ...]}` or
//!   `{"text": "exact reply"}`, parsed as JSON whatever its `Content-Type`. `arguments`
//!   follows the rules of [`MockToolCall`] and defaults to `{}`. Any other body returns 400
//!   with a JSON body such as `{"error": "body must have either toolCalls or text"}`.
//! - `GET /mock/replies` returns the number of replies still queued: `{"queued": 2}`.
//! - `DELETE /mock/replies` removes every queued reply and returns 204.
//!
//! These routes and [`MockProvider::reply_next`] share one queue, in first-in, first-out
//! order. The control routes take no key, and their requests are not recorded in
//! [`MockProvider::received`]. The mock is meant for local tests and demos: any client that
//! can reach its address can script its replies, so bind it to a loopback address.

mod anthropic;
mod auth;
mod chat;
mod config;
mod control;
mod format;
mod gemini;
mod groq;
mod ollama;
mod openai;
mod reply;
mod routes;
mod scripted;
mod state;
mod stream;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{MockConfig, MockFailure};
pub use format::WireFormat;
pub use reply::{prompt_tokens, reply_tokens};
pub use scripted::{MockReply, MockToolCall};
pub use state::ReceivedRequest;

use state::MockState;

/// A running mock server. Dropping it stops accepting connections.
pub struct MockProvider {
    addr: SocketAddr,
    state: Arc<MockState>,
    server: JoinHandle<()>,
}

impl MockProvider {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start(config: MockConfig) -> anyhow::Result<MockProvider> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a server on `addr`. Port 0 picks a free port.
    pub async fn start_on(addr: SocketAddr, config: MockConfig) -> anyhow::Result<MockProvider> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the mock provider to {addr} failed"))?;
        let addr = listener
            .local_addr()
            .context("reading the mock provider's address failed")?;

        let state = Arc::new(MockState::new(config));
        let app = routes::router(Arc::clone(&state));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "mock provider server stopped");
            }
        });

        Ok(MockProvider {
            addr,
            state,
            server,
        })
    }

    /// Returns the address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL to give an OpenAI client, such as `http://127.0.0.1:4010/v1`.
    pub fn base_url(&self) -> String {
        self.base_url_for(WireFormat::OpenAi)
    }

    /// Returns the base URL to give a client of `format`'s provider, such as
    /// `http://127.0.0.1:4010/openai/v1` for Groq.
    pub fn base_url_for(&self, format: WireFormat) -> String {
        format!("http://{}{}", self.addr, format.base_path())
    }

    /// Returns the chat requests received so far, of every format, in order. Requests
    /// rejected for a missing key are not included, and neither are model list and version
    /// probes or bodies that are not JSON. Bodies that failed the format's checks are
    /// included.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.state.received()
    }

    /// Returns the JSON bodies of the requests that [`MockProvider::received`] returns.
    pub fn requests(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .map(|request| request.body)
            .collect()
    }

    /// Returns the key that each request of [`MockProvider::received`] presented in its
    /// format's authentication header, in the same order.
    pub fn api_keys(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .map(|request| request.api_key)
            .collect()
    }

    /// Returns the `Authorization: Bearer` token of each request of
    /// [`MockProvider::received`], in the same order. A request without one, such as an
    /// Anthropic request, has an empty string.
    pub fn bearer_tokens(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .map(|request| request.bearer_token)
            .collect()
    }

    /// Queues a failure for the next chat request of any format. Queued failures apply one
    /// per request, in order.
    pub fn fail_next(&self, failure: MockFailure) {
        self.state.push_failure(failure);
    }

    /// Queues a scripted reply for the next chat request of any format. Queued replies
    /// apply one per request, in order. A request that a queued failure fails, or whose
    /// body fails the format's checks, leaves the scripted reply queued for the next one.
    pub fn reply_next(&self, reply: MockReply) {
        self.state.push_reply(reply);
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}
