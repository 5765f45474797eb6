//! The worker's heartbeat in Redis, which the api's readiness check reads.

use std::time::Duration;

use service::{Platform, health};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How often a worker writes its heartbeat. `WORKER_HEARTBEAT_MAX_AGE_SECONDS` (default
/// 30) should allow a few missed beats.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Writes the heartbeat of `worker` every [`HEARTBEAT_INTERVAL`] until `shutdown` is
/// cancelled, then removes it, so that a worker that stopped cleanly is not counted.
pub async fn run(platform: Platform, worker: String, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(error) = health::record_heartbeat(&platform, &worker).await {
                    warn!(%error, worker, "writing the worker heartbeat failed");
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    if let Err(error) = health::clear_heartbeat(&platform, &worker).await {
        warn!(%error, worker, "removing the worker heartbeat failed");
    }
}
