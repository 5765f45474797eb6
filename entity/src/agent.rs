//! Entity for `agents`: AI assistants that a tenant defines (instructions, provider and model).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// System prompt sent with every conversation that uses the agent.
    #[sea_orm(column_type = "Text")]
    pub instructions: String,
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    #[sea_orm(column_type = "Text")]
    pub model: String,
    /// Sampling temperature, or `None` for the provider's default.
    pub temperature: Option<f64>,
    /// Maximum output tokens per reply, or `None` for the provider's default.
    pub max_tokens: Option<i32>,
    /// Provider called when the primary one fails to open a stream. It is set together
    /// with `fallback_model`.
    #[sea_orm(column_type = "Text", nullable)]
    pub fallback_provider: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub fallback_model: Option<String>,
    /// Names of the tools the agent may call, as a JSON array of strings: built-in tool
    /// names and names of the tenant's tools.
    pub tools: Json,
    /// Model calls a run may make before it fails.
    pub max_steps: i32,
    /// Wall-clock time a run may take from its first start.
    pub run_timeout_seconds: i32,
    /// Newest messages a reply sends, counting the new one, or `None` for the platform's
    /// setting.
    pub context_messages: Option<i32>,
    /// Tokens the model's context holds, or `None` for the platform's setting.
    pub context_window_tokens: Option<i32>,
    /// Seconds a completed reply stays in the response cache, or `None` when the agent's
    /// replies are cached only on request.
    pub response_cache_ttl_seconds: Option<i32>,
    /// Author of the agent, set to `None` when that user is deleted.
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CreatedBy",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    Creator,
    #[sea_orm(has_many = "super::conversation::Entity")]
    Conversations,
    #[sea_orm(has_many = "super::usage_record::Entity")]
    UsageRecords,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Creator.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversations.def()
    }
}

impl Related<super::usage_record::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UsageRecords.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
