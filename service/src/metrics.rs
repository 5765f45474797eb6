//! Prometheus metrics of the api and the worker, recorded through the `metrics` facade and
//! rendered in the Prometheus text format by each process's `/metrics` route.
//!
//! Label values that clients choose (operation names, model names) are bounded: after
//! [`MAX_LABEL_VALUES`] distinct values of one label, further ones are recorded as `other`,
//! so that no client can grow the number of series without limit.

use std::{
    collections::HashSet,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use providers::ProviderKind;
use tracing::warn;

use crate::{Platform, Settings, auth::tokens::hash_token, health};

/// Distinct values kept per client-chosen label before further ones become `other`.
pub const MAX_LABEL_VALUES: usize = 200;
/// Label value standing for every value beyond [`MAX_LABEL_VALUES`].
pub const OTHER: &str = "other";

/// Histogram buckets of request and provider latencies, in seconds: 1 ms to 2 minutes.
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub const GRAPHQL_REQUESTS: &str = "task_assistant_graphql_requests_total";
pub const GRAPHQL_DURATION: &str = "task_assistant_graphql_request_duration_seconds";
pub const GRAPHQL_SUBSCRIPTIONS: &str = "task_assistant_graphql_active_subscriptions";
pub const WEBSOCKET_CONNECTIONS: &str = "task_assistant_websocket_connections";
pub const PROVIDER_REQUESTS: &str = "task_assistant_provider_requests_total";
pub const PROVIDER_DURATION: &str = "task_assistant_provider_request_duration_seconds";
pub const PROVIDER_FIRST_TOKEN: &str = "task_assistant_provider_time_to_first_token_seconds";
pub const PROVIDER_TOKENS: &str = "task_assistant_provider_tokens_total";
pub const PROVIDER_COST: &str = "task_assistant_provider_cost_microdollars_total";
pub const GENERATIONS_RUNNING: &str = "task_assistant_generations_running";
pub const RATE_LIMIT_REJECTIONS: &str = "task_assistant_rate_limit_rejections_total";
pub const LOCAL_RATE_LIMITS: &str = "task_assistant_rate_limits_local";
pub const CACHE_LOOKUPS: &str = "task_assistant_cache_lookups_total";
pub const QUEUE_JOBS: &str = "task_assistant_queue_jobs";
pub const JOBS: &str = "task_assistant_jobs_total";
pub const JOB_DURATION: &str = "task_assistant_job_duration_seconds";
pub const WEBHOOK_ATTEMPTS: &str = "task_assistant_webhook_attempts_total";
pub const WEBHOOK_DURATION: &str = "task_assistant_webhook_attempt_duration_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static OPERATIONS: BoundedLabel = BoundedLabel::new();
static MODELS: BoundedLabel = BoundedLabel::new();

/// Installs the process-wide recorder on first use and returns its handle. Later calls
/// return the same handle, so every server in one process shares one set of metrics.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .unwrap_or_else(|error| {
                // Only an empty bucket list fails, and the list above is not empty.
                warn!(%error, "latency buckets rejected, histograms become summaries");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            warn!(%error, "another metrics recorder is installed, /metrics stays empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            warn!(%error, "starting the metrics upkeep thread failed");
        }
        handle
    })
}

/// Renders the current metrics in the Prometheus text format, after reading the queue
/// gauges from Redis. A Redis failure leaves the last values and is logged.
pub async fn scrape(platform: &Platform) -> String {
    match health::queue_depths(platform).await {
        Ok(depths) => {
            // Redis is reachable, so the limits are shared again before the next request.
            platform.local_limits.end();
            for depth in depths {
                queue_jobs(depth.queue, "waiting", depth.waiting);
                queue_jobs(depth.queue, "scheduled", depth.scheduled);
                queue_jobs(depth.queue, "failed", depth.failed);
            }
        }
        Err(error) => warn!(%error, "reading queue depths for /metrics failed"),
    }
    local_rate_limits(platform.local_limits.is_active());
    install().render()
}

/// Returns whether a scrape presenting `authorization` (the header's value) may read the metrics:
/// always without `METRICS_BEARER_TOKEN`, else only with `Bearer <token>`.
pub fn authorised(settings: &Settings, authorization: Option<&str>) -> bool {
    let Some(expected) = &settings.metrics_bearer_token else {
        return true;
    };
    let presented = authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    // Comparing digests keeps the comparison's duration independent of the token.
    presented.is_some_and(|token| hash_token(token) == hash_token(expected.expose()))
}

/// Content type of the Prometheus text format that [`scrape`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Registers the help text of every metric.
fn describe() {
    describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL operations by operation name, type and outcome (ok or the first error code)"
    );
    describe_histogram!(
        GRAPHQL_DURATION,
        Unit::Seconds,
        "Time to answer a GraphQL query or mutation, parsing and validation included"
    );
    describe_gauge!(
        GRAPHQL_SUBSCRIPTIONS,
        "GraphQL subscriptions streaming to a client"
    );
    describe_gauge!(WEBSOCKET_CONNECTIONS, "Open GraphQL WebSocket connections");

    describe_counter!(
        PROVIDER_REQUESTS,
        "Calls to LLM providers by provider, model and outcome"
    );
    describe_histogram!(
        PROVIDER_DURATION,
        Unit::Seconds,
        "Time from opening a provider stream to its end"
    );
    describe_histogram!(
        PROVIDER_FIRST_TOKEN,
        Unit::Seconds,
        "Time from opening a provider stream to its first text"
    );
    describe_counter!(
        PROVIDER_TOKENS,
        "Tokens billed by providers, by direction (input or output)"
    );
    describe_counter!(
        PROVIDER_COST,
        "Cost of provider calls in millionths of a US dollar, where the price is known"
    );
    describe_gauge!(
        GENERATIONS_RUNNING,
        "Replies being generated by this process"
    );

    describe_counter!(
        RATE_LIMIT_REJECTIONS,
        "Requests rejected by a rate limit or a quota, by limit"
    );
    describe_gauge!(
        LOCAL_RATE_LIMITS,
        "1 while Redis is unreachable and this api instance enforces the per-minute rate \
         limits on its own, else 0"
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Cache lookups by cache and result (hit or miss)"
    );

    describe_gauge!(
        QUEUE_JOBS,
        "Jobs in each queue by state, read from Redis at scrape time"
    );
    describe_counter!(JOBS, "Jobs handled by this worker, by queue and outcome");
    describe_histogram!(JOB_DURATION, Unit::Seconds, "Time to handle one job");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by outcome: delivered, retrying, failed or gone"
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "Time from sending a webhook delivery to its answer or failure"
    );
}

/// Records one GraphQL query or mutation. `outcome` is `ok` or the first error's code.
pub fn graphql_request(
    operation: Option<&str>,
    kind: &'static str,
    outcome: &str,
    elapsed: Duration,
) {
    let operation = operation_label(operation);
    counter!(GRAPHQL_REQUESTS, "operation" => operation.clone(), "type" => kind, "outcome" => outcome.to_owned())
        .increment(1);
    histogram!(GRAPHQL_DURATION, "operation" => operation, "type" => kind)
        .record(elapsed.as_secs_f64());
}

/// Records the start of a subscription and counts it as active until the guard drops.
pub fn graphql_subscription(operation: Option<&str>) -> Active {
    let operation = operation_label(operation);
    counter!(GRAPHQL_REQUESTS, "operation" => operation, "type" => "subscription", "outcome" => "ok")
        .increment(1);
    Active::new(GRAPHQL_SUBSCRIPTIONS)
}

/// Counts an open WebSocket connection until the guard drops.
pub fn websocket_connection() -> Active {
    Active::new(WEBSOCKET_CONNECTIONS)
}

/// Counts a generation running in this process until the guard drops.
pub fn generation_running() -> Active {
    Active::new(GENERATIONS_RUNNING)
}

/// Records one provider call: `outcome` is `ok`, `cancelled`, or the error's code.
pub fn provider_call(provider: ProviderKind, model: &str, outcome: &str, elapsed: Duration) {
    let model = MODELS.label(model);
    counter!(PROVIDER_REQUESTS, "provider" => provider.as_str(), "model" => model.clone(), "outcome" => outcome.to_owned())
        .increment(1);
    histogram!(PROVIDER_DURATION, "provider" => provider.as_str(), "model" => model)
        .record(elapsed.as_secs_f64());
}

/// Records the time a provider took to send its first text.
pub fn provider_first_token(provider: ProviderKind, model: &str, elapsed: Duration) {
    histogram!(PROVIDER_FIRST_TOKEN, "provider" => provider.as_str(), "model" => MODELS.label(model))
        .record(elapsed.as_secs_f64());
}

/// Records the tokens and cost of one reply, as stored in its usage record.
pub fn provider_usage(
    provider: ProviderKind,
    model: &str,
    input_tokens: i64,
    output_tokens: i64,
    cost_micros: Option<i64>,
) {
    let model = MODELS.label(model);
    counter!(PROVIDER_TOKENS, "provider" => provider.as_str(), "model" => model.clone(), "direction" => "input")
        .increment(input_tokens.max(0) as u64);
    counter!(PROVIDER_TOKENS, "provider" => provider.as_str(), "model" => model.clone(), "direction" => "output")
        .increment(output_tokens.max(0) as u64);
    if let Some(cost) = cost_micros {
        counter!(PROVIDER_COST, "provider" => provider.as_str(), "model" => model)
            .increment(cost.max(0) as u64);
    }
}

/// Records a request rejected by `limit`, such as `requests_per_minute` or
/// `tokens_per_month`. Limit names come from the platform's code, never from clients.
pub fn rate_limited(limit: &str) {
    counter!(RATE_LIMIT_REJECTIONS, "limit" => limit.to_owned()).increment(1);
}

/// Sets whether this process enforces the per-minute rate limits on its own; read at each
/// scrape, so that every process reports its own state.
fn local_rate_limits(active: bool) {
    gauge!(LOCAL_RATE_LIMITS).set(if active { 1.0 } else { 0.0 });
}

/// Records a lookup in `cache`, such as `api_key`.
pub fn cache_lookup(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    counter!(CACHE_LOOKUPS, "cache" => cache, "result" => result).increment(1);
}

/// Sets the number of jobs of `queue` in `state` (waiting, scheduled or failed).
fn queue_jobs(queue: &'static str, state: &'static str, jobs: u64) {
    gauge!(QUEUE_JOBS, "queue" => queue, "state" => state).set(jobs as f64);
}

/// Records one handled job: `outcome` is `succeeded` or `failed`.
pub fn job(queue: &'static str, outcome: &'static str, elapsed: Duration) {
    counter!(JOBS, "queue" => queue, "outcome" => outcome).increment(1);
    histogram!(JOB_DURATION, "queue" => queue).record(elapsed.as_secs_f64());
}

/// Records one webhook attempt: `outcome` is `delivered`, `retrying` (another attempt is
/// scheduled), `failed` (no attempt left) or `gone` (the endpoint answered 410).
pub fn webhook_attempt(outcome: &'static str, elapsed: Duration) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_DURATION).record(elapsed.as_secs_f64());
}

fn operation_label(operation: Option<&str>) -> String {
    match operation {
        Some(name) if !name.is_empty() => OPERATIONS.label(name),
        _ => "anonymous".to_owned(),
    }
}

/// Raises a gauge by one while it lives.
#[must_use = "the gauge goes down again when the guard drops"]
pub struct Active(&'static str);

impl Active {
    fn new(name: &'static str) -> Self {
        gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

/// The values seen of one client-chosen label, up to [`MAX_LABEL_VALUES`].
struct BoundedLabel(Mutex<Option<HashSet<String>>>);

impl BoundedLabel {
    const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Returns `value` when it is known or there is room for it, and `other` otherwise.
    fn label(&self, value: &str) -> String {
        // The set holds only strings, so a poisoned lock is still consistent.
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seen = seen.get_or_insert_with(HashSet::new);
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        OTHER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_beyond_the_bound_become_other() {
        let label = BoundedLabel::new();
        for index in 0..MAX_LABEL_VALUES {
            assert_eq!(label.label(&format!("op{index}")), format!("op{index}"));
        }
        assert_eq!(label.label("one_too_many"), OTHER);
        // Values seen before the bound was reached keep their own series.
        assert_eq!(label.label("op7"), "op7");
    }
}
