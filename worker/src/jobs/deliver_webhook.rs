//! The webhook job: one delivery attempt of one message.

use apalis::prelude::Data;
use service::{
    Platform,
    jobs::{DeliverWebhook, WEBHOOK_QUEUE},
    webhooks,
};
use tracing::info_span;

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
    let tenant_id = job.tenant_id.to_string();
    let message_id = job.message_id.to_string();
    let tags = [
        ("job", "deliver_webhook"),
        ("tenant_id", tenant_id.as_str()),
        ("webhook_message_id", message_id.as_str()),
    ];
    let work = webhooks::delivery::deliver(&platform, &job);
    super::observed(WEBHOOK_QUEUE, span, "webhook job failed", &tags, work)
        .await
        .map_err(|source| DeliverWebhookError(source.to_string()))
}

/// A webhook job that failed on a platform fault.
#[derive(Debug, thiserror::Error)]
#[error("delivering the webhook failed: {0}")]
pub struct DeliverWebhookError(String);
