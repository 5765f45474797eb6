//! Registration, login, refresh-token rotation, logout and request authentication.

pub mod password;
pub mod sessions;
pub mod tokens;

use chrono::{DateTime, Utc};
use entity::{Role, membership, session, tenant, tenant_plan, user};
use redis::AsyncCommands;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, RequestOrigin, TenantId, admin,
    audit::{self, Action, Target, TargetType},
    error::{ServiceError, ServiceResult},
    secret::Secret,
    usage::billing_period,
    validation::{self, MAX_NAME_CHARS},
};

/// The same message for an unknown email and a wrong password.
const BAD_CREDENTIALS: &str = "email or password is incorrect";

pub struct RegisterInput {
    pub email: String,
    pub password: Secret,
    pub full_name: String,
    pub tenant_name: String,
}

pub struct LoginInput {
    pub email: String,
    pub password: Secret,
    /// The tenant to sign in to; the user's oldest membership when absent.
    pub tenant_id: Option<Uuid>,
}

/// Tokens of a new or refreshed session, with who they are for.
pub struct AuthSession {
    pub access_token: Secret,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: Secret,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: user::Model,
    pub tenant: tenant::Model,
    pub role: Role,
}

/// The signed-in user with their active tenant and role.
pub struct Me {
    pub user: user::Model,
    pub tenant: tenant::Model,
    pub role: Role,
}

/// Creates a tenant, its owner, the owner's membership and the default plan, then signs in.
pub async fn register(
    platform: &Platform,
    input: RegisterInput,
    origin: &RequestOrigin,
) -> ServiceResult<AuthSession> {
    let email = validation::email("email", &input.email)?;
    admin::check_unlisted("email", platform, &email)?;
    validation::password("password", input.password.expose())?;
    let full_name = validation::required_text("fullName", &input.full_name, MAX_NAME_CHARS)?;
    let tenant_name = validation::required_text("tenantName", &input.tenant_name, MAX_NAME_CHARS)?;
    let password_hash = password::hash(input.password).await?;

    let now = Utc::now();
    let (period_start, period_end) = billing_period(now);
    let tenant_id = Uuid::now_v7();
    let txn = platform.tenant_tx(TenantId::new(tenant_id)).await?;
    let tenant = tenant::ActiveModel {
        id: Set(tenant_id),
        name: Set(tenant_name),
        status: Set(entity::TenantStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let user = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email),
        password_hash: Set(password_hash),
        full_name: Set(full_name),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|error| match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ServiceError::invalid("email", "is already registered")
        }
        _ => error.into(),
    })?;
    membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.id),
        user_id: Set(user.id),
        role: Set(Role::Owner),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    tenant_plan::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.id),
        plan: Set(entity::PlanKind::Free),
        monthly_token_limit: Set(None),
        current_period_start: Set(period_start),
        current_period_end: Set(period_end),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record_as_user(
        &txn,
        tenant.id,
        user.id,
        origin,
        Action::TenantRegister,
        Target::new(TargetType::Tenant, tenant.id),
        json!({ "tenantName": tenant.name, "email": user.email }),
    )
    .await?;
    let session = start_session(platform, &txn, user, tenant, Role::Owner).await?;
    txn.commit().await?;

    info!(tenant.id = %session.tenant.id, user.id = %session.user.id, "tenant registered");
    Ok(session)
}

/// Checks the credentials and opens a session in the chosen tenant.
pub async fn login(platform: &Platform, input: LoginInput) -> ServiceResult<AuthSession> {
    let email = input.email.trim().to_lowercase();
    // Users belong to no tenant, so the table has no row-level security.
    let user = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&platform.db)
        .await?;
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    if !password::verify(input.password, stored_hash).await? {
        return Err(ServiceError::Unauthenticated(BAD_CREDENTIALS.into()));
    }
    let user = user.ok_or_else(|| ServiceError::Unauthenticated(BAD_CREDENTIALS.into()))?;

    let txn = platform.account_tx(user.id, None).await?;
    let mut memberships = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user.id))
        .order_by_asc(membership::Column::CreatedAt);
    if let Some(tenant_id) = input.tenant_id {
        memberships = memberships.filter(membership::Column::TenantId.eq(tenant_id));
    }
    let Some(membership) = memberships.one(&txn).await? else {
        return Err(match input.tenant_id {
            Some(_) => ServiceError::invalid("tenantId", "you are not a member of this tenant"),
            None => ServiceError::Unauthenticated("you are not a member of any tenant".into()),
        });
    };
    let tenant = tenant::Entity::find_by_id(membership.tenant_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::internal("membership without tenant"))?;
    admin::check_active(&tenant)?;
    let session = start_session(platform, &txn, user, tenant, membership.role).await?;
    txn.commit().await?;
    Ok(session)
}

/// Exchanges a refresh token for new tokens. The presented token stops working; presenting
/// it again revokes the whole session, because only a stolen copy would be replayed.
pub async fn refresh(platform: &Platform, refresh_token: Secret) -> ServiceResult<AuthSession> {
    let presented = tokens::hash_token(refresh_token.expose());
    let now = Utc::now();

    // The token is the only thing the caller presents, so the session is looked up in
    // every tenant, by the token's hash alone.
    let lookup = platform.cross_tenant_tx().await?;
    let current = session::Entity::find()
        .filter(session::Column::RefreshTokenHash.eq(presented.clone()))
        .one(&lookup)
        .await?;
    let Some(current) = current else {
        let replayed = session::Entity::find()
            .filter(session::Column::PreviousRefreshTokenHash.eq(presented))
            .one(&lookup)
            .await?;
        lookup.commit().await?;
        if let Some(replayed) = replayed {
            warn!(session.id = %replayed.id, user.id = %replayed.user_id, "refresh token reused");
            revoke_session(platform, &replayed).await?;
        }
        return Err(ServiceError::Unauthenticated(
            "refresh token is invalid".into(),
        ));
    };
    if current.revoked_at.is_some() {
        return Err(ServiceError::Unauthenticated(
            "session has been revoked".into(),
        ));
    }
    if current.expires_at <= now {
        return Err(ServiceError::Unauthenticated(
            "refresh token has expired".into(),
        ));
    }

    lookup.commit().await?;

    let txn = platform.tenant_tx(TenantId::new(current.tenant_id)).await?;
    let membership = membership::Entity::find()
        .filter(membership::Column::UserId.eq(current.user_id))
        .filter(membership::Column::TenantId.eq(current.tenant_id))
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("membership has ended".into()))?;
    let user = user::Entity::find_by_id(current.user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("user no longer exists".into()))?;
    let tenant = tenant::Entity::find_by_id(current.tenant_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("tenant no longer exists".into()))?;
    admin::check_active(&tenant)?;

    // The update matches the presented hash, so two concurrent refreshes cannot both win.
    let next = tokens::new_refresh_token();
    let next_hash = tokens::hash_token(next.expose());
    let rotated = session::Entity::update_many()
        .col_expr(session::Column::RefreshTokenHash, Expr::value(next_hash))
        .col_expr(
            session::Column::PreviousRefreshTokenHash,
            Expr::value(current.refresh_token_hash.clone()),
        )
        .col_expr(session::Column::LastRefreshedAt, Expr::value(now))
        .filter(session::Column::Id.eq(current.id))
        .filter(session::Column::RefreshTokenHash.eq(current.refresh_token_hash.clone()))
        .exec(&txn)
        .await?;
    if rotated.rows_affected != 1 {
        return Err(ServiceError::Unauthenticated(
            "refresh token is invalid".into(),
        ));
    }
    txn.commit().await?;

    let (access_token, access_expires_at) =
        platform
            .tokens
            .issue(user.id, tenant.id, current.id, membership.role)?;
    Ok(AuthSession {
        access_token,
        access_expires_at,
        refresh_token: next,
        refresh_expires_at: current.expires_at,
        user,
        tenant,
        role: membership.role,
    })
}

/// Ends the caller's session: its refresh token and every access token stop working.
pub async fn logout(platform: &Platform, ctx: &RequestContext) -> ServiceResult<()> {
    ctx.require_session()?;
    revoke_session_audited(
        platform,
        ctx,
        ctx.session_id,
        Action::SessionLogout,
        json!({}),
    )
    .await
}

/// Returns the caller's user, active tenant and role.
pub async fn me(platform: &Platform, ctx: &RequestContext) -> ServiceResult<Me> {
    let user = user::Entity::find_by_id(ctx.user_id)
        .one(&platform.db)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("user no longer exists".into()))?;
    let tenant = tenant::Entity::find_by_id(ctx.tenant())
        .one(&platform.db)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("tenant no longer exists".into()))?;
    Ok(Me {
        user,
        tenant,
        role: ctx.role,
    })
}

/// Verifies an access token and turns it into the request's context. Costs one Redis
/// round trip (revoked session, changed role and suspended tenant together) and no
/// database query. While Redis is unreachable, the same facts are read from the database.
pub async fn authenticate(
    platform: &Platform,
    token: &str,
    request_id: String,
) -> ServiceResult<RequestContext> {
    let claims = platform.tokens.verify(token)?;
    let checked: redis::RedisResult<(Option<String>, Option<String>, Option<String>)> = async {
        let mut redis = platform.redis.shared().await?;
        redis::cmd("MGET")
            .arg(revoked_key(platform, claims.sid))
            .arg(role_key(platform, claims.tid, claims.sub))
            .arg(admin::suspended_key(platform, claims.tid))
            .query_async(&mut redis)
            .await
    }
    .await;
    let role = match checked {
        Ok((revoked, changed_role, suspended)) => {
            if revoked.is_some() {
                return Err(ServiceError::Unauthenticated(
                    "session has been revoked".into(),
                ));
            }
            if suspended.is_some() {
                return Err(ServiceError::Forbidden(admin::SUSPENDED.into()));
            }
            match changed_role.as_deref() {
                None => claims.role,
                Some(REMOVED) => return Err(membership_ended()),
                Some(name) => parse_role(name)?,
            }
        }
        Err(error) if crate::redis_conn::is_unreachable(&error) => {
            current_role(platform, claims.sid, claims.sub, TenantId::new(claims.tid)).await?
        }
        Err(error) => return Err(error.into()),
    };
    Ok(RequestContext {
        tenant_id: TenantId::new(claims.tid),
        user_id: claims.sub,
        session_id: claims.sid,
        role,
        request_id,
        api_key_id: None,
        api_key_limits: Default::default(),
        client_ip: None,
    })
}

/// Reads from the database what [`authenticate`] reads from Redis: that the session is not
/// revoked, the tenant not suspended, and the member's current role.
async fn current_role(
    platform: &Platform,
    session_id: Uuid,
    user_id: Uuid,
    tenant_id: TenantId,
) -> ServiceResult<Role> {
    let txn = platform.account_tx(user_id, Some(tenant_id)).await?;
    let session = session::Entity::find_by_id(session_id).one(&txn).await?;
    if session.is_none_or(|session| session.revoked_at.is_some()) {
        return Err(ServiceError::Unauthenticated(
            "session has been revoked".into(),
        ));
    }
    let tenant = tenant::Entity::find_by_id(tenant_id.as_uuid())
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("tenant no longer exists".into()))?;
    admin::check_active(&tenant)?;
    let membership = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(tenant_id.as_uuid()))
        .filter(membership::Column::UserId.eq(user_id))
        .one(&txn)
        .await?
        .ok_or_else(membership_ended)?;
    txn.commit().await?;
    Ok(membership.role)
}

fn membership_ended() -> ServiceError {
    ServiceError::Unauthenticated("your membership of this tenant has ended".into())
}

/// Value of a role key after the member was removed.
const REMOVED: &str = "removed";

/// Records a member's new role, or `None` for a removal, for as long as access tokens issued
/// before the change stay valid, so that [`authenticate`] applies it to them at once.
pub(crate) async fn publish_role(
    platform: &Platform,
    tenant_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
) -> ServiceResult<()> {
    let value = role.map_or(REMOVED, crate::context::role_name);
    let ttl = platform.settings.access_token_ttl.as_secs().max(1);
    let mut redis = platform.redis.shared().await?;
    let () = redis
        .set_ex(role_key(platform, tenant_id, user_id), value, ttl)
        .await?;
    Ok(())
}

pub(crate) fn parse_role(name: &str) -> ServiceResult<Role> {
    match name {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        "viewer" => Ok(Role::Viewer),
        other => Err(ServiceError::internal(format!(
            "unknown role {other:?} in Redis"
        ))),
    }
}

pub(crate) fn role_key(platform: &Platform, tenant_id: Uuid, user_id: Uuid) -> String {
    platform
        .redis
        .key(&["member-role", &tenant_id.to_string(), &user_id.to_string()])
}

pub(crate) async fn start_session<C: sea_orm::ConnectionTrait>(
    platform: &Platform,
    db: &C,
    user: user::Model,
    tenant: tenant::Model,
    role: Role,
) -> ServiceResult<AuthSession> {
    let now = Utc::now();
    let refresh_ttl = chrono::Duration::from_std(platform.settings.refresh_token_ttl)
        .map_err(|_| ServiceError::internal("REFRESH_TOKEN_TTL_SECONDS is out of range"))?;
    let refresh_token = tokens::new_refresh_token();
    let session = session::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.id),
        user_id: Set(user.id),
        refresh_token_hash: Set(tokens::hash_token(refresh_token.expose())),
        previous_refresh_token_hash: Set(None),
        expires_at: Set(now + refresh_ttl),
        revoked_at: Set(None),
        created_at: Set(now),
        last_refreshed_at: Set(None),
    }
    .insert(db)
    .await?;
    let (access_token, access_expires_at) = platform
        .tokens
        .issue(user.id, tenant.id, session.id, role)?;
    Ok(AuthSession {
        access_token,
        access_expires_at,
        refresh_token,
        refresh_expires_at: session.expires_at,
        user,
        tenant,
        role,
    })
}

/// Marks the session revoked in the database and lists it in Redis until every access
/// token issued for it has expired.
async fn revoke_session(platform: &Platform, session: &session::Model) -> ServiceResult<()> {
    let txn = platform.tenant_tx(TenantId::new(session.tenant_id)).await?;
    mark_session_revoked(&txn, session.id).await?;
    txn.commit().await?;
    publish_revocations(platform, &[session.id]).await?;
    info!(session.id = %session.id, "session revoked");
    Ok(())
}

/// Revokes a session like [`revoke_session`] on the caller's request, and records `action`
/// with `summary` in the audit log in the same transaction.
pub(crate) async fn revoke_session_audited(
    platform: &Platform,
    ctx: &RequestContext,
    session_id: Uuid,
    action: Action,
    summary: serde_json::Value,
) -> ServiceResult<()> {
    // The session may belong to another of the caller's tenants; the audit row goes to
    // the tenant the caller acts in.
    let txn = platform
        .account_tx(ctx.user_id, Some(ctx.tenant_id))
        .await?;
    mark_session_revoked(&txn, session_id).await?;
    let target = Target::new(TargetType::Session, session_id);
    audit::record(&txn, ctx, action, target, summary).await?;
    txn.commit().await?;
    publish_revocations(platform, &[session_id]).await?;
    info!(session.id = %session_id, "session revoked");
    Ok(())
}

async fn mark_session_revoked<C: sea_orm::ConnectionTrait>(
    db: &C,
    session_id: Uuid,
) -> ServiceResult<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Marks the user's live sessions revoked, only those in `tenant_id` when given and all but
/// `except` when given, and returns their ids for [`publish_revocations`].
pub(crate) async fn revoke_user_sessions<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    tenant_id: Option<Uuid>,
    except: Option<Uuid>,
) -> ServiceResult<Vec<Uuid>> {
    let now = Utc::now();
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now));
    if let Some(tenant_id) = tenant_id {
        update = update.filter(session::Column::TenantId.eq(tenant_id));
    }
    if let Some(except) = except {
        update = update.filter(session::Column::Id.ne(except));
    }
    let revoked = update.exec_with_returning(db).await?;
    Ok(revoked.into_iter().map(|session| session.id).collect())
}

/// Lists the sessions in Redis as revoked until every access token issued for them has
/// expired, in one round trip.
pub(crate) async fn publish_revocations(
    platform: &Platform,
    session_ids: &[Uuid],
) -> ServiceResult<()> {
    if session_ids.is_empty() {
        return Ok(());
    }
    let ttl = platform.settings.access_token_ttl.as_secs().max(1);
    let mut pipeline = redis::pipe();
    for session_id in session_ids {
        pipeline
            .set_ex(revoked_key(platform, *session_id), 1, ttl)
            .ignore();
    }
    let mut redis = platform.redis.shared().await?;
    let () = pipeline.query_async(&mut redis).await?;
    Ok(())
}

fn revoked_key(platform: &Platform, session_id: Uuid) -> String {
    platform
        .redis
        .key(&["revoked-session", &session_id.to_string()])
}
