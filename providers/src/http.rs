//! The shared outbound HTTP client that every adapter sends its requests through.

use std::time::Duration;

use crate::ProviderError;
use crate::error::error_chain;

/// Timeouts of the shared HTTP client.
///
/// There is no total timeout on purpose: a streamed response may take minutes, and only a
/// silence longer than `read_timeout` means the provider stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Maximum time to open the TCP connection and finish the TLS handshake.
    pub connect_timeout: Duration,
    /// Maximum time between two received chunks of a response.
    pub read_timeout: Duration,
}

impl Default for HttpSettings {
    /// Ten seconds to connect and five minutes between chunks. The read timeout is long
    /// because a non-streamed completion from a reasoning model sends nothing until the
    /// whole response is ready.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
        }
    }
}

/// Builds the client that adapters share. Build it once at start-up and clone it, because a
/// clone shares the connection pool.
///
/// The client follows no redirects, so a provider URL cannot send a request with its API key
/// elsewhere, and it ignores proxy variables from the environment.
pub fn http_client(settings: &HttpSettings) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("task-assistant/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            ProviderError::Unavailable(format!(
                "building the HTTP client failed: {}",
                error_chain(&error)
            ))
        })
}
