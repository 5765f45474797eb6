//! The open WebSocket connections, which axum's graceful shutdown does not wait for once
//! upgraded, so that a stopping api can tell each client it is going away.

use std::time::Duration;

use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFuture, WaitForCancellationFutureOwned},
    task::{TaskTracker, task_tracker::TrackedFuture},
};

/// Tracker of the connections' tasks, with the signal that makes them close.
#[derive(Clone, Default)]
pub struct WebSockets {
    tasks: TaskTracker,
    closing: CancellationToken,
}

impl WebSockets {
    /// Wraps a connection's task so that [`WebSockets::close_all`] waits for it.
    pub(super) fn track<F: Future>(&self, connection: F) -> TrackedFuture<F> {
        self.tasks.track_future(connection)
    }

    /// Completes when connections must close.
    pub(super) fn closing(&self) -> WaitForCancellationFuture<'_> {
        self.closing.cancelled()
    }

    /// Completes when connections must close; streamed responses end with it.
    pub(super) fn closing_owned(&self) -> WaitForCancellationFutureOwned {
        self.closing.clone().cancelled_owned()
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Tells every connection to close with code 1001 and waits up to `wait` for them to
    /// end. Returns the number still open then.
    pub async fn close_all(&self, wait: Duration) -> usize {
        self.closing.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(wait, self.tasks.wait()).await;
        self.tasks.len()
    }
}
