//! Webhooks: endpoints that receive the tenant's events, signed as the Standard Webhooks
//! specification describes, with their messages and delivery attempts. Admins only.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery, webhook_message::WebhookMessageStatus as StoredStatus};
use serde_json::Value;
use service::webhooks::{
    self, CreateWebhook, EventType, MessageWithEvent, UpdateWebhook, WithSecret,
    delivery::webhook_id,
};
use uuid::Uuid;

use super::{
    context::{caller, parse_id, platform},
    error::GqlResult,
};

/// Most messages one `messages` field returns.
const MAX_MESSAGES: u64 = 100;

/// The kind of event. The delivered body's `type` is the lower-case dotted form shown on
/// each value.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookEventType {
    /// `message.completed`: a reply stopped streaming, in any final state.
    MessageCompleted,
    /// `agent_run.succeeded`.
    AgentRunSucceeded,
    /// `agent_run.failed`.
    AgentRunFailed,
    /// `usage.quota_warning`: usage reached 80% of a monthly quota of the plan.
    UsageQuotaWarning,
    /// `usage.quota_reached`: usage reached a monthly quota of the plan.
    UsageQuotaReached,
    /// `provider.health_changed`.
    ProviderHealthChanged,
    /// `member.added`.
    MemberAdded,
    /// `member.removed`, also when a member leaves.
    MemberRemoved,
    /// `api_key.created`.
    ApiKeyCreated,
    /// `api_key.revoked`.
    ApiKeyRevoked,
}

impl From<WebhookEventType> for EventType {
    fn from(event: WebhookEventType) -> Self {
        match event {
            WebhookEventType::MessageCompleted => EventType::MessageCompleted,
            WebhookEventType::AgentRunSucceeded => EventType::AgentRunSucceeded,
            WebhookEventType::AgentRunFailed => EventType::AgentRunFailed,
            WebhookEventType::UsageQuotaWarning => EventType::QuotaWarning,
            WebhookEventType::UsageQuotaReached => EventType::QuotaReached,
            WebhookEventType::ProviderHealthChanged => EventType::ProviderHealthChanged,
            WebhookEventType::MemberAdded => EventType::MemberAdded,
            WebhookEventType::MemberRemoved => EventType::MemberRemoved,
            WebhookEventType::ApiKeyCreated => EventType::ApiKeyCreated,
            WebhookEventType::ApiKeyRevoked => EventType::ApiKeyRevoked,
        }
    }
}

impl WebhookEventType {
    const ALL: [WebhookEventType; 10] = [
        WebhookEventType::MessageCompleted,
        WebhookEventType::AgentRunSucceeded,
        WebhookEventType::AgentRunFailed,
        WebhookEventType::UsageQuotaWarning,
        WebhookEventType::UsageQuotaReached,
        WebhookEventType::ProviderHealthChanged,
        WebhookEventType::MemberAdded,
        WebhookEventType::MemberRemoved,
        WebhookEventType::ApiKeyCreated,
        WebhookEventType::ApiKeyRevoked,
    ];

    fn of(event: EventType) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| EventType::from(*candidate) == event)
    }
}

/// The delivery state of a message.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookMessageStatus {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// Every attempt failed, or the endpoint was disabled; `redeliverWebhookMessage`
    /// sends it again.
    Failed,
}

impl From<StoredStatus> for WebhookMessageStatus {
    fn from(status: StoredStatus) -> Self {
        match status {
            StoredStatus::Pending => Self::Pending,
            StoredStatus::Delivered => Self::Delivered,
            StoredStatus::Failed => Self::Failed,
        }
    }
}

impl From<WebhookMessageStatus> for StoredStatus {
    fn from(status: WebhookMessageStatus) -> Self {
        match status {
            WebhookMessageStatus::Pending => Self::Pending,
            WebhookMessageStatus::Delivered => Self::Delivered,
            WebhookMessageStatus::Failed => Self::Failed,
        }
    }
}

/// An endpoint that receives the tenant's events.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Webhook {
    pub id: ID,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEventType>,
    /// False once disabled, by an admin or by the platform after a 410 response or too many
    /// failed events in a row.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Events in a row that failed every attempt.
    pub consecutive_failures: i32,
    /// Until when the secret before the last rotation still signs deliveries, next to the
    /// current one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub webhook_id: Uuid,
}

impl From<webhook::Model> for Webhook {
    fn from(model: webhook::Model) -> Self {
        let events = webhooks::event_types_of(&model)
            .into_iter()
            .filter_map(WebhookEventType::of)
            .collect();
        let previous_secret_expires_at = model
            .previous_secret_expires_at
            .filter(|expires_at| *expires_at > Utc::now());
        Self {
            id: model.id.into(),
            url: model.url,
            description: model.description,
            events,
            enabled: model.enabled,
            disabled_reason: model.disabled_reason,
            consecutive_failures: model.consecutive_failures,
            previous_secret_expires_at,
            created_at: model.created_at,
            updated_at: model.updated_at,
            webhook_id: model.id,
        }
    }
}

#[ComplexObject]
impl Webhook {
    /// Lists the endpoint's messages, newest first, with every delivery attempt of each.
    /// `after` is the id of the last message of the previous page; the list then goes on
    /// with older messages.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        status: Option<WebhookMessageStatus>,
        #[graphql(default = 20, validator(minimum = 1, maximum = 100))] first: u64,
        after: Option<ID>,
    ) -> async_graphql::Result<Vec<WebhookMessage>> {
        let after = after.map(|id| parse_id("after", &id)).transpose()?;
        let platform = platform(ctx);
        let ctx = caller(ctx)?;
        let messages = webhooks::messages(
            platform,
            ctx,
            self.webhook_id,
            status.map(Into::into),
            after,
            first.min(MAX_MESSAGES),
        )
        .await
        .gql()?;
        let ids: Vec<Uuid> = messages.iter().map(|found| found.message.id).collect();
        let mut deliveries = webhooks::deliveries(platform, ctx, &ids).await.gql()?;
        Ok(messages
            .into_iter()
            .map(|found| {
                let (own, rest) = deliveries
                    .drain(..)
                    .partition(|attempt| attempt.message_id == found.message.id);
                deliveries = rest;
                WebhookMessage::new(found, own)
            })
            .collect())
    }
}

/// One event on its way to one endpoint. Every attempt carries the same `webhookId` in
/// the `webhook-id` header.
#[derive(SimpleObject, Clone)]
pub struct WebhookMessage {
    pub id: ID,
    /// The `webhook-id` header of every attempt: `msg_` and the event's id.
    pub webhook_message_id: String,
    pub event_id: ID,
    /// Such as `message.completed`.
    pub event_type: String,
    /// The delivered body: `type`, `timestamp` and `data`.
    pub payload: Json<Value>,
    pub status: WebhookMessageStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Every attempt, oldest first.
    pub deliveries: Vec<WebhookDelivery>,
}

impl WebhookMessage {
    fn new(found: MessageWithEvent, deliveries: Vec<webhook_delivery::Model>) -> Self {
        let MessageWithEvent { message, event } = found;
        Self {
            id: message.id.into(),
            webhook_message_id: webhook_id(event.id),
            event_id: event.id.into(),
            event_type: event.event_type,
            payload: Json(event.payload),
            status: message.status.into(),
            attempts: message.attempts,
            next_attempt_at: message.next_attempt_at,
            delivered_at: message.delivered_at,
            last_error: message.last_error,
            created_at: message.created_at,
            deliveries: deliveries.into_iter().map(WebhookDelivery::from).collect(),
        }
    }
}

/// One attempt to deliver a message.
#[derive(SimpleObject, Clone)]
pub struct WebhookDelivery {
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The HTTP status of the response, or null when none arrived.
    pub status_code: Option<i32>,
    pub succeeded: bool,
    pub duration_ms: i32,
    /// The first 1,000 characters of the answer's body.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

impl From<webhook_delivery::Model> for WebhookDelivery {
    fn from(model: webhook_delivery::Model) -> Self {
        Self {
            attempt: model.attempt,
            status_code: model.status_code,
            succeeded: model.succeeded,
            duration_ms: model.duration_ms,
            response_excerpt: model.response_excerpt,
            error: model.error,
            attempted_at: model.attempted_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// An http or https URL. Private, loopback and link-local addresses are refused unless
    /// the operator allows their network.
    pub url: String,
    /// At least one event type.
    pub events: Vec<WebhookEventType>,
    /// Up to 500 characters.
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub id: ID,
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEventType>>,
    pub description: Option<String>,
    /// True enables a disabled endpoint again and resets its failure count.
    pub enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct WebhookIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RedeliverWebhookMessageInput {
    /// A message's `id`.
    pub message_id: ID,
}

#[derive(SimpleObject)]
pub struct WebhookWithSecretPayload {
    pub webhook: Webhook,
    /// The signing secret in the `whsec_` form. It is shown only here: store it now.
    pub secret: String,
}

impl From<WithSecret> for WebhookWithSecretPayload {
    fn from(created: WithSecret) -> Self {
        Self {
            webhook: created.webhook.into(),
            secret: created.secret.expose().to_owned(),
        }
    }
}

#[derive(SimpleObject)]
pub struct WebhookPayload {
    pub webhook: Webhook,
}

#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    pub deleted_webhook_id: ID,
}

#[derive(SimpleObject)]
pub struct WebhookMessagePayload {
    pub message: WebhookMessage,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Lists the tenant's webhooks, oldest first. Needs the admin role.
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Webhook>> {
        let found = webhooks::list(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(found.into_iter().map(Webhook::from).collect())
    }

    /// Returns one webhook. Needs the admin role.
    async fn webhook(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Webhook> {
        let id = parse_id("id", &id)?;
        Ok(webhooks::get(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Adds an endpoint for the chosen events and returns its signing secret, once.
    /// Needs the admin role.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> async_graphql::Result<WebhookWithSecretPayload> {
        let input = CreateWebhook {
            url: input.url,
            event_types: input.events.into_iter().map(Into::into).collect(),
            description: input.description,
        };
        Ok(webhooks::create(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?
            .into())
    }

    /// Changes an endpoint; fields left out stay as they are. Needs the admin role.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookInput,
    ) -> async_graphql::Result<WebhookPayload> {
        let id = parse_id("id", &input.id)?;
        let update = UpdateWebhook {
            url: input.url,
            event_types: input
                .events
                .map(|events| events.into_iter().map(Into::into).collect()),
            description: input.description.map(Some),
            enabled: input.enabled,
        };
        let webhook = webhooks::update(platform(ctx), caller(ctx)?, id, update)
            .await
            .gql()?;
        Ok(WebhookPayload {
            webhook: webhook.into(),
        })
    }

    /// Deletes an endpoint with its messages and delivery history. Needs the admin role.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        input: WebhookIdInput,
    ) -> async_graphql::Result<DeleteWebhookPayload> {
        let id = parse_id("id", &input.id)?;
        let deleted = webhooks::delete(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(DeleteWebhookPayload {
            deleted_webhook_id: deleted.into(),
        })
    }

    /// Replaces the signing secret and returns the new one, once. The old secret keeps
    /// signing next to it for `WEBHOOK_ROTATION_OVERLAP_SECONDS` (a day by default).
    /// Needs the admin role.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: WebhookIdInput,
    ) -> async_graphql::Result<WebhookWithSecretPayload> {
        let id = parse_id("id", &input.id)?;
        Ok(webhooks::rotate_secret(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }

    /// Sends a `webhook.test` event to the endpoint, whatever it subscribed to, and
    /// returns its message. Needs the admin role.
    async fn test_webhook(
        &self,
        ctx: &Context<'_>,
        input: WebhookIdInput,
    ) -> async_graphql::Result<WebhookMessagePayload> {
        let id = parse_id("id", &input.id)?;
        let message = webhooks::send_test(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(WebhookMessagePayload {
            message: WebhookMessage::new(message, Vec::new()),
        })
    }

    /// Delivers a message again, failed or delivered, with the same `webhook-id` and a
    /// fresh retry schedule. Needs the admin role.
    async fn redeliver_webhook_message(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookMessageInput,
    ) -> async_graphql::Result<WebhookMessagePayload> {
        let id = parse_id("messageId", &input.message_id)?;
        let message = webhooks::redeliver(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(WebhookMessagePayload {
            message: WebhookMessage::new(message, Vec::new()),
        })
    }
}
