//! Entity for `provider_credentials`: a tenant's own API key (Fernet-encrypted) and base URL
//! for one provider.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Stable provider name, such as `openai`; unique per tenant.
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    /// Fernet token of the API key, bound to `tenant_id`.
    #[sea_orm(column_type = "Text")]
    pub encrypted_key: String,
    /// The last characters of the key, shown so that people can tell keys apart.
    #[sea_orm(column_type = "Text")]
    pub key_hint: String,
    /// Endpoint chosen by the tenant, or `None` for the platform's URL of the provider.
    #[sea_orm(column_type = "Text", nullable)]
    pub base_url: Option<String>,
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
