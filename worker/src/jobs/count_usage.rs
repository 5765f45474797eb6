//! The usage aggregation job: counts a tenant's new usage records into its period totals.

use std::time::Instant;

use apalis::prelude::Data;
use service::{
    Platform, error_tracking,
    jobs::{CountUsage, USAGE_QUEUE},
    metrics, usage,
};
use tracing::{Instrument, error, info, info_span};

/// Attempts per job before it is recorded as failed. The sweep counts records of a job
/// that failed for good, so no usage is lost either way.
pub const MAX_RETRIES: usize = 3;

/// Counts the tenant's uncounted records. Safe to run twice: each record is counted once.
/// Log lines carry the id of the request that enqueued the job.
pub async fn handle(job: CountUsage, platform: Data<Platform>) -> Result<u64, CountUsageError> {
    let request_id = job.request_id.clone().unwrap_or_default();
    let span = info_span!(
        "job",
        queue = USAGE_QUEUE,
        tenant.id = %job.tenant_id,
        request.id = %request_id,
    );
    let started = Instant::now();
    let result = async {
        match usage::count_tenant(&platform, job.tenant_id).await {
            Ok(counted) => {
                info!(records = counted, "usage counted");
                Ok(counted)
            }
            Err(source) => {
                error!(error = %source, "counting usage failed");
                let tenant_id = job.tenant_id.to_string();
                error_tracking::report(
                    &source,
                    &[
                        ("job", "count_usage"),
                        ("tenant_id", &tenant_id),
                        ("request_id", &request_id),
                    ],
                );
                Err(CountUsageError(source.to_string()))
            }
        }
    }
    .instrument(span)
    .await;
    let outcome = if result.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    metrics::job(USAGE_QUEUE, outcome, started.elapsed());
    result
}

/// A failed usage count; always worth retrying, because the input is in the database.
#[derive(Debug, thiserror::Error)]
#[error("counting usage failed: {0}")]
pub struct CountUsageError(String);
