//! The usage aggregation job: counts a tenant's new usage records into its period totals.

use apalis::prelude::Data;
use service::{
    Platform,
    jobs::{CountUsage, USAGE_QUEUE},
    usage,
};
use tracing::{info, info_span};

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
    let tenant_id = job.tenant_id.to_string();
    let tags = [
        ("job", "count_usage"),
        ("tenant_id", tenant_id.as_str()),
        ("request_id", request_id.as_str()),
    ];
    let work = async {
        let counted = usage::count_tenant(&platform, job.tenant_id).await?;
        info!(records = counted, "usage counted");
        Ok(counted)
    };
    super::observed(USAGE_QUEUE, span, "counting usage failed", &tags, work)
        .await
        .map_err(|source| CountUsageError(source.to_string()))
}

/// A failed usage count; always worth retrying, because the input is in the database.
#[derive(Debug, thiserror::Error)]
#[error("counting usage failed: {0}")]
pub struct CountUsageError(String);
