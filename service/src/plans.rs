//! Plans: the limits and features of each tenant, from its plan's defaults and the
//! tenant's own limits stored with its plan.

use entity::{PlanKind, tenant_plan};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    Select,
};
use serde::{Deserialize, Serialize};

use crate::{
    Platform, RequestContext, TenantId,
    error::{ServiceError, ServiceResult},
};

/// Features a plan turns on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub api_keys: bool,
    pub webhooks: bool,
}

/// The limits of a tenant. `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Chat requests per minute: replies and each model call of an agent's tool loop.
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    /// Chat requests per minute of each API key; a key may set a lower limit of its own.
    pub api_key_requests_per_minute: Option<i64>,
    /// Tokens per minute of each API key; a key may set a lower limit of its own.
    pub api_key_tokens_per_minute: Option<i64>,
    pub tokens_per_month: Option<i64>,
    /// Micro-dollars per billing period.
    pub spend_per_month_micros: Option<i64>,
    pub max_agents: Option<i64>,
    pub max_members: Option<i64>,
    pub features: Features,
}

/// A tenant's plan with the limits that apply to it.
#[derive(Debug, Clone)]
pub struct TenantLimits {
    pub plan: PlanKind,
    pub limits: PlanLimits,
}

impl TenantLimits {
    /// Returns the plan's name as users see it, such as `free`.
    pub fn plan_name(&self) -> &'static str {
        plan_name(self.plan)
    }

    /// Names the setter of the limit that `pick` reads, for messages: `the free plan` for
    /// the plan's default, or `this tenant's limit on the free plan` for a limit of the
    /// tenant's own, which the plan's published defaults do not show.
    pub fn limit_source(&self, pick: impl Fn(&PlanLimits) -> Option<i64>) -> String {
        if pick(&self.limits) == pick(&defaults(self.plan)) {
            format!("the {} plan", self.plan_name())
        } else {
            format!("this tenant's limit on the {} plan", self.plan_name())
        }
    }
}

pub fn plan_name(plan: PlanKind) -> &'static str {
    match plan {
        PlanKind::Free => "free",
        PlanKind::Pro => "pro",
        PlanKind::Enterprise => "enterprise",
        PlanKind::Custom => "custom",
    }
}

/// Returns the limits a plan has when the tenant set none of its own.
///
/// NOTE: these defaults are product decisions of this repository, not published prices;
/// change them here.
pub fn defaults(plan: PlanKind) -> PlanLimits {
    match plan {
        PlanKind::Free => PlanLimits {
            requests_per_minute: Some(60),
            tokens_per_minute: Some(100_000),
            api_key_requests_per_minute: Some(30),
            api_key_tokens_per_minute: Some(50_000),
            tokens_per_month: Some(2_000_000),
            spend_per_month_micros: Some(10_000_000),
            max_agents: Some(5),
            max_members: Some(5),
            features: Features {
                api_keys: true,
                webhooks: false,
            },
        },
        PlanKind::Pro => PlanLimits {
            requests_per_minute: Some(600),
            tokens_per_minute: Some(1_000_000),
            api_key_requests_per_minute: Some(300),
            api_key_tokens_per_minute: Some(500_000),
            tokens_per_month: Some(100_000_000),
            spend_per_month_micros: Some(1_000_000_000),
            max_agents: Some(100),
            max_members: Some(50),
            features: Features {
                api_keys: true,
                webhooks: true,
            },
        },
        // Enterprise and custom plans are limited only by what the tenant's row sets.
        PlanKind::Enterprise | PlanKind::Custom => PlanLimits {
            requests_per_minute: None,
            tokens_per_minute: None,
            api_key_requests_per_minute: None,
            api_key_tokens_per_minute: None,
            tokens_per_month: None,
            spend_per_month_micros: None,
            max_agents: None,
            max_members: None,
            features: Features {
                api_keys: true,
                webhooks: true,
            },
        },
    }
}

/// Applies the tenant's own limits, stored with its plan, over the plan's defaults.
pub fn effective(row: &tenant_plan::Model) -> PlanLimits {
    let defaults = defaults(row.plan);
    let mut features = defaults.features;
    if let Some(overrides) = row.features.as_ref().and_then(|value| value.as_object()) {
        if let Some(on) = overrides.get("apiKeys").and_then(|value| value.as_bool()) {
            features.api_keys = on;
        }
        if let Some(on) = overrides.get("webhooks").and_then(|value| value.as_bool()) {
            features.webhooks = on;
        }
    }
    PlanLimits {
        requests_per_minute: row.requests_per_minute.or(defaults.requests_per_minute),
        tokens_per_minute: row.tokens_per_minute.or(defaults.tokens_per_minute),
        api_key_requests_per_minute: row
            .api_key_requests_per_minute
            .or(defaults.api_key_requests_per_minute),
        api_key_tokens_per_minute: row
            .api_key_tokens_per_minute
            .or(defaults.api_key_tokens_per_minute),
        tokens_per_month: row.monthly_token_limit.or(defaults.tokens_per_month),
        spend_per_month_micros: row
            .monthly_spend_limit_micros
            .or(defaults.spend_per_month_micros),
        max_agents: row.max_agents.or(defaults.max_agents),
        max_members: row.max_members.or(defaults.max_members),
        features,
    }
}

/// Reads the tenant's plan and returns its limits.
pub async fn limits_for<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
) -> ServiceResult<TenantLimits> {
    read(db, plan_row(tenant_id)).await
}

/// Returns the caller's tenant plan and the limits that apply to it.
pub async fn for_caller(platform: &Platform, ctx: &RequestContext) -> ServiceResult<TenantLimits> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let limits = limits_for(&txn, ctx.tenant_id).await?;
    txn.commit().await?;
    Ok(limits)
}

/// Reads the tenant's plan like [`limits_for`] and locks its row until the transaction
/// ends, so that concurrent checks of counts against the plan, such as two agents created
/// at once, run one after the other.
pub async fn lock_limits(
    txn: &DatabaseTransaction,
    tenant_id: TenantId,
) -> ServiceResult<TenantLimits> {
    read(txn, plan_row(tenant_id).lock_exclusive()).await
}

fn plan_row(tenant_id: TenantId) -> Select<tenant_plan::Entity> {
    tenant_plan::Entity::find().filter(tenant_plan::Column::TenantId.eq(tenant_id.as_uuid()))
}

async fn read<C: ConnectionTrait>(
    db: &C,
    select: Select<tenant_plan::Entity>,
) -> ServiceResult<TenantLimits> {
    let row = select
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::internal("tenant has no plan"))?;
    Ok(TenantLimits {
        plan: row.plan,
        limits: effective(&row),
    })
}

/// Fails with FORBIDDEN naming the plan when `count` has reached the limit that `pick`
/// reads.
pub fn check_count(
    tenant: &TenantLimits,
    what: &str,
    count: u64,
    pick: impl Fn(&PlanLimits) -> Option<i64>,
) -> ServiceResult<()> {
    match pick(&tenant.limits) {
        Some(limit) if count as i64 >= limit => Err(ServiceError::Forbidden(format!(
            "{} allows {limit} {what}; upgrade the plan or remove one first",
            tenant.limit_source(pick)
        ))),
        _ => Ok(()),
    }
}

/// Fails with FORBIDDEN naming the plan when `enabled` is false.
pub fn check_feature(tenant: &TenantLimits, feature: &str, enabled: bool) -> ServiceResult<()> {
    if enabled {
        return Ok(());
    }
    Err(ServiceError::Forbidden(format!(
        "{feature} are not part of the {} plan",
        tenant.plan_name()
    )))
}
