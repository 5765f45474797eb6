//! One delivery attempt of a webhook message, run by the worker's `webhooks` queue.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{
    webhook, webhook_delivery, webhook_event,
    webhook_message::{self, WebhookMessageStatus},
};
use rand::Rng;
use reqwest::{StatusCode, header};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{job_of, signing};
use crate::{
    Platform, TenantId,
    error::{ServiceError, ServiceResult},
    jobs::DeliverWebhook,
    metrics, plans,
    secret::Secret,
};

/// Characters of a response body kept with the attempt.
const EXCERPT_CHARS: usize = 1000;
/// The longest `Retry-After` honoured; a longer one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
const USER_AGENT: &str = "TaskAssistant-Webhooks/1";

/// The outcome of one attempt.
struct Attempt {
    status: Option<StatusCode>,
    duration: Duration,
    excerpt: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.is_success())
    }
}

/// Makes attempt `job.attempt` of the message. A job for an attempt that was already made,
/// or for a message no longer pending, does nothing, so a job that runs twice sends once.
pub async fn deliver(platform: &Platform, job: &DeliverWebhook) -> ServiceResult<()> {
    let tenant = TenantId::new(job.tenant_id);
    let txn = platform.tenant_tx(tenant).await?;
    let now = Utc::now();
    let claimed = webhook_message::Entity::update_many()
        .col_expr(webhook_message::Column::Attempts, Expr::value(job.attempt))
        .col_expr(
            webhook_message::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            webhook_message::Column::EnqueuedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(webhook_message::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_message::Column::Id.eq(job.message_id))
        .filter(webhook_message::Column::Status.eq(WebhookMessageStatus::Pending))
        .filter(webhook_message::Column::Attempts.eq(job.attempt - 1))
        .exec_with_returning(&txn)
        .await?;
    let Some(message) = claimed.into_iter().next() else {
        txn.commit().await?;
        debug!(
            attempt = job.attempt,
            "webhook attempt already made, or message no longer pending"
        );
        return Ok(());
    };
    let endpoint = webhook::Entity::find_by_id(message.webhook_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("webhook"))?;
    let event = webhook_event::Entity::find_by_id(message.event_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("webhook event"))?;
    // A plan changed to one without webhooks stops the deliveries of every endpoint.
    let tenant = plans::limits_for(&txn, TenantId::new(message.tenant_id)).await?;
    if endpoint.enabled && !tenant.limits.features.webhooks {
        let reason = format!("webhooks are not part of the {} plan", tenant.plan_name());
        disable(&txn, endpoint.id, &reason).await?;
        txn.commit().await?;
        return close_message(platform, &message, WebhookMessageStatus::Failed, &reason).await;
    }
    txn.commit().await?;

    if !endpoint.enabled {
        let reason = endpoint
            .disabled_reason
            .clone()
            .unwrap_or_else(|| "the webhook is disabled".into());
        return close_message(platform, &message, WebhookMessageStatus::Failed, &reason).await;
    }
    let attempt = send(platform, &endpoint, &event).await;
    store_attempt(platform, &endpoint, &message, attempt).await
}

/// Signs and posts the event to the endpoint.
async fn send(
    platform: &Platform,
    endpoint: &webhook::Model,
    event: &webhook_event::Model,
) -> Attempt {
    let started = Instant::now();
    let failed = |error: String| Attempt {
        status: None,
        duration: started.elapsed(),
        excerpt: None,
        error: Some(error),
        retry_after: None,
    };
    let secrets = match secrets_of(platform, endpoint) {
        Ok(secrets) => secrets,
        Err(error) => return failed(error),
    };
    let client = match platform.guarded_http.client_for(&endpoint.url) {
        Ok(client) => client,
        Err(error) => return failed(format!("the URL is refused: {error}")),
    };
    let body = event.payload.to_string();
    let message_id = webhook_id(event.id);
    let timestamp = Utc::now().timestamp();
    let Some(signature) = signing::signature_header(&secrets, &message_id, timestamp, &body) else {
        return failed("the signing secret is damaged".into());
    };
    let timeout = platform.settings.webhooks.timeout;
    let request = client
        .post(&endpoint.url)
        .timeout(timeout)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, USER_AGENT)
        .header("webhook-id", &message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body);
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => {
            return failed(format!("no answer within {} s", timeout.as_secs()));
        }
        Err(error) => return failed(format!("sending failed: {}", error_chain(&error))),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after);
    let remaining = timeout.saturating_sub(started.elapsed());
    let excerpt = match tokio::time::timeout(remaining, response.text()).await {
        Ok(Ok(text)) => Some(text.chars().take(EXCERPT_CHARS).collect()),
        _ => None,
    };
    Attempt {
        status: Some(status),
        duration: started.elapsed(),
        excerpt,
        error: (!status.is_success()).then(|| format!("the endpoint answered {status}")),
        retry_after,
    }
}

/// Returns the secrets that sign a delivery: the current one, and the previous one while
/// a rotation's overlap lasts.
fn secrets_of(platform: &Platform, endpoint: &webhook::Model) -> Result<Vec<Secret>, String> {
    let decrypt = |token: &str| {
        platform
            .cipher
            .decrypt(endpoint.tenant_id, token)
            .map_err(|_| "the signing secret cannot be decrypted".to_owned())
    };
    let mut secrets = vec![decrypt(&endpoint.secret_encrypted)?];
    if let (Some(previous), Some(expires_at)) = (
        &endpoint.previous_secret_encrypted,
        endpoint.previous_secret_expires_at,
    ) && expires_at > Utc::now()
    {
        secrets.push(decrypt(previous)?);
    }
    Ok(secrets)
}

/// Returns the `webhook-id` of every delivery of an event, to every endpoint and in every
/// attempt.
pub fn webhook_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// Records the attempt and decides what comes next: done, another attempt later, or
/// failed for good, disabling an endpoint that returned 410 or keeps failing.
async fn store_attempt(
    platform: &Platform,
    endpoint: &webhook::Model,
    message: &webhook_message::Model,
    attempt: Attempt,
) -> ServiceResult<()> {
    let settings = &platform.settings.webhooks;
    let now = Utc::now();
    let gone = attempt.status == Some(StatusCode::GONE);
    let next_delay = (!attempt.succeeded() && !gone)
        .then(|| {
            retry_delay(
                &settings.retry_schedule,
                message.attempts - message.retry_base,
                attempt.retry_after,
            )
        })
        .flatten();

    let txn = platform.tenant_tx(TenantId::new(message.tenant_id)).await?;
    webhook_delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(message.tenant_id),
        message_id: Set(message.id),
        webhook_id: Set(message.webhook_id),
        event_id: Set(message.event_id),
        attempt: Set(message.attempts),
        status_code: Set(attempt.status.map(|status| i32::from(status.as_u16()))),
        succeeded: Set(attempt.succeeded()),
        duration_ms: Set(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX)),
        response_excerpt: Set(attempt.excerpt.clone()),
        error: Set(attempt.error.clone()),
        attempted_at: Set(now),
    }
    .insert(&txn)
    .await?;

    let attempt_error = attempt.error.clone();
    let mut update: webhook_message::ActiveModel = message.clone().into();
    update.updated_at = Set(now);
    update.last_error = Set(attempt.error.clone());
    let mut reschedule = None;
    if attempt.succeeded() {
        update.status = Set(WebhookMessageStatus::Delivered);
        update.delivered_at = Set(Some(now));
        if endpoint.consecutive_failures > 0 {
            reset_failures(&txn, endpoint.id).await?;
        }
    } else if let Some(delay) = next_delay {
        let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
        update.next_attempt_at = Set(Some(at));
        reschedule = Some((delay, at));
    } else {
        warn!(
            webhook_message.id = %message.id,
            attempts = message.attempts,
            error = attempt.error.as_deref().unwrap_or_default(),
            "webhook message failed every attempt"
        );
        update.status = Set(WebhookMessageStatus::Failed);
        // A redelivered event that fails again was already counted once.
        if gone || message.retry_base == 0 {
            add_failure(&txn, endpoint.id, gone, settings.disable_after).await?;
        }
    }
    update.update(&txn).await?;
    txn.commit().await?;
    let outcome = if attempt.succeeded() {
        "delivered"
    } else if gone {
        "gone"
    } else if reschedule.is_some() {
        "retrying"
    } else {
        "failed"
    };
    metrics::webhook_attempt(outcome, attempt.duration);

    if let Some((delay, at)) = reschedule {
        let mut job = job_of(message);
        job.attempt = message.attempts + 1;
        let enqueued = super::enqueue(platform, job, Some(at)).await;
        if let Err(error) = enqueued {
            warn!(%error, webhook_message.id = %message.id,
                  "scheduling the next webhook attempt failed, the sweep will enqueue it");
        }
        info!(
            webhook_message.id = %message.id,
            attempt = message.attempts,
            error = attempt_error.as_deref().unwrap_or_default(),
            retry_in_seconds = delay.as_secs(),
            "webhook delivery failed, retrying later"
        );
    }
    Ok(())
}

/// Forgets the endpoint's failures after a delivery.
async fn reset_failures<C: ConnectionTrait>(db: &C, webhook_id: Uuid) -> ServiceResult<()> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::ConsecutiveFailures, Expr::value(0))
        .filter(webhook::Column::Id.eq(webhook_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Counts a failed message against its endpoint, and disables the endpoint after a 410
/// response or `disable_after` failed messages in a row. The count is incremented in the
/// row, which stays locked until the transaction ends, so messages failing at the same
/// time all count.
async fn add_failure<C: ConnectionTrait>(
    db: &C,
    webhook_id: Uuid,
    gone: bool,
    disable_after: u32,
) -> ServiceResult<()> {
    let counted = webhook::Entity::update_many()
        .col_expr(
            webhook::Column::ConsecutiveFailures,
            Expr::col(webhook::Column::ConsecutiveFailures).add(1),
        )
        .col_expr(webhook::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(webhook_id))
        .exec_with_returning(db)
        .await?;
    let Some(endpoint) = counted.into_iter().next() else {
        return Ok(());
    };
    let reason = if gone {
        "the endpoint answered 410 Gone".to_owned()
    } else if endpoint.consecutive_failures >= i32::try_from(disable_after).unwrap_or(i32::MAX) {
        format!(
            "{} events in a row failed every delivery attempt",
            endpoint.consecutive_failures
        )
    } else {
        return Ok(());
    };
    if endpoint.enabled {
        disable(db, webhook_id, &reason).await?;
    }
    Ok(())
}

/// Disables an endpoint, keeping `reason` for its admins to read.
async fn disable<C: ConnectionTrait>(db: &C, webhook_id: Uuid, reason: &str) -> ServiceResult<()> {
    warn!(webhook.id = %webhook_id, %reason, "disabling a webhook");
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Enabled, Expr::value(false))
        .col_expr(webhook::Column::DisabledReason, Expr::value(reason))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(webhook_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends a message without an attempt, such as one for a disabled endpoint.
async fn close_message(
    platform: &Platform,
    message: &webhook_message::Model,
    status: WebhookMessageStatus,
    reason: &str,
) -> ServiceResult<()> {
    let txn = platform.tenant_tx(TenantId::new(message.tenant_id)).await?;
    let mut update: webhook_message::ActiveModel = message.clone().into();
    update.status = Set(status);
    update.last_error = Set(Some(reason.to_owned()));
    update.updated_at = Set(Utc::now());
    update.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Returns the wait before the attempt after attempt `made`, or `None` when the schedule
/// is used up. Each wait varies by up to a fifth either way, so that a receiver that was down is
/// not hit by every retry at once, and is at least what `Retry-After` requested.
fn retry_delay(
    schedule: &[Duration],
    made: i32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(made).ok()?.checked_sub(1)?)?;
    let jitter = rand::rng().random_range(0.8..=1.2);
    let delay = base.mul_f64(jitter);
    Some(match retry_after {
        Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
        None => delay,
    })
}

/// Reads `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.to_utc() - Utc::now()).to_std().ok()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        let in_a_minute = (Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        let parsed = parse_retry_after(&in_a_minute).unwrap();
        assert!(parsed > Duration::from_secs(50));
        assert!(parsed <= Duration::from_secs(60));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn delays_follow_the_schedule_within_the_jitter() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        let first = retry_delay(&schedule, 1, None).unwrap();
        assert!(first >= Duration::from_secs(8));
        assert!(first <= Duration::from_secs(12));
        let second = retry_delay(&schedule, 2, None).unwrap();
        assert!(second >= Duration::from_secs(80));
        assert!(second <= Duration::from_secs(120));
        assert_eq!(retry_delay(&schedule, 3, None), None);
    }

    #[test]
    fn retry_after_caps_at_a_day() {
        let schedule = [Duration::from_secs(1)];
        let asked = Duration::from_secs(30);
        assert_eq!(retry_delay(&schedule, 1, Some(asked)), Some(asked));
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(retry_delay(&schedule, 1, Some(week)), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn webhook_id_stable_per_event() {
        let event = Uuid::now_v7();
        assert_eq!(webhook_id(event), webhook_id(event));
        assert!(webhook_id(event).starts_with("msg_"));
        assert_eq!(webhook_id(event).len(), 36);
    }
}
