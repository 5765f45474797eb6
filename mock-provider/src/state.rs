//! State shared by the request handlers of one mock server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::{MockConfig, MockFailure};

pub(crate) struct MockState {
    pub(crate) config: MockConfig,
    requests: Mutex<Vec<Value>>,
    bearer_tokens: Mutex<Vec<String>>,
    failures: Mutex<VecDeque<MockFailure>>,
    next_id: AtomicU64,
}

impl MockState {
    pub(crate) fn new(config: MockConfig) -> Self {
        Self {
            config,
            requests: Mutex::new(Vec::new()),
            bearer_tokens: Mutex::new(Vec::new()),
            failures: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
        }
    }

    pub(crate) fn record(&self, body: Value) {
        lock(&self.requests).push(body);
    }

    pub(crate) fn requests(&self) -> Vec<Value> {
        lock(&self.requests).clone()
    }

    pub(crate) fn record_bearer_token(&self, token: String) {
        lock(&self.bearer_tokens).push(token);
    }

    pub(crate) fn bearer_tokens(&self) -> Vec<String> {
        lock(&self.bearer_tokens).clone()
    }

    pub(crate) fn push_failure(&self, failure: MockFailure) {
        lock(&self.failures).push_back(failure);
    }

    pub(crate) fn take_failure(&self) -> Option<MockFailure> {
        lock(&self.failures).pop_front()
    }

    /// Returns a new completion id such as `chatcmpl-mock-1`.
    pub(crate) fn next_completion_id(&self) -> String {
        format!(
            "chatcmpl-mock-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Locks a mutex. A handler that panicked while holding it left only a complete push or pop
/// behind, so the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
