//! Entity for `webhook_messages`: one event on its way to one endpoint. Every attempt of a
//! message carries the same `webhook-id`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a message stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum WebhookMessageStatus {
    /// Waiting for its next attempt at `next_attempt_at`.
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Every attempt failed, or the endpoint was disabled; it can be redelivered.
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub status: WebhookMessageStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts made before the last redelivery, from which the retry schedule starts
    /// again.
    pub retry_base: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    /// When the job of the next attempt reached the queue; `None` until it did, so that
    /// the sweep enqueues messages whose job was lost.
    pub enqueued_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
