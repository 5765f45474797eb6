//! Entity for `api_keys`: a credential for programs that acts for the member who created it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The member the key acts for; the key never has more than their current role.
    pub created_by: Uuid,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    /// The key's first characters, shown again so that people can tell keys apart.
    #[sea_orm(column_type = "Text")]
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    #[sea_orm(column_type = "Text", unique)]
    pub key_hash: String,
    /// JSON array of scope names, such as `["read", "write"]`.
    pub scopes: Json,
    pub expires_at: Option<DateTimeUtc>,
    /// The key's own limit of chat requests per minute, or `None` for the plan's limit for
    /// each key.
    pub requests_per_minute: Option<i64>,
    /// The key's own limit of tokens per minute, or `None` for the plan's limit for each key.
    pub tokens_per_minute: Option<i64>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
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
