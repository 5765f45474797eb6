//! The trait that every provider adapter implements.

use async_trait::async_trait;

use crate::{ChatRequest, ChatResponse, EventStream, ProviderError, ProviderKind};

/// A chat model provider reached over HTTP.
#[async_trait]
pub trait ChatProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Sends the request and waits for the whole response.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Sends the request and returns the response as a stream of events.
    ///
    /// Errors before the first byte of the body (HTTP status, connection) are returned
    /// here. Errors after that arrive as an `Err` item, which is the stream's last item.
    /// Dropping the stream closes the connection.
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError>;

    /// Checks the base URL and the API key with a cheap call, such as listing models.
    async fn probe(&self) -> Result<(), ProviderError>;
}
