//! Entity for `usage_counters`: usage totals of one tenant for one billing period.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// Start of the billing period that the totals cover.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period_start: DateTimeUtc,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Total cost in micro-dollars.
    pub cost_micros: i64,
    /// Number of usage records added into the totals.
    pub record_count: i64,
    /// Records among them whose model had no known price, so their cost is missing.
    pub unpriced_record_count: i64,
    /// Input and output tokens of response cache hits, which `input_tokens` and
    /// `output_tokens` include and the monthly token quota leaves out.
    pub response_cache_hit_tokens: i64,
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
