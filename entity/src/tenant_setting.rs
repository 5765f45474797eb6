//! Entity for `tenant_settings`: a tenant's defaults and restrictions for chat, and how long
//! its messages are kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub tenant_id: Uuid,
    /// Provider of conversations created without an agent or provider.
    #[sea_orm(column_type = "Text", nullable)]
    pub default_provider: Option<String>,
    /// Model of conversations created without an agent or model.
    #[sea_orm(column_type = "Text", nullable)]
    pub default_model: Option<String>,
    /// JSON array of the provider names members may use, or `None` for all.
    pub allowed_providers: Option<Json>,
    /// JSON array of the model names members may use, or `None` for all.
    pub allowed_models: Option<Json>,
    /// Days a message is kept after it was written, or `None` to keep messages forever.
    pub message_retention_days: Option<i32>,
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
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
