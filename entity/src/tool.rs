//! Entity for `tools`: HTTP endpoints that a tenant's agents may call, described to the
//! model by a name, a description and a JSON Schema of their arguments.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tools")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The function name sent to the model, unique within the tenant.
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// JSON Schema that the call's arguments must match.
    pub parameters: Json,
    #[sea_orm(column_type = "Text")]
    pub method: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// Headers sent with every call, as a JSON object of strings. Not secret.
    pub headers: Json,
    /// Headers whose values are secret, as a Fernet token of a JSON object of strings.
    #[sea_orm(column_type = "Text", nullable)]
    pub secret_headers: Option<String>,
    /// Names of the secret headers, as a JSON array, so they can be listed without
    /// decrypting the values.
    pub secret_header_names: Json,
    pub timeout_ms: i32,
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
