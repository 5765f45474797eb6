//! Entity for `subscriptions`: the billing plan of a tenant, at most one per tenant.
//!
//! Rust code calls this a tenant plan because `Subscription` is the GraphQL root type.

use sea_orm::entity::prelude::*;

use crate::enums::PlanKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub tenant_id: Uuid,
    pub plan: PlanKind,
    /// The tenant's own limit of tokens per billing period, or `None` for the plan's.
    pub monthly_token_limit: Option<i64>,
    /// The tenant's own limit of chat requests per minute, or `None` for the plan's.
    pub requests_per_minute: Option<i64>,
    /// The tenant's own limit of tokens per minute, or `None` for the plan's.
    pub tokens_per_minute: Option<i64>,
    /// The tenant's own limit of chat requests per minute for each API key, or `None` for
    /// the plan's.
    pub api_key_requests_per_minute: Option<i64>,
    /// The tenant's own limit of tokens per minute for each API key, or `None` for the
    /// plan's.
    pub api_key_tokens_per_minute: Option<i64>,
    /// The tenant's own limit of spend per billing period in micro-dollars, or `None` for
    /// the plan's.
    pub monthly_spend_limit_micros: Option<i64>,
    /// The tenant's own maximum number of agents, or `None` for the plan's.
    pub max_agents: Option<i64>,
    /// The tenant's own maximum number of members, or `None` for the plan's.
    pub max_members: Option<i64>,
    /// Feature names mapped to true or false, over the plan's defaults.
    pub features: Option<Json>,
    pub current_period_start: DateTimeUtc,
    pub current_period_end: DateTimeUtc,
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
