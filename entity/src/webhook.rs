//! Entity for `webhooks`: a tenant's endpoint that receives signed event deliveries.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// Event types the endpoint receives, as a JSON array of strings.
    pub event_types: Json,
    /// The signing secret (`whsec_…`), as a Fernet token.
    #[sea_orm(column_type = "Text")]
    pub secret_encrypted: String,
    /// The secret before the last rotation, still used to sign until
    /// `previous_secret_expires_at`, as a Fernet token.
    #[sea_orm(column_type = "Text", nullable)]
    pub previous_secret_encrypted: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub enabled: bool,
    /// Why the platform disabled the endpoint, such as a 410 answer.
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    /// Messages that exhausted their attempts since the last successful delivery.
    pub consecutive_failures: i32,
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
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
