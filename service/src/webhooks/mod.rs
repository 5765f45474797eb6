//! Webhooks: tenants' endpoints that receive signed events, following the Standard
//! Webhooks specification.
//!
//! An event is written in the transaction of the change that caused it, with one message
//! per subscribed endpoint ([`record`]). After the commit the messages' jobs go to the
//! `webhooks` queue ([`Outbox::dispatch`]). When that fails, because Redis is down for
//! example, the sweep enqueues every message that is due and has no job ([`enqueue_due`]).
//! Each attempt is its own job ([`delivery::deliver`]), so that retries spanning a day
//! survive worker restarts, and every attempt of a message carries the same `webhook-id`.

pub mod delivery;
pub mod signing;

use chrono::{DateTime, Utc};
use entity::{
    Role, webhook, webhook_delivery, webhook_event,
    webhook_message::{self, WebhookMessageStatus},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, TenantId,
    audit::{self, Action, Target, TargetType},
    error::{ServiceError, ServiceResult},
    jobs::DeliverWebhook,
    plans,
    secret::Secret,
    validation,
};

/// Endpoints one tenant may have.
pub const MAX_WEBHOOKS: usize = 20;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// Maximum length of an endpoint URL, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Messages the sweep enqueues per tick.
const SWEEP_BATCH: u64 = 500;

/// The kind of event. Its wire name is the `type` of the delivered body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    MessageCompleted,
    AgentRunSucceeded,
    AgentRunFailed,
    /// Usage reached 80% of a quota of the plan.
    QuotaWarning,
    /// Usage reached 100% of a quota of the plan.
    QuotaReached,
    ProviderHealthChanged,
    MemberAdded,
    MemberRemoved,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// Sent by `testWebhook` to one endpoint, whatever it subscribed to.
    Test,
}

impl EventType {
    /// The types an endpoint may subscribe to.
    pub const SUBSCRIBABLE: [EventType; 10] = [
        EventType::MessageCompleted,
        EventType::AgentRunSucceeded,
        EventType::AgentRunFailed,
        EventType::QuotaWarning,
        EventType::QuotaReached,
        EventType::ProviderHealthChanged,
        EventType::MemberAdded,
        EventType::MemberRemoved,
        EventType::ApiKeyCreated,
        EventType::ApiKeyRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageCompleted => "message.completed",
            EventType::AgentRunSucceeded => "agent_run.succeeded",
            EventType::AgentRunFailed => "agent_run.failed",
            EventType::QuotaWarning => "usage.quota_warning",
            EventType::QuotaReached => "usage.quota_reached",
            EventType::ProviderHealthChanged => "provider.health_changed",
            EventType::MemberAdded => "member.added",
            EventType::MemberRemoved => "member.removed",
            EventType::ApiKeyCreated => "api_key.created",
            EventType::ApiKeyRevoked => "api_key.revoked",
            EventType::Test => "webhook.test",
        }
    }

    pub fn from_name(name: &str) -> Option<EventType> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([EventType::Test])
            .find(|event| event.as_str() == name)
    }
}

/// A new endpoint.
pub struct CreateWebhook {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Default)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    /// `true` enables a disabled endpoint again and resets its failure count.
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret, shown only when it is created or rotated.
pub struct WithSecret {
    pub webhook: webhook::Model,
    pub secret: Secret,
}

/// Returns the event types an endpoint subscribed to.
pub fn event_types_of(webhook: &webhook::Model) -> Vec<EventType> {
    webhook
        .event_types
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(EventType::from_name)
        .collect()
}

fn check_event_types(event_types: &[EventType]) -> ServiceResult<Value> {
    if event_types.is_empty() {
        return Err(ServiceError::invalid(
            "events",
            "must name at least one event type",
        ));
    }
    let mut names: Vec<&str> = event_types.iter().map(|event| event.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(json!(names))
}

/// Checks an endpoint's URL: at most [`MAX_URL_CHARS`], http or https, no credentials in
/// it, and no blocked address literal. Host names are checked again on every delivery.
fn check_webhook_url(platform: &Platform, url: &str) -> ServiceResult<String> {
    let url = url.trim();
    validation::check_length("url", url, MAX_URL_CHARS)?;
    if let Ok(parsed) = reqwest::Url::parse(url)
        && (!parsed.username().is_empty() || parsed.password().is_some())
    {
        return Err(ServiceError::invalid(
            "url",
            "must not contain a user name or password; verify deliveries by their signature",
        ));
    }
    crate::tools::http::check_url(platform, "url", url)
}

fn check_description(description: Option<&str>) -> ServiceResult<Option<String>> {
    validation::optional_text("description", description, MAX_DESCRIPTION_CHARS)
}

/// Adds an endpoint and returns it with its new signing secret.
pub async fn create(
    platform: &Platform,
    ctx: &RequestContext,
    input: CreateWebhook,
) -> ServiceResult<WithSecret> {
    ctx.require(Role::Admin)?;
    let url = check_webhook_url(platform, &input.url)?;
    let event_types = check_event_types(&input.event_types)?;
    let description = check_description(input.description.as_deref())?;
    let secret = signing::new_secret();

    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let tenant = plans::limits_for(&txn, ctx.tenant_id).await?;
    plans::check_feature(&tenant, "webhooks", tenant.limits.features.webhooks)?;
    let existing = webhook::Entity::find()
        .filter(webhook::Column::TenantId.eq(ctx.tenant()))
        .count(&txn)
        .await?;
    if existing >= MAX_WEBHOOKS as u64 {
        return Err(ServiceError::invalid(
            "url",
            format!("a tenant may have at most {MAX_WEBHOOKS} webhooks; delete one first"),
        ));
    }
    let now = Utc::now();
    let webhook = webhook::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        url: Set(url),
        description: Set(description),
        event_types: Set(event_types.clone()),
        secret_encrypted: Set(platform.cipher.encrypt(ctx.tenant(), &secret)),
        previous_secret_encrypted: Set(None),
        previous_secret_expires_at: Set(None),
        enabled: Set(true),
        disabled_reason: Set(None),
        consecutive_failures: Set(0),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        ctx,
        Action::WebhookCreate,
        Target::new(TargetType::Webhook, webhook.id),
        json!({ "url": webhook.url, "events": event_types }),
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), webhook.id = %webhook.id, "webhook created");
    Ok(WithSecret { webhook, secret })
}

pub async fn update(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
    input: UpdateWebhook,
) -> ServiceResult<webhook::Model> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let found = find(&txn, ctx, id).await?;
    let before = found.clone();
    let mut active: webhook::ActiveModel = found.into();
    if let Some(url) = input.url {
        active.url = Set(check_webhook_url(platform, &url)?);
    }
    if let Some(event_types) = input.event_types {
        active.event_types = Set(check_event_types(&event_types)?);
    }
    if let Some(description) = input.description {
        active.description = Set(check_description(description.as_deref())?);
    }
    if let Some(enabled) = input.enabled {
        if enabled {
            let tenant = plans::limits_for(&txn, ctx.tenant_id).await?;
            plans::check_feature(&tenant, "webhooks", tenant.limits.features.webhooks)?;
        }
        active.enabled = Set(enabled);
        if enabled {
            active.disabled_reason = Set(None);
            active.consecutive_failures = Set(0);
        }
    }
    active.updated_at = Set(Utc::now());
    let fields = audit::changed_fields(&before, &active);
    let updated = active.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        Action::WebhookUpdate,
        Target::new(TargetType::Webhook, id),
        json!({ "url": updated.url, "fields": fields }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes an endpoint with its messages and delivery history.
pub async fn delete(platform: &Platform, ctx: &RequestContext, id: Uuid) -> ServiceResult<Uuid> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let found = find(&txn, ctx, id).await?;
    webhook::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        ctx,
        Action::WebhookDelete,
        Target::new(TargetType::Webhook, id),
        json!({ "url": found.url }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// Replaces the signing secret. The old one keeps signing next to the new one for
/// `WEBHOOK_ROTATION_OVERLAP_SECONDS`, so that the receiver can switch without losing a
/// delivery.
pub async fn rotate_secret(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<WithSecret> {
    ctx.require(Role::Admin)?;
    let secret = signing::new_secret();
    let overlap = chrono::Duration::from_std(platform.settings.webhooks.rotation_overlap)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let found = find(&txn, ctx, id).await?;
    let previous = found.secret_encrypted.clone();
    let mut active: webhook::ActiveModel = found.into();
    active.secret_encrypted = Set(platform.cipher.encrypt(ctx.tenant(), &secret));
    active.previous_secret_encrypted = Set(Some(previous));
    active.previous_secret_expires_at = Set(Some(Utc::now() + overlap));
    active.updated_at = Set(Utc::now());
    let webhook = active.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        Action::WebhookRotateSecret,
        Target::new(TargetType::Webhook, id),
        json!({ "url": webhook.url }),
    )
    .await?;
    txn.commit().await?;
    Ok(WithSecret { webhook, secret })
}

/// Sends a `webhook.test` event to one endpoint and returns its message.
pub async fn send_test(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<MessageWithEvent> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let found = find(&txn, ctx, id).await?;
    let data = json!({ "webhookId": found.id, "sentBy": ctx.user_id });
    let event = insert_event(&txn, ctx.tenant(), EventType::Test, data).await?;
    let message = insert_message(&txn, &found, &event).await?;
    txn.commit().await?;
    Outbox(vec![job_of(&message)]).dispatch(platform).await;
    Ok(MessageWithEvent { message, event })
}

pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<webhook::Model> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let found = find(&txn, ctx, id).await?;
    txn.commit().await?;
    Ok(found)
}

/// Lists the tenant's endpoints, oldest first.
pub async fn list(platform: &Platform, ctx: &RequestContext) -> ServiceResult<Vec<webhook::Model>> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let webhooks = webhook::Entity::find()
        .filter(webhook::Column::TenantId.eq(ctx.tenant()))
        .order_by_asc(webhook::Column::CreatedAt)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(webhooks)
}

/// A message with its event, as listed for an endpoint.
pub struct MessageWithEvent {
    pub message: webhook_message::Model,
    pub event: webhook_event::Model,
}

/// Lists the endpoint's newest messages, at most `limit`, only those in `status` when given.
pub async fn messages(
    platform: &Platform,
    ctx: &RequestContext,
    webhook_id: Uuid,
    status: Option<WebhookMessageStatus>,
    after: Option<Uuid>,
    limit: u64,
) -> ServiceResult<Vec<MessageWithEvent>> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    find(&txn, ctx, webhook_id).await?;
    let mut select = webhook_message::Entity::find()
        .filter(webhook_message::Column::TenantId.eq(ctx.tenant()))
        .filter(webhook_message::Column::WebhookId.eq(webhook_id));
    if let Some(status) = status {
        select = select.filter(webhook_message::Column::Status.eq(status));
    }
    // The page continues after the cursor's message, with older ones.
    if let Some(after) = after {
        let cursor = webhook_message::Entity::find_by_id(after)
            .filter(webhook_message::Column::WebhookId.eq(webhook_id))
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::invalid("after", "is not a message of this webhook"))?;
        select = select.filter(
            Condition::any()
                .add(webhook_message::Column::CreatedAt.lt(cursor.created_at))
                .add(
                    Condition::all()
                        .add(webhook_message::Column::CreatedAt.eq(cursor.created_at))
                        .add(webhook_message::Column::Id.lt(cursor.id)),
                ),
        );
    }
    let messages = select
        .order_by_desc(webhook_message::Column::CreatedAt)
        .order_by_desc(webhook_message::Column::Id)
        .limit(limit)
        .all(&txn)
        .await?;
    let event_ids: Vec<Uuid> = messages.iter().map(|message| message.event_id).collect();
    let events = webhook_event::Entity::find()
        .filter(webhook_event::Column::Id.is_in(event_ids))
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(messages
        .into_iter()
        .filter_map(|message| {
            let event = events.iter().find(|event| event.id == message.event_id)?;
            Some(MessageWithEvent {
                event: event.clone(),
                message,
            })
        })
        .collect())
}

/// Lists every attempt of the messages `message_ids`, oldest first.
pub async fn deliveries(
    platform: &Platform,
    ctx: &RequestContext,
    message_ids: &[Uuid],
) -> ServiceResult<Vec<webhook_delivery::Model>> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let attempts = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::TenantId.eq(ctx.tenant()))
        .filter(webhook_delivery::Column::MessageId.is_in(message_ids.iter().copied()))
        .order_by_asc(webhook_delivery::Column::AttemptedAt)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(attempts)
}

/// Delivers a message again, failed or delivered, with the same `webhook-id` and a fresh
/// retry schedule. A message still on its way is left as it is.
pub async fn redeliver(
    platform: &Platform,
    ctx: &RequestContext,
    message_id: Uuid,
) -> ServiceResult<MessageWithEvent> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let message = webhook_message::Entity::find_by_id(message_id)
        .filter(webhook_message::Column::TenantId.eq(ctx.tenant()))
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("webhook message"))?;
    let event = webhook_event::Entity::find_by_id(message.event_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("webhook event"))?;
    if message.status == WebhookMessageStatus::Pending {
        txn.commit().await?;
        return Ok(MessageWithEvent { message, event });
    }
    let now = Utc::now();
    let attempts = message.attempts;
    let mut active: webhook_message::ActiveModel = message.into();
    active.retry_base = Set(attempts);
    active.status = Set(WebhookMessageStatus::Pending);
    active.next_attempt_at = Set(Some(now));
    active.enqueued_at = Set(None);
    active.delivered_at = Set(None);
    active.updated_at = Set(now);
    let message = active.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        Action::WebhookRedeliver,
        Target::new(TargetType::Webhook, message.webhook_id),
        json!({ "messageId": message.id, "eventId": message.event_id }),
    )
    .await?;
    txn.commit().await?;
    Outbox(vec![job_of(&message)]).dispatch(platform).await;
    Ok(MessageWithEvent { message, event })
}

async fn find<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<webhook::Model> {
    webhook::Entity::find_by_id(id)
        .filter(webhook::Column::TenantId.eq(ctx.tenant()))
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::not_found("webhook"))
}

/// Jobs to enqueue once the transaction that recorded their events has committed.
#[must_use = "dispatch the outbox after the commit, or the sweep delivers it late"]
#[derive(Debug, Default)]
pub struct Outbox(Vec<DeliverWebhook>);

impl Outbox {
    /// Adds the jobs of `other`.
    pub fn extend(&mut self, other: Outbox) {
        self.0.extend(other.0);
    }

    /// Enqueues the jobs, marking each message as enqueued. A job that does not reach
    /// Redis is logged and left to the sweep.
    pub async fn dispatch(self, platform: &Platform) {
        for job in self.0 {
            let message_id = job.message_id;
            let tenant_id = job.tenant_id;
            if let Err(error) = enqueue(platform, job, None).await {
                warn!(%error, webhook_message.id = %message_id, tenant.id = %tenant_id,
                      "enqueueing a webhook delivery failed, the sweep will enqueue it");
            }
        }
    }
}

/// Records that `event_type` happened in `tenant_id`, with `data`, in the transaction of
/// `db`: the event, and a pending message for each enabled endpoint subscribed to it.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    event_type: EventType,
    data: impl Serialize,
) -> ServiceResult<Outbox> {
    let name = event_type.as_str();
    let subscribed: Vec<webhook::Model> = webhook::Entity::find()
        .filter(webhook::Column::TenantId.eq(tenant_id))
        .filter(webhook::Column::Enabled.eq(true))
        .filter(Expr::cust_with_values(
            "event_types @> jsonb_build_array($1::text)",
            [name],
        ))
        .all(db)
        .await?;
    if subscribed.is_empty() {
        return Ok(Outbox::default());
    }
    let data = serde_json::to_value(data)
        .map_err(|error| ServiceError::internal(format!("encoding a webhook event: {error}")))?;
    let event = insert_event(db, tenant_id, event_type, data).await?;
    let mut jobs = Vec::with_capacity(subscribed.len());
    for endpoint in &subscribed {
        let message = insert_message(db, endpoint, &event).await?;
        jobs.push(job_of(&message));
    }
    Ok(Outbox(jobs))
}

/// Records an event that belongs to no tenant, such as a provider's health, for every
/// tenant with a subscribed endpoint. `db` must be a cross-tenant transaction.
pub async fn record_for_all<C: ConnectionTrait>(
    db: &C,
    event_type: EventType,
    data: impl Serialize,
) -> ServiceResult<Outbox> {
    let data = serde_json::to_value(data)
        .map_err(|error| ServiceError::internal(format!("encoding a webhook event: {error}")))?;
    let tenants: Vec<Uuid> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::TenantId)
        .distinct()
        .filter(webhook::Column::Enabled.eq(true))
        .filter(Expr::cust_with_values(
            "event_types @> jsonb_build_array($1::text)",
            [event_type.as_str()],
        ))
        .into_tuple()
        .all(db)
        .await?;
    let mut outbox = Outbox::default();
    for tenant_id in tenants {
        outbox.extend(record(db, tenant_id, event_type, &data).await?);
    }
    Ok(outbox)
}

/// A monthly quota's threshold reached in a billing period.
pub struct QuotaThreshold {
    /// `tokens_per_month` or `spend_per_month_micros`.
    pub quota: &'static str,
    /// 80 for the warning, 100 for the quota reached.
    pub percent: i64,
    pub limit: i64,
    pub used: i64,
    pub period_start: DateTime<Utc>,
}

/// Records the event of a quota threshold, once per quota, limit and billing period: the
/// usage count and a refused reservation can both reach it.
pub async fn record_quota_threshold<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    threshold: QuotaThreshold,
) -> ServiceResult<Outbox> {
    let event_type = if threshold.percent >= 100 {
        EventType::QuotaReached
    } else {
        EventType::QuotaWarning
    };
    let data = json!({
        "quota": threshold.quota,
        "percent": threshold.percent,
        "limit": threshold.limit,
        "used": threshold.used,
        "periodStart": threshold.period_start,
    });
    let recorded = webhook_event::Entity::find()
        .filter(webhook_event::Column::TenantId.eq(tenant_id))
        .filter(webhook_event::Column::EventType.eq(event_type.as_str()))
        .filter(Expr::cust_with_values(
            "payload -> 'data' @> $1",
            [json!({
                "quota": threshold.quota,
                "limit": threshold.limit,
                "periodStart": data["periodStart"],
            })],
        ))
        .count(db)
        .await?;
    if recorded > 0 {
        return Ok(Outbox::default());
    }
    record(db, tenant_id, event_type, data).await
}

async fn insert_event<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    event_type: EventType,
    data: Value,
) -> ServiceResult<webhook_event::Model> {
    let now = Utc::now();
    let payload = json!({
        "type": event_type.as_str(),
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    Ok(webhook_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        event_type: Set(event_type.as_str().to_owned()),
        payload: Set(payload),
        created_at: Set(now),
    }
    .insert(db)
    .await?)
}

async fn insert_message<C: ConnectionTrait>(
    db: &C,
    endpoint: &webhook::Model,
    event: &webhook_event::Model,
) -> ServiceResult<webhook_message::Model> {
    let now = Utc::now();
    Ok(webhook_message::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(endpoint.tenant_id),
        webhook_id: Set(endpoint.id),
        event_id: Set(event.id),
        status: Set(WebhookMessageStatus::Pending),
        attempts: Set(0),
        retry_base: Set(0),
        next_attempt_at: Set(Some(now)),
        enqueued_at: Set(None),
        delivered_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

fn job_of(message: &webhook_message::Model) -> DeliverWebhook {
    DeliverWebhook {
        tenant_id: message.tenant_id,
        message_id: message.id,
        attempt: message.attempts + 1,
    }
}

/// Puts the job on the queue, to run at `run_at` when given, and marks its message as
/// enqueued.
async fn enqueue(
    platform: &Platform,
    job: DeliverWebhook,
    run_at: Option<DateTime<Utc>>,
) -> ServiceResult<()> {
    let tenant_id = job.tenant_id;
    let message_id = job.message_id;
    platform
        .jobs
        .deliver_webhook(job, run_at)
        .await
        .map_err(ServiceError::internal)?;
    let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
    webhook_message::Entity::update_many()
        .col_expr(webhook_message::Column::EnqueuedAt, Expr::value(Utc::now()))
        .filter(webhook_message::Column::Id.eq(message_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Enqueues the pending messages whose job never reached Redis, and those whose job
/// should have run a while ago but left the message pending, as after a lost job.
/// Returns the number enqueued.
pub async fn enqueue_due(platform: &Platform) -> ServiceResult<u64> {
    let now = Utc::now();
    let lost_after = chrono::Duration::from_std(platform.settings.webhooks.job_grace)
        .unwrap_or_else(|_| chrono::Duration::minutes(5));
    let txn = platform.cross_tenant_tx().await?;
    let due = webhook_message::Entity::find()
        .filter(webhook_message::Column::Status.eq(WebhookMessageStatus::Pending))
        .filter(webhook_message::Column::NextAttemptAt.lte(now))
        .filter(
            sea_orm::Condition::any()
                .add(webhook_message::Column::EnqueuedAt.is_null())
                .add(webhook_message::Column::NextAttemptAt.lt(now - lost_after)),
        )
        .order_by_asc(webhook_message::Column::NextAttemptAt)
        .limit(SWEEP_BATCH)
        .all(&txn)
        .await?;
    txn.commit().await?;
    let mut enqueued = 0;
    for message in &due {
        match enqueue(platform, job_of(message), None).await {
            Ok(()) => enqueued += 1,
            Err(error) => {
                warn!(%error, webhook_message.id = %message.id, "enqueueing a due webhook delivery failed");
                break;
            }
        }
    }
    if enqueued > 0 {
        info!(
            messages = enqueued,
            "enqueued webhook deliveries that had no job"
        );
    }
    Ok(enqueued)
}
