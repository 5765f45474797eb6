//! The usage aggregation job: counts a tenant's new usage records into its period totals.

use apalis::prelude::Data;
use service::{Platform, error_tracking, jobs::CountUsage, usage};
use tracing::{error, info};

/// Attempts per job before it is recorded as failed. The sweep counts records of a job
/// that failed for good, so no usage is lost either way.
pub const MAX_RETRIES: usize = 3;

/// Counts the tenant's uncounted records. Safe to run twice: each record is counted once.
pub async fn handle(job: CountUsage, platform: Data<Platform>) -> Result<u64, CountUsageError> {
    match usage::count_tenant(&platform, job.tenant_id).await {
        Ok(counted) => {
            info!(tenant.id = %job.tenant_id, records = counted, "usage counted");
            Ok(counted)
        }
        Err(source) => {
            error!(tenant.id = %job.tenant_id, error = %source, "counting usage failed");
            let tenant_id = job.tenant_id.to_string();
            error_tracking::report(
                &source,
                &[("job", "count_usage"), ("tenant_id", &tenant_id)],
            );
            Err(CountUsageError(source.to_string()))
        }
    }
}

/// A failed usage count; always worth retrying, because the input is in the database.
#[derive(Debug, thiserror::Error)]
#[error("counting usage failed: {0}")]
pub struct CountUsageError(String);
