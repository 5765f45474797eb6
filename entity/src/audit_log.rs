//! Entity for `audit_logs`: who changed what in a tenant, from which request, and when.
//!
//! The actor ids are plain columns without foreign keys, so the rows outlive the users and
//! API keys they name.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Kind of actor behind an audit row.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    /// A signed-in user, with `actor_user_id` set.
    #[sea_orm(string_value = "user")]
    User,
    /// An API key acting for its creator, with `actor_user_id` and `actor_api_key_id` set.
    #[sea_orm(string_value = "api_key")]
    ApiKey,
    /// The platform itself, such as a background job, with both actor ids `None`.
    #[sea_orm(string_value = "system")]
    System,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub actor_type: ActorType,
    pub actor_user_id: Option<Uuid>,
    pub actor_api_key_id: Option<Uuid>,
    /// Dotted name of the operation, such as `agent.create` or `member.role_change`.
    #[sea_orm(column_type = "Text")]
    pub action: String,
    /// Kind of object the operation changed, such as `agent` or `member`.
    #[sea_orm(column_type = "Text")]
    pub target_type: String,
    pub target_id: Uuid,
    /// The request's id, or `None` when the actor was not signed in, as when registering.
    #[sea_orm(column_type = "Text", nullable)]
    pub request_id: Option<String>,
    /// The client's IP address in text form, when the request carried one.
    #[sea_orm(column_type = "Text", nullable)]
    pub ip_address: Option<String>,
    /// JSON object describing the change: names, roles, ids and changed fields, never
    /// secrets or message content.
    pub summary: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
