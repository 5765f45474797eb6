//! A local HTTP server that speaks OpenAI's Chat Completions wire format, for tests, demos and
//! benchmarks.
//!
//! Routes: `POST /v1/chat/completions` (streamed and not) and `GET /v1/models`, both
//! requiring a non-empty `Authorization: Bearer` token. Every reply is the same
//! deterministic text from [`reply_tokens`], with usage counted by [`prompt_tokens`].

mod config;
mod reply;
mod routes;
mod state;
mod stream;
mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{MockConfig, MockFailure};
pub use reply::{prompt_tokens, reply_tokens};

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
        format!("http://{}/v1", self.addr)
    }

    /// Returns the JSON bodies of the chat completion requests received so far, in order.
    /// Bodies that failed validation are included, bodies that are not JSON are not.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests()
    }

    /// Returns the bearer tokens of the requests that [`MockProvider::requests`] returns, in
    /// the same order.
    pub fn bearer_tokens(&self) -> Vec<String> {
        self.state.bearer_tokens()
    }

    /// Queues a failure for the next chat completion request. Queued failures apply one per
    /// request, in order.
    pub fn fail_next(&self, failure: MockFailure) {
        self.state.push_failure(failure);
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}
