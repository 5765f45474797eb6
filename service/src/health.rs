//! Reachability checks of the services the platform depends on, and the worker heartbeats
//! that tell the api whether any worker runs.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use redis::AsyncCommands;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::{Platform, error::ServiceResult};

/// Pings PostgreSQL through the pool.
pub async fn ping_postgres(platform: &Platform) -> Result<(), String> {
    platform.db.ping().await.map_err(|error| error.to_string())
}

/// Pings Redis through the shared connection, connecting first if needed.
pub async fn ping_redis(platform: &Platform) -> Result<(), String> {
    let mut connection = platform
        .redis
        .shared()
        .await
        .map_err(|error| error.to_string())?;
    connection
        .ping::<String>()
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Heartbeats older than this are removed when a worker writes its own.
const HEARTBEAT_RETENTION_SECONDS: i64 = 86_400;

/// Returns the key of the sorted set of worker instances, each scored with its last
/// heartbeat in Unix seconds.
fn heartbeat_key(platform: &Platform) -> String {
    platform.redis.key(&["worker-heartbeats"])
}

/// Records that the worker instance `worker` is alive now.
pub async fn record_heartbeat(platform: &Platform, worker: &str) -> ServiceResult<()> {
    let now = Utc::now().timestamp();
    let key = heartbeat_key(platform);
    let mut connection = platform.redis.shared().await?;
    let () = redis::pipe()
        .zadd(&key, worker, now)
        .ignore()
        .zrembyscore(&key, "-inf", now - HEARTBEAT_RETENTION_SECONDS)
        .ignore()
        .query_async(&mut connection)
        .await?;
    Ok(())
}

/// Removes the heartbeat of `worker`, which is stopping.
pub async fn clear_heartbeat(platform: &Platform, worker: &str) -> ServiceResult<()> {
    let mut connection = platform.redis.shared().await?;
    let _: i64 = connection.zrem(heartbeat_key(platform), worker).await?;
    Ok(())
}

/// Returns the age of the newest worker heartbeat, or `None` when no worker wrote one.
pub async fn newest_heartbeat_age(platform: &Platform) -> Result<Option<Duration>, String> {
    let mut connection = platform
        .redis
        .shared()
        .await
        .map_err(|error| error.to_string())?;
    let newest: Vec<(String, i64)> = connection
        .zrevrange_withscores(heartbeat_key(platform), 0, 0)
        .await
        .map_err(|error| error.to_string())?;
    Ok(newest.first().map(|(_, written)| {
        let age = Utc::now().timestamp() - written;
        Duration::from_secs(age.max(0) as u64)
    }))
}

/// Returns the names of `known` migrations that the database has not applied, oldest first.
pub async fn pending_migrations(
    platform: &Platform,
    known: &[String],
) -> Result<Vec<String>, String> {
    let rows = platform
        .db
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT version FROM seaql_migrations",
        ))
        .await
        .map_err(|error| error.to_string())?;
    let applied: HashSet<String> = rows
        .iter()
        .filter_map(|row| row.try_get::<String>("", "version").ok())
        .collect();
    Ok(known
        .iter()
        .filter(|name| !applied.contains(*name))
        .cloned()
        .collect())
}
