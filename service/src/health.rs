//! Reachability checks of the services the platform depends on, and the worker heartbeats
//! that tell the api whether any worker runs.

use std::{
    collections::HashSet,
    future::Future,
    time::{Duration, Instant},
};

use chrono::Utc;
use entity::{Role, provider_health};
use redis::AsyncCommands;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Map, Value, json};

use crate::{
    Platform, RequestContext,
    error::ServiceResult,
    jobs::{JobQueue, QUEUES},
};

/// How long each dependency may take to respond to a health check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of one health check: its latency, details to report, and the reason it
/// failed if it did.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub latency: Duration,
    pub details: Map<String, Value>,
    pub error: Option<String>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.error.is_none()
    }
}

/// The result of a check before its name and latency are added.
#[derive(Default)]
struct Outcome {
    details: Map<String, Value>,
    error: Option<String>,
}

impl Outcome {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            details: Map::new(),
            error: Some(error.into()),
        }
    }

    fn with(mut self, name: &str, value: Value) -> Self {
        self.details.insert(name.to_owned(), value);
        self
    }
}

/// The length of one job queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: &'static str,
    /// Jobs that a worker may take now.
    pub waiting: u64,
    /// Jobs due later, such as retries waiting for their time.
    pub scheduled: u64,
    /// Jobs that failed for good.
    pub failed: u64,
}

/// Everything the `health` query reports.
pub struct HealthReport {
    pub checks: Vec<Check>,
    pub providers: Vec<provider_health::Model>,
    pub queues: Vec<QueueDepth>,
}

/// Checks PostgreSQL and Redis at the same time.
pub async fn dependencies(platform: &Platform) -> Vec<Check> {
    let (postgres, redis) = tokio::join!(
        timed("postgres", ping(ping_postgres(platform))),
        timed("redis", ping(ping_redis(platform))),
    );
    vec![postgres, redis]
}

/// Checks at the same time what the api needs to serve: PostgreSQL, Redis, every one of
/// `migrations` applied, and a worker heartbeat younger than
/// `WORKER_HEARTBEAT_MAX_AGE_SECONDS`.
pub async fn readiness(platform: &Platform, migrations: &[String]) -> Vec<Check> {
    let (postgres, redis, migrations, worker) = tokio::join!(
        timed("postgres", ping(ping_postgres(platform))),
        timed("redis", ping(ping_redis(platform))),
        timed("migrations", check_migrations(platform, migrations)),
        timed("worker", check_worker(platform)),
    );
    let mut checks = vec![postgres, redis, migrations, worker];
    // Load balancers stop sending requests to an instance that shuts down.
    if platform.generations.is_draining() {
        checks.push(Check {
            name: "shutdown",
            latency: Duration::ZERO,
            details: Map::new(),
            error: Some("this instance is shutting down".into()),
        });
    }
    checks
}

/// Returns the readiness checks, provider health and queue depths. Needs the admin role.
pub async fn report(
    platform: &Platform,
    ctx: &RequestContext,
    migrations: &[String],
) -> ServiceResult<HealthReport> {
    ctx.require(Role::Admin)?;
    let checks = readiness(platform, migrations).await;
    let providers = crate::provider_health::list(platform, ctx).await?;
    let queues = queue_depths(platform).await?;
    Ok(HealthReport {
        checks,
        providers,
        queues,
    })
}

/// Counts the jobs of every queue, from the keys apalis keeps for it. apalis adds a new
/// job to its scheduled set with the current time, and moves due jobs to its active list
/// when a worker polls, so due scheduled jobs count as waiting.
pub async fn queue_depths(platform: &Platform) -> ServiceResult<Vec<QueueDepth>> {
    let now = Utc::now().timestamp();
    let mut connection = platform.redis.shared().await?;
    let mut depths = Vec::with_capacity(QUEUES.len());
    for queue in QUEUES {
        let config = JobQueue::config(&platform.redis, queue);
        let scheduled = config.scheduled_jobs_set();
        let (active, due, later, failed): (u64, u64, u64, u64) = redis::pipe()
            .llen(config.active_jobs_list())
            .zcount(&scheduled, "-inf", now)
            .zcount(&scheduled, format!("({now}"), "+inf")
            .zcard(config.dead_jobs_set())
            .query_async(&mut connection)
            .await?;
        depths.push(QueueDepth {
            queue,
            waiting: active + due,
            scheduled: later,
            failed,
        });
    }
    Ok(depths)
}

async fn check_migrations(platform: &Platform, migrations: &[String]) -> Outcome {
    let pending = match pending_migrations(platform, migrations).await {
        Ok(pending) => pending,
        Err(error) => return Outcome::failed(error),
    };
    let outcome = if pending.is_empty() {
        Outcome::default()
    } else {
        Outcome::failed(format!(
            "{} migrations are not applied: {}; run migrate",
            pending.len(),
            pending.join(", ")
        ))
    };
    outcome.with("pending", json!(pending))
}

async fn check_worker(platform: &Platform) -> Outcome {
    let max_age = platform.settings.worker_heartbeat_max_age;
    let age = match newest_heartbeat_age(platform).await {
        Ok(Some(age)) => age,
        Ok(None) => return Outcome::failed("no worker has written a heartbeat"),
        Err(error) => return Outcome::failed(error),
    };
    let outcome = if age <= max_age {
        Outcome::default()
    } else {
        Outcome::failed(format!(
            "the newest worker heartbeat is {} s old, more than {} s",
            age.as_secs(),
            max_age.as_secs()
        ))
    };
    outcome.with("heartbeatAgeSeconds", json!(age.as_secs()))
}

/// Turns a probe without details into an outcome.
async fn ping(probe: impl Future<Output = Result<(), String>>) -> Outcome {
    match probe.await {
        Ok(()) => Outcome::default(),
        Err(error) => Outcome::failed(error),
    }
}

/// Runs a check with a timeout and measures its latency.
async fn timed(name: &'static str, check: impl Future<Output = Outcome>) -> Check {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::failed(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    Check {
        name,
        latency: started.elapsed(),
        details: outcome.details,
        error: outcome.error,
    }
}

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
