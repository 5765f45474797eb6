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
    build_client(client_builder(settings))
}

/// Returns a builder with the timeouts, redirect policy, proxy policy and user agent that
/// every client of this crate shares.
pub(crate) fn client_builder(settings: &HttpSettings) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // Sends small writes such as request bodies at once instead of waiting for the
        // previous segment's acknowledgement (Nagle's algorithm). reqwest 0.13 defaults to
        // this too; the connection pool keeps reqwest's defaults (idle connections kept 90 s,
        // no per-host limit).
        .tcp_nodelay(true)
        .user_agent(concat!("task-assistant/", env!("CARGO_PKG_VERSION")))
}

pub(crate) fn build_client(
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, ProviderError> {
    builder.build().map_err(|error| {
        ProviderError::Unavailable(format!(
            "building the HTTP client failed: {}",
            error_chain(&error)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reqwest exposes no getter for socket options, but the builder's `Debug` output lists
    /// `tcp_nodelay` when it is on.
    #[test]
    fn builder_enables_tcp_nodelay() {
        let builder = client_builder(&HttpSettings::default());

        let debug = format!("{builder:?}");

        assert!(debug.contains("tcp_nodelay: true"), "builder: {debug}");
    }
}
