//! Redis handles: one shared connection made on first use, and dedicated blocking readers.

use std::time::Duration;

use redis::{
    AsyncConnectionConfig, RedisResult,
    aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
};
use tokio::sync::OnceCell;

/// Returns whether `error` means Redis could not be reached or did not respond, as opposed
/// to an error in a command that Redis did run.
pub fn is_unreachable(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
}

/// The process's Redis client. The shared connection is made on first use, so the api
/// starts (and reports Redis as down on `/health`) while Redis is unreachable.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    shared: std::sync::Arc<OnceCell<ConnectionManager>>,
    prefix: String,
}

impl Redis {
    pub fn new(url: &str, prefix: impl Into<String>) -> RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            shared: Default::default(),
            prefix: prefix.into(),
        })
    }

    /// Returns the shared connection, connecting first if no connection was made yet.
    pub async fn shared(&self) -> RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let manager = self
            .shared
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await?;
        Ok(manager.clone())
    }

    /// Opens a connection with no response timeout, for `XREAD BLOCK` and similar commands
    /// that would stall every other user of the shared connection.
    pub async fn blocking_connection(&self) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Opens a connection for publish/subscribe.
    pub async fn pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        self.client.get_async_pubsub().await
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Builds a key under this deployment's prefix, e.g. `key(&["stream", id])`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }
}
