//! Generations running in this process, so that a stop request can reach them.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::Platform;

/// Handles of one running generation.
#[derive(Clone)]
pub struct GenerationHandle {
    /// Cancelled to ask the generation to stop, by a user or by [`GenerationRegistry::interrupt_all`].
    pub stop: CancellationToken,
    /// Cancelled by the generation once its final state is stored.
    pub finished: CancellationToken,
}

/// The generations this process runs, by assistant message id, and whether the process
/// still starts new ones.
#[derive(Default)]
pub struct GenerationRegistry {
    running: Mutex<HashMap<Uuid, GenerationHandle>>,
    /// Cancelled when the process begins shutting down: no new generation starts.
    draining: CancellationToken,
    /// Cancelled when the shutdown's grace period ends; every stop token is its child.
    interrupting: CancellationToken,
    /// Woken whenever a generation ends.
    ended: Notify,
}

impl GenerationRegistry {
    pub fn register(&self, message_id: Uuid) -> GenerationHandle {
        let handle = GenerationHandle {
            stop: self.interrupting.child_token(),
            finished: CancellationToken::new(),
        };
        self.lock().insert(message_id, handle.clone());
        handle
    }

    pub fn remove(&self, message_id: Uuid) {
        self.lock().remove(&message_id);
        self.ended.notify_waiters();
    }

    pub fn get(&self, message_id: Uuid) -> Option<GenerationHandle> {
        self.lock().get(&message_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new generations from now on; running ones go on.
    pub fn begin_draining(&self) {
        self.draining.cancel();
    }

    /// Returns whether the process is shutting down and starts no new generation.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Stops every running generation; each stores its reply as interrupted, with usage.
    pub fn interrupt_all(&self) {
        self.interrupting.cancel();
    }

    /// Returns whether running generations were stopped because the process is shutting
    /// down.
    pub fn is_interrupting(&self) -> bool {
        self.interrupting.is_cancelled()
    }

    /// Completes once no generation runs in this process.
    pub async fn wait_until_idle(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so that an end between the two is not missed.
            ended.as_mut().enable();
            if self.is_empty() {
                return;
            }
            ended.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, GenerationHandle>> {
        // A panic while holding this lock cannot leave the map half-updated, so a poisoned
        // lock is still safe to use.
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Name of the channel on which stop requests reach every api process.
pub fn stop_channel(platform: &Platform) -> String {
    platform.redis.key(&["generation-stop"])
}

/// Listens for stop requests published by any api process and stops local generations.
/// Reconnects after Redis errors; runs until the process ends.
pub async fn listen_for_stops(platform: Platform) {
    let channel = stop_channel(&platform);
    let mut delay = Duration::from_millis(200);
    loop {
        match platform.redis.pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    info!(channel, "listening for generation stop requests");
                    delay = Duration::from_millis(200);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        let Ok(message_id) = payload.parse::<Uuid>() else {
                            continue;
                        };
                        if let Some(handle) = platform.generations.get(message_id) {
                            handle.stop.cancel();
                        }
                    }
                    warn!(channel, "stop request subscription ended, reconnecting");
                }
                Err(error) => warn!(%error, channel, "subscribing to stop requests failed"),
            },
            Err(error) => warn!(%error, "connecting to Redis for stop requests failed"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
