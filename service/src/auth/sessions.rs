//! A user's own sessions and memberships: listing and revoking sessions, changing the
//! password, and switching the active tenant.

use chrono::Utc;
use entity::{Role, membership, session, tenant, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use super::{AuthSession, password, publish_revocations, revoke_user_sessions, start_session};
use crate::{
    Platform, RequestContext, Secret,
    audit::{self, Action, Target, TargetType},
    error::{ServiceError, ServiceResult},
    validation,
};

/// A tenant the user belongs to, with their role there.
pub struct TenantMembership {
    pub tenant: tenant::Model,
    pub role: Role,
    pub joined_at: chrono::DateTime<Utc>,
}

/// Lists the caller's sessions that have not ended, in every tenant, newest first.
pub async fn list(platform: &Platform, ctx: &RequestContext) -> ServiceResult<Vec<session::Model>> {
    let txn = platform.account_tx(ctx.user_id, None).await?;
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(ctx.user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(session::Column::Id)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(sessions)
}

/// Revokes one of the caller's own sessions, which may be the current one.
pub async fn revoke(
    platform: &Platform,
    ctx: &RequestContext,
    session_id: Uuid,
) -> ServiceResult<session::Model> {
    ctx.require_session()?;
    let session = own_session(platform, ctx, session_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("session"))?;
    let summary = json!({
        "tenantId": session.tenant_id,
        "current": session.id == ctx.session_id,
    });
    super::revoke_session_audited(platform, ctx, session.id, Action::SessionRevoke, summary)
        .await?;
    Ok(own_session(platform, ctx, session.id)
        .await?
        .unwrap_or(session))
}

/// Returns one of the caller's sessions, in whichever tenant it was opened.
async fn own_session(
    platform: &Platform,
    ctx: &RequestContext,
    session_id: Uuid,
) -> ServiceResult<Option<session::Model>> {
    let txn = platform.account_tx(ctx.user_id, None).await?;
    let session = session::Entity::find_by_id(session_id)
        .filter(session::Column::UserId.eq(ctx.user_id))
        .one(&txn)
        .await?;
    txn.commit().await?;
    Ok(session)
}

/// Changes the caller's password after checking the current one, and revokes every other
/// session of the user, in every tenant. Returns how many sessions were revoked.
pub async fn change_password(
    platform: &Platform,
    ctx: &RequestContext,
    current_password: Secret,
    new_password: Secret,
) -> ServiceResult<usize> {
    ctx.require_session()?;
    validation::password("newPassword", new_password.expose())?;
    let user = user::Entity::find_by_id(ctx.user_id)
        .one(&platform.db)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("user no longer exists".into()))?;
    if !password::verify(current_password, Some(user.password_hash.clone())).await? {
        return Err(ServiceError::invalid(
            "currentPassword",
            "is not the account's password",
        ));
    }
    let password_hash = password::hash(new_password).await?;

    let txn = platform
        .account_tx(ctx.user_id, Some(ctx.tenant_id))
        .await?;
    let mut active: user::ActiveModel = user.into();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(Utc::now());
    active.update(&txn).await?;
    let revoked = revoke_user_sessions(&txn, ctx.user_id, None, Some(ctx.session_id)).await?;
    // Neither password nor its hash goes into the audit log.
    audit::record(
        &txn,
        ctx,
        Action::UserPasswordChange,
        Target::new(TargetType::User, ctx.user_id),
        json!({ "sessionsRevoked": revoked.len() }),
    )
    .await?;
    txn.commit().await?;
    publish_revocations(platform, &revoked).await?;

    info!(user.id = %ctx.user_id, sessions = revoked.len(), "password changed");
    Ok(revoked.len())
}

/// Lists the tenants the caller belongs to, oldest membership first.
pub async fn memberships(
    platform: &Platform,
    ctx: &RequestContext,
) -> ServiceResult<Vec<TenantMembership>> {
    let txn = platform.account_tx(ctx.user_id, None).await?;
    let rows = membership::Entity::find()
        .find_also_related(tenant::Entity)
        .filter(membership::Column::UserId.eq(ctx.user_id))
        .order_by_asc(membership::Column::CreatedAt)
        .all(&txn)
        .await?;
    txn.commit().await?;
    rows.into_iter()
        .map(|(membership, tenant)| {
            let tenant =
                tenant.ok_or_else(|| ServiceError::internal("membership without tenant"))?;
            Ok(TenantMembership {
                tenant,
                role: membership.role,
                joined_at: membership.created_at,
            })
        })
        .collect()
}

/// Opens a session of the caller in another tenant they belong to. The current session
/// stays open.
pub async fn switch_tenant(
    platform: &Platform,
    ctx: &RequestContext,
    tenant_id: Uuid,
) -> ServiceResult<AuthSession> {
    ctx.require_session()?;
    // The new session belongs to the other tenant; the audit row to the current one.
    let txn = platform
        .account_tx(ctx.user_id, Some(ctx.tenant_id))
        .await?;
    let membership = membership::Entity::find()
        .filter(membership::Column::UserId.eq(ctx.user_id))
        .filter(membership::Column::TenantId.eq(tenant_id))
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("tenant"))?;
    let user = user::Entity::find_by_id(ctx.user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated("user no longer exists".into()))?;
    let tenant = tenant::Entity::find_by_id(tenant_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("tenant"))?;
    crate::admin::check_active(&tenant)?;
    let session = start_session(platform, &txn, user, tenant, membership.role).await?;
    audit::record(
        &txn,
        ctx,
        Action::SessionSwitchTenant,
        Target::new(TargetType::Tenant, tenant_id),
        json!({ "role": membership.role }),
    )
    .await?;
    txn.commit().await?;
    info!(user.id = %ctx.user_id, tenant.id = %tenant_id, "switched tenant");
    Ok(session)
}
