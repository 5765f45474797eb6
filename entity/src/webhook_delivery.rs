//! Entity for `webhook_deliveries`: one attempt to deliver a message, with what came back.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub message_id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    /// 1 for the first attempt of the message.
    pub attempt: i32,
    /// The HTTP status, or `None` when no response came.
    pub status_code: Option<i32>,
    pub succeeded: bool,
    pub duration_ms: i32,
    /// The start of the response body.
    #[sea_orm(column_type = "Text", nullable)]
    pub response_excerpt: Option<String>,
    /// Why the attempt failed: a connection error, a timeout or a status.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub attempted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
