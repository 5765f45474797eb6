//! API keys: credentials for programs that act for the member who created them, limited
//! to their scopes and never above the member's current role.
//!
//! A key is `tak_` and 43 URL-safe base64 characters, shown once. Only its SHA-256 hash is
//! stored. Authentication reads the key from a Redis cache (one GET) and falls back to the
//! database on a miss. Revoking a key, and changing or removing its creator's membership,
//! deletes the cached entries, so that the change applies to the next request.

use chrono::{DateTime, Utc};
use entity::{Role, api_key, membership};
use redis::AsyncCommands;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use crate::webhooks::{self, EventType};
use crate::{
    Platform, RequestContext, Secret, TenantId,
    audit::{self, Action, Target, TargetType},
    auth::tokens,
    context::{role_at_least, role_name, role_rank},
    error::{ServiceError, ServiceResult},
    plans,
    quota::MinuteLimits,
    validation::{self, MAX_NAME_CHARS},
};

/// The start of every key, so that secret scanners and people recognise it.
pub const KEY_PREFIX: &str = "tak_";
/// Characters of the key shown again in lists, the prefix included.
const SHOWN_CHARS: usize = 12;
/// How long an authenticated key stays cached in Redis.
const CACHE_SECONDS: u64 = 60;
/// Minimum time between two writes of a key's `last_used_at`.
const LAST_USED_RESOLUTION_SECONDS: u64 = 60;
/// Maximum lifetime of a key.
const MAX_LIFETIME_DAYS: i64 = 730;

/// A permission of a key. Each scope allows what one role may do, and a key gets the highest
/// role among its scopes, capped by its creator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyScope {
    /// Queries and subscriptions, as the viewer role.
    Read,
    /// Also the mutations of the member role, such as chatting and editing agents.
    Write,
    /// Also the mutations of the admin role, such as provider credentials and prices.
    Admin,
}

impl ApiKeyScope {
    pub fn role(self) -> Role {
        match self {
            ApiKeyScope::Read => Role::Viewer,
            ApiKeyScope::Write => Role::Member,
            ApiKeyScope::Admin => Role::Admin,
        }
    }
}

/// A stored key with its decoded scopes.
pub struct ApiKey {
    pub model: api_key::Model,
    pub scopes: Vec<ApiKeyScope>,
}

/// A new key and its secret, which is returned only here.
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: Secret,
}

/// The part of an authenticated key kept in the Redis cache.
#[derive(Debug, Serialize, Deserialize)]
struct CachedKey {
    id: Uuid,
    tenant_id: Uuid,
    user_id: Uuid,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    /// Entries cached before keys had limits of their own have none.
    #[serde(default)]
    limits: MinuteLimits,
}

/// Creates a key for the caller. The scopes may not exceed the caller's role, and the
/// key's own per-minute limits, where set, not the plan's limits for each key. Needs a
/// signed-in session.
pub async fn create(
    platform: &Platform,
    ctx: &RequestContext,
    name: &str,
    scopes: &[ApiKeyScope],
    expires_at: Option<DateTime<Utc>>,
    limits: MinuteLimits,
) -> ServiceResult<CreatedApiKey> {
    ctx.require_session()?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let tenant = plans::limits_for(&txn, ctx.tenant_id).await?;
    plans::check_feature(&tenant, "API keys", tenant.limits.features.api_keys)?;
    let name = validation::required_text("name", name, MAX_NAME_CHARS)?;
    if scopes.is_empty() {
        return Err(ServiceError::invalid(
            "scopes",
            "must name at least one scope",
        ));
    }
    if let Some(scope) = scopes
        .iter()
        .find(|scope| !role_at_least(ctx.role, scope.role()))
    {
        return Err(ServiceError::invalid(
            "scopes",
            format!(
                "{scope:?} needs the {} role, and yours is {}",
                role_name(scope.role()),
                role_name(ctx.role)
            ),
        ));
    }
    let now = Utc::now();
    if let Some(expires_at) = expires_at {
        if expires_at <= now {
            return Err(ServiceError::invalid("expiresAt", "must be in the future"));
        }
        if expires_at > now + chrono::Duration::days(MAX_LIFETIME_DAYS) {
            return Err(ServiceError::invalid(
                "expiresAt",
                format!("must be within {MAX_LIFETIME_DAYS} days"),
            ));
        }
    }

    check_limits(&tenant, limits)?;

    let mut unique_scopes = scopes.to_vec();
    unique_scopes.sort_by_key(|scope| role_rank(scope.role()));
    unique_scopes.dedup();
    let secret = Secret::new(format!("{KEY_PREFIX}{}", tokens::random_token()));
    let model = api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        created_by: Set(ctx.user_id),
        name: Set(name),
        prefix: Set(secret.expose().chars().take(SHOWN_CHARS).collect()),
        key_hash: Set(tokens::hash_token(secret.expose())),
        scopes: Set(serde_json::to_value(&unique_scopes)
            .map_err(|error| ServiceError::internal(format!("encoding scopes: {error}")))?),
        expires_at: Set(expires_at),
        requests_per_minute: Set(limits.requests_per_minute),
        tokens_per_minute: Set(limits.tokens_per_minute),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    // The key, its prefix and its hash stay out of the audit log.
    let summary = json!({
        "name": model.name,
        "scopes": unique_scopes,
        "expiresAt": model.expires_at,
        "requestsPerMinute": model.requests_per_minute,
        "tokensPerMinute": model.tokens_per_minute,
    });
    audit::record(
        &txn,
        ctx,
        Action::ApiKeyCreate,
        Target::new(TargetType::ApiKey, model.id),
        summary,
    )
    .await?;
    let created = json!({
        "apiKeyId": model.id,
        "name": model.name,
        "scopes": unique_scopes,
        "createdBy": ctx.user_id,
        "expiresAt": model.expires_at,
    });
    let outbox = webhooks::record(&txn, ctx.tenant(), EventType::ApiKeyCreated, created).await?;
    txn.commit().await?;
    outbox.dispatch(platform).await;

    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        api_key.id = %model.id,
        "API key created"
    );
    Ok(CreatedApiKey {
        key: ApiKey {
            model,
            scopes: unique_scopes,
        },
        secret,
    })
}

/// Lists the tenant's keys that are not revoked, newest first: every key for admins, the
/// caller's own keys for others.
pub async fn list(platform: &Platform, ctx: &RequestContext) -> ServiceResult<Vec<ApiKey>> {
    let mut select = api_key::Entity::find()
        .filter(api_key::Column::TenantId.eq(ctx.tenant()))
        .filter(api_key::Column::RevokedAt.is_null());
    if !role_at_least(ctx.role, Role::Admin) {
        select = select.filter(api_key::Column::CreatedBy.eq(ctx.user_id));
    }
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let keys = select.order_by_desc(api_key::Column::Id).all(&txn).await?;
    txn.commit().await?;
    keys.into_iter().map(decode).collect()
}

/// Revokes a key so that it stops working at once: the caller's own key, or any key of the
/// tenant for admins.
pub async fn revoke(
    platform: &Platform,
    ctx: &RequestContext,
    key_id: Uuid,
) -> ServiceResult<ApiKey> {
    let mut update = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_key::Column::Id.eq(key_id))
        .filter(api_key::Column::TenantId.eq(ctx.tenant()))
        .filter(api_key::Column::RevokedAt.is_null());
    if !role_at_least(ctx.role, Role::Admin) {
        update = update.filter(api_key::Column::CreatedBy.eq(ctx.user_id));
    }
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let revoked = update.exec_with_returning(&txn).await?;
    let Some(model) = revoked.into_iter().next() else {
        return Err(ServiceError::not_found("API key"));
    };
    audit::record(
        &txn,
        ctx,
        Action::ApiKeyRevoke,
        Target::new(TargetType::ApiKey, model.id),
        json!({ "name": model.name, "createdBy": model.created_by }),
    )
    .await?;
    let revoked = json!({ "apiKeyId": model.id, "name": model.name, "revokedBy": ctx.user_id });
    let outbox = webhooks::record(&txn, ctx.tenant(), EventType::ApiKeyRevoked, revoked).await?;
    txn.commit().await?;
    outbox.dispatch(platform).await;
    forget(platform, std::slice::from_ref(&model.key_hash)).await?;
    info!(tenant.id = %ctx.tenant(), api_key.id = %model.id, "API key revoked");
    decode(model)
}

/// Deletes the cached entries of every key of the tenant, after its suspension, so that the
/// next request reads the tenant's status.
pub(crate) async fn forget_tenant_keys(platform: &Platform, tenant_id: Uuid) -> ServiceResult<()> {
    let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
    let keys = api_key::Entity::find()
        .filter(api_key::Column::TenantId.eq(tenant_id))
        .all(&txn)
        .await?;
    txn.commit().await?;
    let hashes: Vec<String> = keys.into_iter().map(|key| key.key_hash).collect();
    forget(platform, &hashes).await
}

/// Deletes the cached entries of the keys `user_id` created in the tenant, after their
/// membership changed, so that the next request reads the new role.
pub(crate) async fn forget_user_keys(
    platform: &Platform,
    tenant_id: Uuid,
    user_id: Uuid,
) -> ServiceResult<()> {
    let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
    let keys = api_key::Entity::find()
        .filter(api_key::Column::TenantId.eq(tenant_id))
        .filter(api_key::Column::CreatedBy.eq(user_id))
        .all(&txn)
        .await?;
    txn.commit().await?;
    let hashes: Vec<String> = keys.into_iter().map(|key| key.key_hash).collect();
    forget(platform, &hashes).await
}

/// Turns a presented key into the request's context, or UNAUTHENTICATED.
pub async fn authenticate(
    platform: &Platform,
    presented: &str,
    request_id: String,
) -> ServiceResult<RequestContext> {
    let hash = tokens::hash_token(presented);
    let cache_key = cache_key(platform, &hash);
    let key = match cached(platform, &cache_key).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            let key = load(platform, &hash).await?;
            let json = serde_json::to_string(&key)
                .map_err(|error| ServiceError::internal(format!("caching a key: {error}")))?;
            let mut redis = platform.redis.shared().await?;
            let () = redis.set_ex(&cache_key, json, CACHE_SECONDS).await?;
            key
        }
        // While Redis is unreachable, every request reads the key from the database.
        Err(error) if crate::redis_conn::is_unreachable(&error) => load(platform, &hash).await?,
        Err(error) => return Err(error.into()),
    };
    if key
        .expires_at
        .is_some_and(|expires_at| expires_at <= Utc::now())
    {
        return Err(ServiceError::Unauthenticated("API key has expired".into()));
    }
    record_use(platform, key.tenant_id, key.id);
    Ok(RequestContext {
        tenant_id: TenantId::new(key.tenant_id),
        user_id: key.user_id,
        session_id: Uuid::nil(),
        role: key.role,
        request_id,
        api_key_id: Some(key.id),
        api_key_limits: key.limits,
        client_ip: None,
    })
}

/// Reads a key from the Redis cache.
async fn cached(platform: &Platform, cache_key: &str) -> redis::RedisResult<Option<CachedKey>> {
    let mut redis = platform.redis.shared().await?;
    let cached: Option<String> = redis.get(cache_key).await?;
    let cached = cached.and_then(|json| serde_json::from_str::<CachedKey>(&json).ok());
    crate::metrics::cache_lookup("api_key", cached.is_some());
    Ok(cached)
}

/// Reads a key and its creator's current role from the database.
async fn load(platform: &Platform, hash: &str) -> ServiceResult<CachedKey> {
    let invalid = || ServiceError::Unauthenticated("API key is invalid or revoked".into());
    // The key is all the caller presents, so it is looked up in every tenant by its hash
    // alone. The rest is read in the key's tenant.
    let lookup = platform.cross_tenant_tx().await?;
    let model = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(&lookup)
        .await?
        .ok_or_else(invalid)?;
    lookup.commit().await?;
    let txn = platform.tenant_tx(TenantId::new(model.tenant_id)).await?;
    let tenant = entity::tenant::Entity::find_by_id(model.tenant_id)
        .one(&txn)
        .await?
        .ok_or_else(invalid)?;
    crate::admin::check_active(&tenant)?;
    let creator = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(model.tenant_id))
        .filter(membership::Column::UserId.eq(model.created_by))
        .one(&txn)
        .await?
        .ok_or_else(|| {
            ServiceError::Unauthenticated("the API key's creator has left the tenant".into())
        })?;
    let key = decode(model)?;
    let scope_role = key
        .scopes
        .iter()
        .map(|scope| scope.role())
        .max_by_key(|role| role_rank(*role))
        .unwrap_or(Role::Viewer);
    let role = if role_at_least(creator.role, scope_role) {
        scope_role
    } else {
        creator.role
    };
    Ok(CachedKey {
        id: key.model.id,
        tenant_id: key.model.tenant_id,
        user_id: key.model.created_by,
        role,
        expires_at: key.model.expires_at,
        limits: MinuteLimits {
            requests_per_minute: key.model.requests_per_minute,
            tokens_per_minute: key.model.tokens_per_minute,
        },
    })
}

/// Checks a new key's own per-minute limits: each at least 1, and at most the plan's limit
/// for each key where the plan has one.
fn check_limits(tenant: &plans::TenantLimits, limits: MinuteLimits) -> ServiceResult<()> {
    let checks = [
        (
            "requestsPerMinute",
            limits.requests_per_minute,
            tenant.limits.api_key_requests_per_minute,
        ),
        (
            "tokensPerMinute",
            limits.tokens_per_minute,
            tenant.limits.api_key_tokens_per_minute,
        ),
    ];
    for (field, value, plan_limit) in checks {
        let Some(value) = value else { continue };
        if value < 1 {
            return Err(ServiceError::invalid(
                field,
                format!("must be 1 or more (got {value})"),
            ));
        }
        if let Some(plan_limit) = plan_limit.filter(|plan_limit| value > *plan_limit) {
            return Err(ServiceError::invalid(
                field,
                format!(
                    "must be at most {plan_limit}, the {} plan's limit for each API key (got \
                     {value})",
                    tenant.plan_name()
                ),
            ));
        }
    }
    Ok(())
}

/// Updates the key's `last_used_at` at most once a minute, on its own task so that the
/// request does not wait for it.
fn record_use(platform: &Platform, tenant_id: Uuid, key_id: Uuid) {
    let platform = platform.clone();
    tokio::spawn(async move {
        let result = async {
            let mut redis = platform.redis.shared().await?;
            let guard = platform.redis.key(&["api-key-used", &key_id.to_string()]);
            let first: bool = redis::cmd("SET")
                .arg(&guard)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(LAST_USED_RESOLUTION_SECONDS)
                .query_async::<Option<String>>(&mut redis)
                .await?
                .is_some();
            if first {
                let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
                api_key::Entity::update_many()
                    .col_expr(api_key::Column::LastUsedAt, Expr::value(Utc::now()))
                    .filter(api_key::Column::Id.eq(key_id))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
            }
            ServiceResult::Ok(())
        }
        .await;
        if let Err(error) = result {
            warn!(%error, api_key.id = %key_id, "recording an API key's use failed");
        }
    });
}

async fn forget(platform: &Platform, hashes: &[String]) -> ServiceResult<()> {
    if hashes.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = hashes
        .iter()
        .map(|hash| cache_key(platform, hash))
        .collect();
    let mut redis = platform.redis.shared().await?;
    let _: i64 = redis.del(keys).await?;
    Ok(())
}

fn cache_key(platform: &Platform, hash: &str) -> String {
    platform.redis.key(&["api-key", hash])
}

fn decode(model: api_key::Model) -> ServiceResult<ApiKey> {
    let scopes = serde_json::from_value(model.scopes.clone()).map_err(|error| {
        ServiceError::internal(format!("API key {} has invalid scopes: {error}", model.id))
    })?;
    Ok(ApiKey { model, scopes })
}
