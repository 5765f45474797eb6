//! The Task Assistant worker: apalis consumers of the Redis queues, plus periodic sweeps,
//! provider probes and a heartbeat.

pub mod heartbeat;
pub mod http;
pub mod jobs;
pub mod probes;
pub mod sweep;

use std::{sync::Arc, time::Duration};

use apalis::prelude::{BackendExt, Monitor, RetryPolicy, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use service::{
    Platform,
    chat::registry::listen_for_stops,
    jobs::{AGENT_RUN_QUEUE, CountUsage, JobQueue, RunAgent, USAGE_QUEUE},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often an idle worker looks for new jobs.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Jobs of one queue handled at the same time by this process.
const CONCURRENCY: usize = 4;

/// Runs the queue consumers, the sweep, the provider probes and the metrics server on
/// `metrics_listener` until `shutdown` is cancelled. Then takes no new job and lets the
/// running ones finish for up to `SHUTDOWN_GRACE_SECONDS`. A job cut off after that stays
/// in Redis, and apalis gives it to another worker once this one's heartbeat expires.
pub async fn run(
    mut platform: Platform,
    metrics_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The worker's agent runs get a registry of their own, so that stopping them on
    // shutdown leaves alone the generations of an api sharing this process.
    platform.generations = Arc::default();
    let connection = platform.redis.shared().await?;
    let usage_storage = RedisStorage::<CountUsage>::new(connection.clone())
        .with_config(JobQueue::config(&platform.redis, USAGE_QUEUE));
    let run_storage = RedisStorage::<RunAgent>::new(connection)
        .with_config(JobQueue::config(&platform.redis, AGENT_RUN_QUEUE));
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

    let metrics_server = tokio::spawn(http::serve(
        platform.clone(),
        metrics_listener,
        shutdown.clone(),
    ));

    // Cancel requests for runs of this process arrive on the generations' stop channel.
    let stops = tokio::spawn(listen_for_stops(platform.clone()));

    let usage_platform = platform.clone();
    let run_platform = platform.clone();
    let run_concurrency = usize::try_from(platform.settings.agent_run_concurrency).unwrap_or(1);
    let grace = platform.settings.shutdown_grace;
    let monitor = Monitor::new()
        .shutdown_timeout(grace)
        .register(move |_restarts| {
            WorkerBuilder::new(format!("usage-{instance}"))
                .backend(usage_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(CONCURRENCY)
                .retry(RetryPolicy::retries(jobs::count_usage::MAX_RETRIES))
                .data(usage_platform.clone())
                .build(jobs::count_usage::handle)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(format!("agent-runs-{instance}"))
                .backend(run_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(run_concurrency)
                .retry(RetryPolicy::retries(jobs::run_agent::MAX_RETRIES))
                .data(run_platform.clone())
                .build(jobs::run_agent::handle)
        });
    info!(queues = ?[USAGE_QUEUE, AGENT_RUN_QUEUE], "worker started");
    let stop = shutdown.clone();
    let interrupt = platform.clone();
    monitor
        .run_with_signal(async move {
            stop.cancelled().await;
            info!(
                grace_seconds = grace.as_secs(),
                "shutting down: no new jobs, running ones may finish"
            );
            // Agent runs can take far longer than the grace period, and they resume from
            // their stored steps, so they stop at once and go back to the queue.
            interrupt.generations.interrupt_all();
            Ok(())
        })
        .await?;
    shutdown.cancel();
    match metrics_server.await {
        Ok(Err(error)) => warn!(%error, "the metrics server failed"),
        Err(error) => warn!(%error, "the metrics server panicked"),
        Ok(Ok(())) => {}
    }
    stops.abort();
    let _ = sweep.await;
    let _ = probes.await;
    let _ = heartbeat.await;
    info!("worker stopped");
    Ok(())
}
