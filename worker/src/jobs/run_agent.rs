//! The agent run job: takes a run from its stored steps to its end.

use std::time::Instant;

use apalis::prelude::Data;
use service::{
    Platform, agent_runs, error_tracking,
    jobs::{AGENT_RUN_QUEUE, RunAgent},
    metrics,
};
use tracing::{Instrument, error, info_span};

/// Attempts per job. A run whose job failed for good stays running with an expiring lease,
/// and the sweep enqueues it again.
pub const MAX_RETRIES: usize = 2;

/// Runs the agent run. Safe to run twice: only the job holding the run's lease works on it.
pub async fn handle(job: RunAgent, platform: Data<Platform>) -> Result<(), RunAgentError> {
    let request_id = job.request_id.clone().unwrap_or_default();
    let span = info_span!(
        "job",
        queue = AGENT_RUN_QUEUE,
        tenant.id = %job.tenant_id,
        agent_run.id = %job.run_id,
        request.id = %request_id,
    );
    let started = Instant::now();
    let result = agent_runs::runner::run(&platform, &job)
        .instrument(span.clone())
        .await;
    let outcome = if result.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    metrics::job(AGENT_RUN_QUEUE, outcome, started.elapsed());
    result.map_err(|source| {
        span.in_scope(|| error!(error = %source, "agent run job failed"));
        let tenant_id = job.tenant_id.to_string();
        let run_id = job.run_id.to_string();
        error_tracking::report(
            &source,
            &[
                ("job", "run_agent"),
                ("tenant_id", &tenant_id),
                ("agent_run_id", &run_id),
                ("request_id", &request_id),
            ],
        );
        RunAgentError(source.to_string())
    })
}

/// A run job that failed on a platform fault, such as the database being unreachable.
#[derive(Debug, thiserror::Error)]
#[error("running the agent failed: {0}")]
pub struct RunAgentError(String);
