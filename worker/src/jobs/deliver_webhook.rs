//! The webhook job: one delivery attempt of one message.

use std::time::Instant;

use apalis::prelude::Data;
use service::{
    Platform, error_tracking,
    jobs::{DeliverWebhook, WEBHOOK_QUEUE},
    metrics, webhooks,
};
use tracing::{Instrument, error, info_span};

/// Attempts per job on a platform fault, such as the database being unreachable. Failed
/// deliveries are not faults: they schedule their next attempt as a job of its own.
pub const MAX_RETRIES: usize = 2;

/// Makes the attempt. Safe to run twice: only the job whose attempt is the message's next
/// one sends anything.
pub async fn handle(
    job: DeliverWebhook,
    platform: Data<Platform>,
) -> Result<(), DeliverWebhookError> {
    let span = info_span!(
        "job",
        queue = WEBHOOK_QUEUE,
        tenant.id = %job.tenant_id,
        webhook_message.id = %job.message_id,
        attempt = job.attempt,
    );
    let started = Instant::now();
    let result = webhooks::delivery::deliver(&platform, &job)
        .instrument(span.clone())
        .await;
    let outcome = if result.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    metrics::job(WEBHOOK_QUEUE, outcome, started.elapsed());
    result.map_err(|source| {
        span.in_scope(|| error!(error = %source, "webhook job failed"));
        let tenant_id = job.tenant_id.to_string();
        let message_id = job.message_id.to_string();
        error_tracking::report(
            &source,
            &[
                ("job", "deliver_webhook"),
                ("tenant_id", &tenant_id),
                ("webhook_message_id", &message_id),
            ],
        );
        DeliverWebhookError(source.to_string())
    })
}

/// A webhook job that failed on a platform fault.
#[derive(Debug, thiserror::Error)]
#[error("delivering the webhook failed: {0}")]
pub struct DeliverWebhookError(String);
