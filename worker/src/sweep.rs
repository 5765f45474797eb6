//! Periodic maintenance: closes replies whose generating process died, enqueues agent runs
//! whose worker died or whose job never reached Redis, counts usage
//! records that no job reached, restores suspension markers, deletes expired messages,
//! sessions and invitations, and rolls old usage records up into daily totals. Each tick
//! runs on one worker replica only, guarded by a Redis lock.

use std::time::Duration;

use redis::AsyncCommands;
use service::{Platform, chat, usage};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// Records younger than this are left to their own job.
const USAGE_GRACE_SECONDS: i64 = 30;
/// Replies streaming for longer than this are checked for a live generation.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Runs the sweep every `interval` until `shutdown` is cancelled.
pub async fn run(platform: Platform, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match acquire_lock(&platform, "sweep", interval).await {
            Ok(true) => {
                if let Err(error) =
                    chat::recovery::close_abandoned(&platform, ABANDONED_AFTER).await
                {
                    warn!(%error, "closing abandoned replies failed");
                }
                // A queued run waits one lease period for its own job first.
                let queued_grace = platform.settings.agent_run_lease;
                if let Err(error) =
                    service::agent_runs::enqueue_stalled(&platform, queued_grace).await
                {
                    warn!(%error, "enqueueing stalled agent runs failed");
                }
                // Webhook messages whose job never reached Redis, or was lost there.
                if let Err(error) = service::webhooks::enqueue_due(&platform).await {
                    warn!(%error, "enqueueing due webhook deliveries failed");
                }
                if let Err(error) = sweep_usage(&platform, USAGE_GRACE_SECONDS).await {
                    warn!(%error, "usage sweep failed");
                }
                // Redis keeps nothing on disk in some deployments, and a lost suspension
                // marker would let a suspended tenant's access tokens work again.
                if let Err(error) = service::admin::publish_suspensions(&platform).await {
                    warn!(%error, "restoring tenant suspension markers failed");
                }
                if let Err(error) =
                    service::tenant_settings::delete_expired_messages(&platform).await
                {
                    warn!(%error, "deleting messages past their retention failed");
                }
                if let Err(error) = service::maintenance::remove_ended(&platform).await {
                    warn!(%error, "removing ended sessions and invitations failed");
                }
                let retention = platform.settings.usage_retention_days;
                if let Err(error) = service::maintenance::roll_up_usage(&platform, retention).await
                {
                    warn!(%error, "rolling usage records up into daily totals failed");
                }
            }
            Ok(false) => {}
            Err(error) => warn!(%error, "acquiring the sweep lock failed"),
        }
    }
}

/// Counts the records of every tenant whose records wait longer than `grace_seconds`.
/// Returns the number of records counted.
pub async fn sweep_usage(platform: &Platform, grace_seconds: i64) -> service::ServiceResult<u64> {
    let txn = platform.cross_tenant_tx().await?;
    let tenants = usage::tenants_with_uncounted(&txn, grace_seconds).await?;
    txn.commit().await?;
    let mut counted = 0;
    for tenant_id in tenants {
        counted += usage::count_tenant(platform, tenant_id).await?;
    }
    if counted > 0 {
        info!(
            records = counted,
            "usage sweep counted records that no job reached"
        );
    }
    Ok(counted)
}

/// Takes the named lock for one tick. The lock expires on its own, so a replica that dies
/// while holding it blocks the others for one interval at most.
pub(crate) async fn acquire_lock(
    platform: &Platform,
    name: &str,
    ttl: Duration,
) -> redis::RedisResult<bool> {
    let mut connection = platform.redis.shared().await?;
    let key = platform.redis.key(&["lock", name]);
    let options = redis::SetOptions::default()
        .conditional_set(redis::ExistenceCheck::NX)
        .with_expiration(redis::SetExpiry::PX(ttl.as_millis().max(1) as u64));
    let acquired: Option<String> = connection
        .set_options(key, Uuid::now_v7().to_string(), options)
        .await?;
    Ok(acquired.is_some())
}
