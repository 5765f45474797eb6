//! State shared by the request handlers of one mock server: the recorded chat requests, the
//! queued failures and scripted replies, and the request counter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::{MockConfig, MockFailure, MockReply, WireFormat};

/// A chat request that the mock received, recorded before its body was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    pub format: WireFormat,
    /// The URL path without the query, such as
    /// `/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
    pub path: String,
    /// The key from the format's own authentication header: the `Authorization: Bearer`
    /// token for OpenAI, Groq and Ollama, `x-api-key` for Anthropic and `x-goog-api-key` for
    /// Gemini. Empty for an Ollama request without a key, which Ollama accepts.
    pub api_key: String,
    /// The `Authorization: Bearer` token, or empty when the request had none.
    pub bearer_token: String,
    /// The body parsed as JSON.
    pub body: Value,
}

pub(crate) struct MockState {
    pub(crate) config: MockConfig,
    received: Mutex<Vec<ReceivedRequest>>,
    failures: Mutex<VecDeque<MockFailure>>,
    replies: Mutex<VecDeque<MockReply>>,
    next_sequence: AtomicU64,
}

impl MockState {
    pub(crate) fn new(config: MockConfig) -> Self {
        Self {
            config,
            received: Mutex::new(Vec::new()),
            failures: Mutex::new(VecDeque::new()),
            replies: Mutex::new(VecDeque::new()),
            next_sequence: AtomicU64::new(1),
        }
    }

    pub(crate) fn record(&self, request: ReceivedRequest) {
        lock(&self.received).push(request);
    }

    pub(crate) fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.received).clone()
    }

    pub(crate) fn push_failure(&self, failure: MockFailure) {
        lock(&self.failures).push_back(failure);
    }

    pub(crate) fn take_failure(&self) -> Option<MockFailure> {
        lock(&self.failures).pop_front()
    }

    pub(crate) fn push_reply(&self, reply: MockReply) {
        lock(&self.replies).push_back(reply);
    }

    pub(crate) fn take_reply(&self) -> Option<MockReply> {
        lock(&self.replies).pop_front()
    }

    pub(crate) fn queued_replies(&self) -> usize {
        lock(&self.replies).len()
    }

    pub(crate) fn clear_replies(&self) {
        lock(&self.replies).clear();
    }

    /// Returns the number of the next reply, starting at 1, for response ids such as
    /// `chatcmpl-mock-1`.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next_sequence.fetch_add(1, Ordering::Relaxed)
    }
}

/// Locks a mutex. A handler that panicked while holding it left only a complete push or pop
/// behind, so the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
