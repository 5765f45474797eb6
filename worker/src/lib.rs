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
    jobs::{
        AGENT_RUN_QUEUE, CountUsage, DeliverWebhook, JobQueue, RunAgent, USAGE_QUEUE, WEBHOOK_QUEUE,
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The first pause before a job consumer that stopped on an error starts again; each
/// failure in a row doubles it, up to [`MAX_RESTART_PAUSE`].
const MIN_RESTART_PAUSE: Duration = Duration::from_secs(1);
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);
/// A consumer that ran this long before failing starts again after the shortest pause.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How often an idle worker looks for new jobs.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Jobs of one queue handled at the same time by this process.
const CONCURRENCY: usize = 4;
/// Webhook attempts at the same time: each mostly waits on a receiver, for up to
/// `WEBHOOK_TIMEOUT_SECONDS`, so one slow endpoint must not hold up the others.
const WEBHOOK_CONCURRENCY: usize = 32;

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
    let run_storage = RedisStorage::<RunAgent>::new(connection.clone())
        .with_config(JobQueue::config(&platform.redis, AGENT_RUN_QUEUE));
    let webhook_storage = RedisStorage::<DeliverWebhook>::new(connection)
        .with_config(JobQueue::config(&platform.redis, WEBHOOK_QUEUE));
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
    let webhook_platform = platform.clone();
    let run_concurrency = usize::try_from(platform.settings.agent_run_concurrency).unwrap_or(1);
    let grace = platform.settings.shutdown_grace;
    info!(queues = ?[USAGE_QUEUE, AGENT_RUN_QUEUE, WEBHOOK_QUEUE], "worker started");
    let interrupt = platform.clone();
    let stopping = shutdown.clone();
    let announce_stop = async move {
        stopping.cancelled().await;
        info!(
            grace_seconds = grace.as_secs(),
            "shutting down: no new jobs, running ones may finish"
        );
        // Agent runs can take far longer than the grace period, and they resume from
        // their stored steps, so they stop at once and go back to the queue.
        interrupt.generations.interrupt_all();
    };
    let usage = supervise(
        USAGE_QUEUE,
        grace,
        shutdown.clone(),
        move |monitor, start| {
            let storage = usage_storage.clone();
            let platform = usage_platform.clone();
            monitor.register(move |_restarts| {
                WorkerBuilder::new(format!("usage-{instance}-{start}"))
                    .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                    .concurrency(CONCURRENCY)
                    .retry(RetryPolicy::retries(jobs::count_usage::MAX_RETRIES))
                    .data(platform.clone())
                    .build(jobs::count_usage::handle)
            })
        },
    );
    let runs = supervise(
        AGENT_RUN_QUEUE,
        grace,
        shutdown.clone(),
        move |monitor, start| {
            let storage = run_storage.clone();
            let platform = run_platform.clone();
            monitor.register(move |_restarts| {
                WorkerBuilder::new(format!("agent-runs-{instance}-{start}"))
                    .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                    .concurrency(run_concurrency)
                    .retry(RetryPolicy::retries(jobs::run_agent::MAX_RETRIES))
                    .data(platform.clone())
                    .build(jobs::run_agent::handle)
            })
        },
    );
    let webhooks = supervise(
        WEBHOOK_QUEUE,
        grace,
        shutdown.clone(),
        move |monitor, start| {
            let storage = webhook_storage.clone();
            let platform = webhook_platform.clone();
            monitor.register(move |_restarts| {
                WorkerBuilder::new(format!("webhooks-{instance}-{start}"))
                    .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                    .concurrency(WEBHOOK_CONCURRENCY)
                    .retry(RetryPolicy::retries(jobs::deliver_webhook::MAX_RETRIES))
                    .data(platform.clone())
                    .build(jobs::deliver_webhook::handle)
            })
        },
    );
    let (usage, runs, webhooks, ()) = tokio::join!(usage, runs, webhooks, announce_stop);
    usage?;
    runs?;
    webhooks?;
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

/// Runs the consumers that `register` adds to a monitor until `shutdown`, and starts them
/// again after a pause when they stop on an error. `register` gets the number of earlier
/// starts, for worker names that apalis has not seen yet. apalis ends a consumer whose queue it
/// cannot read, such as while Redis is unreachable, and would otherwise leave the queue
/// without one for good.
async fn supervise(
    queue: &'static str,
    grace: Duration,
    shutdown: CancellationToken,
    register: impl Fn(Monitor, usize) -> Monitor,
) -> anyhow::Result<()> {
    let mut pause = MIN_RESTART_PAUSE;
    for start in 0.. {
        let failed = CancellationToken::new();
        let on_failure = failed.clone();
        let monitor = register(Monitor::new().shutdown_timeout(grace), start).should_restart(
            move |worker, error| {
                warn!(queue, worker = %worker.name(), error = ?error, "job consumer stopped on an error");
                on_failure.cancel();
                false
            },
        );
        let stop = shutdown.clone();
        let stopped_on_error = failed.clone();
        let started = tokio::time::Instant::now();
        let result = monitor
            .run_with_signal(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = stopped_on_error.cancelled() => {}
                }
                Ok(())
            })
            .await;
        if shutdown.is_cancelled() || !failed.is_cancelled() {
            return result.map_err(Into::into);
        }
        if started.elapsed() >= HEALTHY_RUN {
            pause = MIN_RESTART_PAUSE;
        }
        warn!(
            queue,
            pause_ms = pause.as_millis() as u64,
            "starting the job consumer again after a pause"
        );
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_RESTART_PAUSE);
    }
    Ok(())
}
