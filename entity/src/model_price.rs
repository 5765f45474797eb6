//! Entity for `model_prices`: a tenant's own price for one model, in micro-dollars per
//! million tokens, used instead of the platform's price table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "model_prices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Stable provider name, such as `openai`.
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    /// Model name as the provider spells it; unique per tenant and provider.
    #[sea_orm(column_type = "Text")]
    pub model: String,
    pub input_per_million: i64,
    pub output_per_million: i64,
    /// Price of input tokens read from the prompt cache, or `None` to bill them as input.
    pub cached_input_per_million: Option<i64>,
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
