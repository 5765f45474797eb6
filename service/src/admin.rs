//! Platform administration: listing tenants, changing their plans and limits, and
//! suspending or reactivating them. Platform administrators are the users whose email
//! addresses `PLATFORM_ADMINS` lists; they need no role in the tenants they manage.
//!
//! A suspended tenant keeps all of its data, but its members cannot sign in, refresh or
//! use an access token or API key. Access tokens are checked against a Redis marker that
//! [`publish_suspensions`] restores after Redis loses it.

use chrono::Utc;
use entity::{PlanKind, TenantStatus, tenant, tenant_plan, user};
use redis::AsyncCommands;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use crate::{
    Platform, RequestContext, TenantId, api_keys,
    audit::{self, Action, Target, TargetType},
    error::{ServiceError, ServiceResult},
    pagination::{Order, Page, PageRequest, fetch_page},
    plans::{self, PlanLimits},
};

/// A tenant with its plan, as platform administrators see it.
pub struct TenantSummary {
    pub tenant: tenant::Model,
    pub plan: tenant_plan::Model,
    pub limits: PlanLimits,
    pub member_count: u64,
}

/// A plan change: the plan and the tenant's own limits, each `None` to use the plan's
/// default.
pub struct SetTenantPlan {
    pub plan: PlanKind,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub api_key_requests_per_minute: Option<i64>,
    pub api_key_tokens_per_minute: Option<i64>,
    pub tokens_per_month: Option<i64>,
    pub spend_per_month_micros: Option<i64>,
    pub max_agents: Option<i64>,
    pub max_members: Option<i64>,
    pub api_keys: Option<bool>,
    pub webhooks: Option<bool>,
}

/// Fails with FORBIDDEN unless the caller is a platform administrator.
pub async fn require_platform_admin(
    platform: &Platform,
    ctx: &RequestContext,
) -> ServiceResult<()> {
    ctx.require_session()?;
    let email = user::Entity::find_by_id(ctx.user_id)
        .one(&platform.db)
        .await?
        .map(|user| user.email)
        .unwrap_or_default();
    if is_listed(platform, &email) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "this operation needs a platform administrator, an account listed in \
             PLATFORM_ADMINS"
                .into(),
        ))
    }
}

/// Fails with BAD_USER_INPUT on `field` when a new account would take an address that
/// `PLATFORM_ADMINS` lists. The email is not verified, so the first to register a listed
/// address would become a platform administrator; operators create the account before
/// listing it.
pub(crate) fn check_unlisted(field: &str, platform: &Platform, email: &str) -> ServiceResult<()> {
    if is_listed(platform, email) {
        return Err(ServiceError::invalid(
            field,
            "is reserved for a platform administrator; create the account before listing the \
             address in PLATFORM_ADMINS",
        ));
    }
    Ok(())
}

fn is_listed(platform: &Platform, email: &str) -> bool {
    platform
        .settings
        .platform_admins
        .iter()
        .any(|admin| admin.eq_ignore_ascii_case(email))
}

/// Lists every tenant, oldest first. Needs a platform administrator.
pub async fn tenants(
    platform: &Platform,
    ctx: &RequestContext,
    page: &PageRequest,
) -> ServiceResult<Page<TenantSummary>> {
    require_platform_admin(platform, ctx).await?;
    let page = fetch_page(
        platform,
        &platform.db,
        tenant::Entity::find(),
        tenant::Column::Id,
        Order::OldestFirst,
        page,
        |tenant| tenant.id,
    )
    .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for (cursor, tenant) in page.items {
        let txn = platform.tenant_tx(TenantId::new(tenant.id)).await?;
        items.push((cursor, summary(&txn, tenant).await?));
        txn.commit().await?;
    }
    Ok(Page {
        items,
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
    })
}

/// Changes a tenant's plan and its own limits. Needs a platform administrator.
pub async fn set_plan(
    platform: &Platform,
    ctx: &RequestContext,
    tenant_id: Uuid,
    input: SetTenantPlan,
) -> ServiceResult<TenantSummary> {
    require_platform_admin(platform, ctx).await?;
    let limits = [
        ("requestsPerMinute", input.requests_per_minute),
        ("tokensPerMinute", input.tokens_per_minute),
        ("apiKeyRequestsPerMinute", input.api_key_requests_per_minute),
        ("apiKeyTokensPerMinute", input.api_key_tokens_per_minute),
        ("tokensPerMonth", input.tokens_per_month),
        ("spendPerMonthMicros", input.spend_per_month_micros),
        ("maxAgents", input.max_agents),
        ("maxMembers", input.max_members),
    ];
    if let Some((field, value)) = limits
        .iter()
        .find(|(_, value)| value.is_some_and(|value| value < 0))
    {
        return Err(ServiceError::invalid(
            *field,
            format!("must be 0 or more (got {})", value.unwrap_or_default()),
        ));
    }
    let tenant = find_tenant(platform, tenant_id).await?;
    // The changes are written in the tenant's rows, as its own admins' would be, so that
    // its admins see who changed their plan.
    let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
    let row = plan_row(&txn, tenant_id).await?;

    let mut features = serde_json::Map::new();
    if let Some(on) = input.api_keys {
        features.insert("apiKeys".into(), on.into());
    }
    if let Some(on) = input.webhooks {
        features.insert("webhooks".into(), on.into());
    }
    let mut active: tenant_plan::ActiveModel = row.into();
    active.plan = Set(input.plan);
    active.requests_per_minute = Set(input.requests_per_minute);
    active.tokens_per_minute = Set(input.tokens_per_minute);
    active.api_key_requests_per_minute = Set(input.api_key_requests_per_minute);
    active.api_key_tokens_per_minute = Set(input.api_key_tokens_per_minute);
    active.monthly_token_limit = Set(input.tokens_per_month);
    active.monthly_spend_limit_micros = Set(input.spend_per_month_micros);
    active.max_agents = Set(input.max_agents);
    active.max_members = Set(input.max_members);
    active.features = Set((!features.is_empty()).then(|| features.into()));
    active.updated_at = Set(Utc::now());
    let saved = active.update(&txn).await?;
    let change = json!({
        "plan": plans::plan_name(saved.plan),
        "requestsPerMinute": saved.requests_per_minute,
        "tokensPerMinute": saved.tokens_per_minute,
        "apiKeyRequestsPerMinute": saved.api_key_requests_per_minute,
        "apiKeyTokensPerMinute": saved.api_key_tokens_per_minute,
        "tokensPerMonth": saved.monthly_token_limit,
        "spendPerMonthMicros": saved.monthly_spend_limit_micros,
        "maxAgents": saved.max_agents,
        "maxMembers": saved.max_members,
        "features": saved.features,
    });
    audit::record_as_user(
        &txn,
        tenant_id,
        ctx.user_id,
        &ctx.origin(),
        Action::TenantPlanChange,
        Target::new(TargetType::Tenant, tenant_id),
        change,
    )
    .await?;
    let summary = summary(&txn, tenant).await?;
    txn.commit().await?;

    info!(
        tenant.id = %tenant_id,
        user.id = %ctx.user_id,
        plan = plans::plan_name(input.plan),
        "tenant plan changed"
    );
    Ok(summary)
}

/// Suspends or reactivates a tenant. Suspension ends every request of its members at once
/// and keeps its data. Needs a platform administrator.
pub async fn set_status(
    platform: &Platform,
    ctx: &RequestContext,
    tenant_id: Uuid,
    status: TenantStatus,
) -> ServiceResult<TenantSummary> {
    require_platform_admin(platform, ctx).await?;
    let tenant = find_tenant(platform, tenant_id).await?;
    let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
    let mut active: tenant::ActiveModel = tenant.into();
    active.status = Set(status);
    active.updated_at = Set(Utc::now());
    let tenant = active.update(&txn).await?;
    let action = match status {
        TenantStatus::Suspended => Action::TenantSuspend,
        TenantStatus::Active => Action::TenantReactivate,
    };
    audit::record_as_user(
        &txn,
        tenant_id,
        ctx.user_id,
        &ctx.origin(),
        action,
        Target::new(TargetType::Tenant, tenant_id),
        json!({ "name": tenant.name }),
    )
    .await?;
    let summary = summary(&txn, tenant).await?;
    txn.commit().await?;
    publish_status(platform, tenant_id, status).await?;
    api_keys::forget_tenant_keys(platform, tenant_id).await?;

    info!(tenant.id = %tenant_id, user.id = %ctx.user_id, status = ?status, "tenant status changed");
    Ok(summary)
}

/// Writes the suspension marker of every suspended tenant to Redis, so that a Redis that
/// lost its data enforces suspensions again. Returns the number of suspended tenants.
pub async fn publish_suspensions(platform: &Platform) -> ServiceResult<usize> {
    let suspended = tenant::Entity::find()
        .filter(tenant::Column::Status.eq(TenantStatus::Suspended))
        .all(&platform.db)
        .await?;
    for tenant in &suspended {
        publish_status(platform, tenant.id, TenantStatus::Suspended).await?;
    }
    Ok(suspended.len())
}

/// Returns the Redis key whose presence marks a tenant as suspended.
pub(crate) fn suspended_key(platform: &Platform, tenant_id: Uuid) -> String {
    platform
        .redis
        .key(&["tenant-suspended", &tenant_id.to_string()])
}

/// Fails with FORBIDDEN when the tenant is suspended, for sign-ins that read the tenant row.
pub(crate) fn check_active(tenant: &tenant::Model) -> ServiceResult<()> {
    match tenant.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Suspended => Err(ServiceError::Forbidden(SUSPENDED.into())),
    }
}

/// The message of every request refused because its tenant is suspended.
pub(crate) const SUSPENDED: &str =
    "this tenant is suspended; its data is kept, and a platform administrator can reactivate it";

async fn publish_status(
    platform: &Platform,
    tenant_id: Uuid,
    status: TenantStatus,
) -> ServiceResult<()> {
    let key = suspended_key(platform, tenant_id);
    let mut redis = platform.redis.shared().await?;
    match status {
        TenantStatus::Suspended => {
            let () = redis.set(key, 1).await?;
        }
        TenantStatus::Active => {
            let _: i64 = redis.del(key).await?;
        }
    }
    Ok(())
}

async fn find_tenant(platform: &Platform, tenant_id: Uuid) -> ServiceResult<tenant::Model> {
    tenant::Entity::find_by_id(tenant_id)
        .one(&platform.db)
        .await?
        .ok_or_else(|| ServiceError::not_found("tenant"))
}

async fn plan_row<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> ServiceResult<tenant_plan::Model> {
    tenant_plan::Entity::find()
        .filter(tenant_plan::Column::TenantId.eq(tenant_id))
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::internal("tenant has no plan"))
}

/// `db` is a transaction of the tenant's.
async fn summary<C: ConnectionTrait>(
    db: &C,
    tenant: tenant::Model,
) -> ServiceResult<TenantSummary> {
    let plan = plan_row(db, tenant.id).await?;
    let member_count = entity::membership::Entity::find()
        .filter(entity::membership::Column::TenantId.eq(tenant.id))
        .count(db)
        .await?;
    Ok(TenantSummary {
        limits: plans::effective(&plan),
        tenant,
        plan,
        member_count,
    })
}
