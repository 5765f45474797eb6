//! The Task Assistant worker: apalis consumers of the Redis queues, plus periodic sweeps,
//! provider probes and a heartbeat.

pub mod heartbeat;
pub mod jobs;
pub mod probes;
pub mod sweep;

use std::time::Duration;

use apalis::prelude::{BackendExt, Monitor, RetryPolicy, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use service::{
    Platform,
    jobs::{CountUsage, JobQueue, USAGE_QUEUE},
};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// How often an idle worker looks for new jobs.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Jobs of one queue handled at the same time by this process.
const CONCURRENCY: usize = 4;

/// Runs the queue consumers, the sweep and the provider probes until `shutdown` is cancelled.
pub async fn run(platform: Platform, shutdown: CancellationToken) -> anyhow::Result<()> {
    let connection = platform.redis.shared().await?;
    let usage_storage = RedisStorage::<CountUsage>::new(connection)
        .with_config(JobQueue::config(&platform.redis, USAGE_QUEUE));
    // A restarted worker must not reuse the name of its dead predecessor, which apalis
    // treats as still active until its heartbeat expires.
    let instance = uuid::Uuid::now_v7();

    let sweep = tokio::spawn(sweep::run(
        platform.clone(),
        platform.settings.sweep_interval,
        shutdown.clone(),
    ));
    let heartbeat = tokio::spawn(heartbeat::run(
        platform.clone(),
        format!("worker-{instance}"),
        shutdown.clone(),
    ));
    let probes = tokio::spawn(probes::run(
        platform.clone(),
        platform.settings.provider_probe_interval,
        shutdown.clone(),
    ));

    let usage_platform = platform.clone();
    let monitor = Monitor::new().register(move |_restarts| {
        WorkerBuilder::new(format!("usage-{instance}"))
            .backend(usage_storage.clone().poll_with_interval(POLL_INTERVAL))
            .concurrency(CONCURRENCY)
            .retry(RetryPolicy::retries(jobs::count_usage::MAX_RETRIES))
            .data(usage_platform.clone())
            .build(jobs::count_usage::handle)
    });
    info!(queue = USAGE_QUEUE, "worker started");
    let stop = shutdown.clone();
    monitor
        .run_with_signal(async move {
            stop.cancelled().await;
            Ok(())
        })
        .await?;
    shutdown.cancel();
    let _ = sweep.await;
    let _ = probes.await;
    let _ = heartbeat.await;
    info!("worker stopped");
    Ok(())
}
