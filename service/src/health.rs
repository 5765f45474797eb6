//! Reachability checks of the services the platform depends on.

use redis::AsyncCommands;

use crate::Platform;

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
