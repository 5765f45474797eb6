//! The agent run job: takes a run from its stored steps to its end.

use apalis::prelude::Data;
use service::{
    Platform, agent_runs,
    jobs::{AGENT_RUN_QUEUE, RunAgent},
};
use tracing::info_span;

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
    let tenant_id = job.tenant_id.to_string();
    let run_id = job.run_id.to_string();
    let tags = [
        ("job", "run_agent"),
        ("tenant_id", tenant_id.as_str()),
        ("agent_run_id", run_id.as_str()),
        ("request_id", request_id.as_str()),
    ];
    let work = agent_runs::runner::run(&platform, &job);
    super::observed(AGENT_RUN_QUEUE, span, "agent run job failed", &tags, work)
        .await
        .map_err(|source| RunAgentError(source.to_string()))
}

/// A run job that failed on a platform fault, such as the database being unreachable.
#[derive(Debug, thiserror::Error)]
#[error("running the agent failed: {0}")]
pub struct RunAgentError(String);
