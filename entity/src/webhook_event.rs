//! Entity for `webhook_events`: something that happened in a tenant, written in the
//! transaction of the change that caused it, with the body every endpoint receives.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Such as `message.completed`.
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// The delivered body: `type`, `timestamp` and `data`.
    pub payload: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
