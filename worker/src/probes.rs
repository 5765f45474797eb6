//! Periodic provider probes: each tick, one worker replica probes the providers that have
//! a platform endpoint and stores their health, guarded by a Redis lock.

use std::time::Duration;

use service::{Platform, provider_health};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::sweep::acquire_lock;

/// Probes the providers every `interval` until `shutdown` is cancelled. The first probe
/// runs at once, so that the status is known soon after a deployment.
pub async fn run(platform: Platform, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match acquire_lock(&platform, "provider-probes", interval).await {
            Ok(true) => {
                if let Err(error) = provider_health::probe_all(&platform).await {
                    warn!(%error, "storing provider probe results failed");
                }
            }
            Ok(false) => {}
            Err(error) => warn!(%error, "acquiring the provider probe lock failed"),
        }
    }
}
