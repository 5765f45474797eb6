//! Plans and platform administration: the tenant's own plan, and for platform
//! administrators every tenant's plan, limits and status.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{PlanKind, TenantStatus};
use service::{
    admin::{self, SetTenantPlan, TenantSummary},
    plans::{self, PlanLimits},
};

use super::{
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::GqlResult,
    scalars::BigInt,
};

/// A billing plan.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
    /// Limits set for one tenant; without its own limits it has none.
    Custom,
}

impl From<PlanKind> for Plan {
    fn from(plan: PlanKind) -> Self {
        match plan {
            PlanKind::Free => Plan::Free,
            PlanKind::Pro => Plan::Pro,
            PlanKind::Enterprise => Plan::Enterprise,
            PlanKind::Custom => Plan::Custom,
        }
    }
}

impl From<Plan> for PlanKind {
    fn from(plan: Plan) -> Self {
        match plan {
            Plan::Free => PlanKind::Free,
            Plan::Pro => PlanKind::Pro,
            Plan::Enterprise => PlanKind::Enterprise,
            Plan::Custom => PlanKind::Custom,
        }
    }
}

/// Whether a tenant may be used.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TenantState {
    Active,
    /// No member can sign in or make requests; all data is kept.
    Suspended,
}

/// The limits that apply to a tenant; null means no limit.
#[derive(SimpleObject)]
pub struct Limits {
    /// Chat requests per minute: replies and each model call of an agent's tool loop.
    pub requests_per_minute: Option<BigInt>,
    pub tokens_per_minute: Option<BigInt>,
    /// Chat requests per minute of each API key; a key may set a lower limit of its own.
    pub api_key_requests_per_minute: Option<BigInt>,
    /// Tokens per minute of each API key; a key may set a lower limit of its own.
    pub api_key_tokens_per_minute: Option<BigInt>,
    pub tokens_per_month: Option<BigInt>,
    /// Micro-dollars per billing period.
    pub spend_per_month_micros: Option<BigInt>,
    pub max_agents: Option<BigInt>,
    pub max_members: Option<BigInt>,
    pub api_keys: bool,
    pub webhooks: bool,
}

impl From<PlanLimits> for Limits {
    fn from(limits: PlanLimits) -> Self {
        Self {
            requests_per_minute: limits.requests_per_minute.map(BigInt),
            tokens_per_minute: limits.tokens_per_minute.map(BigInt),
            api_key_requests_per_minute: limits.api_key_requests_per_minute.map(BigInt),
            api_key_tokens_per_minute: limits.api_key_tokens_per_minute.map(BigInt),
            tokens_per_month: limits.tokens_per_month.map(BigInt),
            spend_per_month_micros: limits.spend_per_month_micros.map(BigInt),
            max_agents: limits.max_agents.map(BigInt),
            max_members: limits.max_members.map(BigInt),
            api_keys: limits.features.api_keys,
            webhooks: limits.features.webhooks,
        }
    }
}

/// The caller's tenant plan and the limits that apply.
#[derive(SimpleObject)]
pub struct TenantPlanInfo {
    pub plan: Plan,
    pub limits: Limits,
}

/// A tenant as platform administrators see it.
#[derive(SimpleObject)]
pub struct ManagedTenant {
    pub id: ID,
    pub name: String,
    pub status: TenantState,
    pub plan: Plan,
    pub limits: Limits,
    pub member_count: i32,
    pub created_at: DateTime<Utc>,
}

impl From<TenantSummary> for ManagedTenant {
    fn from(summary: TenantSummary) -> Self {
        Self {
            id: summary.tenant.id.into(),
            name: summary.tenant.name,
            status: match summary.tenant.status {
                TenantStatus::Active => TenantState::Active,
                TenantStatus::Suspended => TenantState::Suspended,
            },
            plan: summary.plan.plan.into(),
            limits: summary.limits.into(),
            member_count: i32::try_from(summary.member_count).unwrap_or(i32::MAX),
            created_at: summary.tenant.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct SetTenantPlanInput {
    pub tenant_id: ID,
    pub plan: Plan,
    /// The tenant's own limits; each one left null takes the plan's default.
    pub requests_per_minute: Option<BigInt>,
    pub tokens_per_minute: Option<BigInt>,
    pub api_key_requests_per_minute: Option<BigInt>,
    pub api_key_tokens_per_minute: Option<BigInt>,
    pub tokens_per_month: Option<BigInt>,
    pub spend_per_month_micros: Option<BigInt>,
    pub max_agents: Option<BigInt>,
    pub max_members: Option<BigInt>,
    /// Turns API keys on or off over the plan's default.
    pub api_keys: Option<bool>,
    /// Turns webhooks on or off over the plan's default.
    pub webhooks: Option<bool>,
}

#[derive(InputObject)]
pub struct TenantIdInput {
    pub tenant_id: ID,
}

#[derive(SimpleObject)]
pub struct ManagedTenantPayload {
    pub tenant: ManagedTenant,
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// The caller's tenant plan and the limits that apply to it.
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<TenantPlanInfo> {
        let caller = caller(ctx)?;
        let tenant = plans::for_caller(platform(ctx), caller).await.gql()?;
        Ok(TenantPlanInfo {
            plan: tenant.plan.into(),
            limits: tenant.limits.into(),
        })
    }

    /// Every tenant of the platform, oldest first. Needs a platform administrator.
    async fn tenants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<ManagedTenant>> {
        let request = page_request(first, after);
        let page = admin::tenants(platform(ctx), caller(ctx)?, &request)
            .await
            .gql()?;
        Ok(to_connection(page, ManagedTenant::from))
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Changes a tenant's plan and its own limits. Needs a platform administrator.
    async fn set_tenant_plan(
        &self,
        ctx: &Context<'_>,
        input: SetTenantPlanInput,
    ) -> async_graphql::Result<ManagedTenantPayload> {
        let tenant_id = parse_id("tenantId", &input.tenant_id)?;
        let change = SetTenantPlan {
            plan: input.plan.into(),
            requests_per_minute: input.requests_per_minute.map(|value| value.0),
            tokens_per_minute: input.tokens_per_minute.map(|value| value.0),
            api_key_requests_per_minute: input.api_key_requests_per_minute.map(|value| value.0),
            api_key_tokens_per_minute: input.api_key_tokens_per_minute.map(|value| value.0),
            tokens_per_month: input.tokens_per_month.map(|value| value.0),
            spend_per_month_micros: input.spend_per_month_micros.map(|value| value.0),
            max_agents: input.max_agents.map(|value| value.0),
            max_members: input.max_members.map(|value| value.0),
            api_keys: input.api_keys,
            webhooks: input.webhooks,
        };
        let summary = admin::set_plan(platform(ctx), caller(ctx)?, tenant_id, change)
            .await
            .gql()?;
        Ok(ManagedTenantPayload {
            tenant: summary.into(),
        })
    }

    /// Suspends a tenant: its members' requests fail at once, and nothing is deleted.
    /// Needs a platform administrator.
    async fn suspend_tenant(
        &self,
        ctx: &Context<'_>,
        input: TenantIdInput,
    ) -> async_graphql::Result<ManagedTenantPayload> {
        set_status(ctx, &input.tenant_id, TenantStatus::Suspended).await
    }

    /// Reactivates a suspended tenant. Needs a platform administrator.
    async fn reactivate_tenant(
        &self,
        ctx: &Context<'_>,
        input: TenantIdInput,
    ) -> async_graphql::Result<ManagedTenantPayload> {
        set_status(ctx, &input.tenant_id, TenantStatus::Active).await
    }
}

async fn set_status(
    ctx: &Context<'_>,
    tenant_id: &ID,
    status: TenantStatus,
) -> async_graphql::Result<ManagedTenantPayload> {
    let tenant_id = parse_id("tenantId", tenant_id)?;
    let summary = admin::set_status(platform(ctx), caller(ctx)?, tenant_id, status)
        .await
        .gql()?;
    Ok(ManagedTenantPayload {
        tenant: summary.into(),
    })
}
