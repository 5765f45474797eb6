//! Members of a tenant: invitations by email, role changes and removal.
//!
//! Owners and admins manage members, but only owners grant the owner role or change or
//! remove an owner, and the last owner can be neither demoted nor removed. A role change or
//! removal takes effect on the member's next request, because [`crate::auth::authenticate`]
//! reads the member's current role from Redis when it differs from the token's.

use chrono::Utc;
use entity::{Role, invitation, membership, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use crate::webhooks::{self, EventType};
use crate::{
    Platform, RequestContext, RequestOrigin, Secret, TenantId, api_keys,
    audit::{self, Action, Target, TargetType},
    auth::{self, AuthSession, password, tokens},
    context::role_name,
    error::{ServiceError, ServiceResult},
    pagination::{Order, Page, PageRequest, fetch_page},
    plans,
    validation::{self, MAX_NAME_CHARS},
};

/// How long an invitation can be accepted.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

/// A member: the membership and its user.
pub struct Member {
    pub membership: membership::Model,
    pub user: user::Model,
}

/// A new invitation and its token, which is returned only here.
pub struct CreatedInvitation {
    pub invitation: invitation::Model,
    pub token: Secret,
}

pub struct AcceptInvitation {
    pub token: Secret,
    /// The new account's name, when no account has the invited email address yet.
    pub full_name: Option<String>,
    /// The new account's password, or the existing account's, unless the caller is signed in
    /// as the invited user.
    pub password: Option<Secret>,
}

/// Lists the tenant's members, oldest membership first. Needs the viewer role.
pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    page: &PageRequest,
) -> ServiceResult<Page<Member>> {
    ctx.require(Role::Viewer)?;
    let select = membership::Entity::find().filter(membership::Column::TenantId.eq(ctx.tenant()));
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let page = fetch_page(
        platform,
        &txn,
        select,
        membership::Column::Id,
        Order::OldestFirst,
        page,
        |membership| membership.id,
    )
    .await?;

    let user_ids: Vec<Uuid> = page.items.iter().map(|(_, m)| m.user_id).collect();
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(user_ids))
        .all(&txn)
        .await?;
    txn.commit().await?;
    let mut members = Vec::with_capacity(page.items.len());
    for (cursor, membership) in page.items {
        let user = users
            .iter()
            .find(|user| user.id == membership.user_id)
            .cloned()
            .ok_or_else(|| ServiceError::internal("membership without user"))?;
        members.push((cursor, Member { membership, user }));
    }
    Ok(Page {
        items: members,
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
    })
}

/// Invites `email` to the tenant with `role`, replacing a pending invitation of the same
/// address. Needs the admin role, and the owner role to invite an owner.
pub async fn invite(
    platform: &Platform,
    ctx: &RequestContext,
    email: &str,
    role: Role,
) -> ServiceResult<CreatedInvitation> {
    ctx.require(Role::Admin)?;
    let email = validation::email("email", email)?;
    if role == Role::Owner && ctx.role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "only an owner can invite an owner".into(),
        ));
    }
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let already_member = membership::Entity::find()
        .inner_join(user::Entity)
        .filter(membership::Column::TenantId.eq(ctx.tenant()))
        .filter(user::Column::Email.eq(&email))
        .one(&txn)
        .await?
        .is_some();
    if already_member {
        return Err(ServiceError::invalid(
            "email",
            "already belongs to a member of this tenant",
        ));
    }

    let now = Utc::now();
    let token = Secret::new(format!("inv_{}", tokens::random_token()));
    invitation::Entity::update_many()
        .col_expr(invitation::Column::RevokedAt, Expr::value(now))
        .filter(invitation::Column::TenantId.eq(ctx.tenant()))
        .filter(invitation::Column::Email.eq(&email))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    // Pending invitations count as members, so that accepting them all stays within the plan.
    let tenant = plans::lock_limits(&txn, ctx.tenant_id).await?;
    let members = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(ctx.tenant()))
        .count(&txn)
        .await?;
    let pending = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(ctx.tenant()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(now))
        .count(&txn)
        .await?;
    plans::check_count(
        &tenant,
        "members (pending invitations count as members)",
        members + pending,
        |limits| limits.max_members,
    )?;
    let invitation = invitation::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        email: Set(email),
        role: Set(role),
        token_hash: Set(tokens::hash_token(token.expose())),
        invited_by: Set(Some(ctx.user_id)),
        expires_at: Set(now + INVITATION_TTL),
        accepted_at: Set(None),
        accepted_by: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    // The invitation token stays out of the audit log.
    let summary = json!({ "email": invitation.email, "role": invitation.role });
    audit::record(
        &txn,
        ctx,
        Action::MemberInvite,
        Target::new(TargetType::Invitation, invitation.id),
        summary,
    )
    .await?;
    txn.commit().await?;

    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        invitation.id = %invitation.id,
        role = role_name(role),
        "member invited"
    );
    Ok(CreatedInvitation { invitation, token })
}

/// Lists the tenant's invitations that can still be accepted, newest first. Needs the admin
/// role.
pub async fn pending_invitations(
    platform: &Platform,
    ctx: &RequestContext,
) -> ServiceResult<Vec<invitation::Model>> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let invitations = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(ctx.tenant()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(invitation::Column::Id)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(invitations)
}

/// Revokes a pending invitation so that its token stops working. Needs the admin role.
pub async fn revoke_invitation(
    platform: &Platform,
    ctx: &RequestContext,
    invitation_id: Uuid,
) -> ServiceResult<invitation::Model> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let revoked = invitation::Entity::update_many()
        .col_expr(invitation::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(invitation::Column::Id.eq(invitation_id))
        .filter(invitation::Column::TenantId.eq(ctx.tenant()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .exec_with_returning(&txn)
        .await?;
    let Some(invitation) = revoked.into_iter().next() else {
        return Err(ServiceError::not_found("invitation"));
    };
    let summary = json!({ "email": invitation.email, "role": invitation.role });
    audit::record(
        &txn,
        ctx,
        Action::InvitationRevoke,
        Target::new(TargetType::Invitation, invitation.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), invitation.id = %invitation.id, "invitation revoked");
    Ok(invitation)
}

/// Accepts an invitation: the invited user joins the tenant with the invitation's role and
/// gets a session there. A new account is created when none has the invited email address.
/// An existing account proves itself with its password or by being the signed-in caller.
pub async fn accept(
    platform: &Platform,
    caller: Option<&RequestContext>,
    input: AcceptInvitation,
    origin: &RequestOrigin,
) -> ServiceResult<AuthSession> {
    let hash = tokens::hash_token(input.token.expose());
    // The token names the tenant, so the invitation is looked up by its hash alone.
    let lookup = platform.cross_tenant_tx().await?;
    let invitation = invitation::Entity::find()
        .filter(invitation::Column::TokenHash.eq(hash))
        .one(&lookup)
        .await?
        .ok_or_else(|| ServiceError::invalid("token", "is not a valid invitation token"))?;
    lookup.commit().await?;
    check_acceptable(&invitation)?;

    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(&invitation.email))
        .one(&platform.db)
        .await?;
    let signed_in_as_invited = caller
        .zip(existing.as_ref())
        .is_some_and(|(caller, user)| caller.user_id == user.id);
    if caller.is_some() && !signed_in_as_invited {
        return Err(ServiceError::Forbidden(
            "this invitation is for another email address".into(),
        ));
    }
    let new_account = match &existing {
        Some(user) if !signed_in_as_invited => {
            let password = input.password.ok_or_else(|| {
                ServiceError::invalid(
                    "password",
                    "is required: enter the password of the invited account or sign in first",
                )
            })?;
            if !password::verify(password, Some(user.password_hash.clone())).await? {
                return Err(ServiceError::Unauthenticated(
                    "password is incorrect".into(),
                ));
            }
            None
        }
        Some(_) => None,
        None => {
            crate::admin::check_unlisted("token", platform, &invitation.email)?;
            Some(new_account_fields(input.full_name, input.password).await?)
        }
    };

    let account_created = existing.is_none();
    let txn = platform
        .tenant_tx(TenantId::new(invitation.tenant_id))
        .await?;
    let now = Utc::now();
    let user = match (existing, new_account) {
        (Some(user), _) => user,
        (None, Some((full_name, password_hash))) => user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(invitation.email.clone()),
            password_hash: Set(password_hash),
            full_name: Set(full_name),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|error| match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ServiceError::invalid(
                "token",
                "an account with the invited email address was created meanwhile; accept again \
                 with its password",
            ),
            _ => error.into(),
        })?,
        (None, None) => return Err(ServiceError::internal("new account without its fields")),
    };
    membership::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(invitation.tenant_id),
        user_id: Set(user.id),
        role: Set(invitation.role),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|error| match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ServiceError::invalid("token", "you are already a member of this tenant")
        }
        _ => error.into(),
    })?;
    claim(&txn, &invitation, user.id).await?;
    audit::record_as_user(
        &txn,
        invitation.tenant_id,
        user.id,
        origin,
        Action::InvitationAccept,
        Target::new(TargetType::Invitation, invitation.id),
        json!({ "role": invitation.role, "accountCreated": account_created }),
    )
    .await?;
    let tenant = entity::tenant::Entity::find_by_id(invitation.tenant_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::internal("invitation without tenant"))?;
    crate::admin::check_active(&tenant)?;
    let added = json!({
        "userId": user.id,
        "email": user.email,
        "role": invitation.role,
        "invitedBy": invitation.invited_by,
    });
    let outbox =
        webhooks::record(&txn, invitation.tenant_id, EventType::MemberAdded, added).await?;
    let session = auth::start_session(platform, &txn, user, tenant, invitation.role).await?;
    txn.commit().await?;
    outbox.dispatch(platform).await;
    // A removal of an earlier membership may still be marked; the new role replaces it.
    auth::publish_role(
        platform,
        invitation.tenant_id,
        session.user.id,
        Some(invitation.role),
    )
    .await?;

    info!(
        tenant.id = %invitation.tenant_id,
        user.id = %session.user.id,
        invitation.id = %invitation.id,
        role = role_name(invitation.role),
        "invitation accepted"
    );
    Ok(session)
}

/// Changes a member's role. Needs the admin role; granting or taking away the owner role
/// needs the owner role, and the last owner keeps it.
pub async fn change_role(
    platform: &Platform,
    ctx: &RequestContext,
    user_id: Uuid,
    role: Role,
) -> ServiceResult<Member> {
    ctx.require(Role::Admin)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let owners = lock_owners(&txn, ctx).await?;
    let membership = find_membership(&txn, ctx, user_id).await?;
    if (membership.role == Role::Owner || role == Role::Owner) && ctx.role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "only an owner can grant the owner role or change an owner's role".into(),
        ));
    }
    if membership.role == Role::Owner && role != Role::Owner && owners <= 1 {
        return Err(ServiceError::invalid(
            "role",
            "the last owner cannot be demoted; make another member owner first",
        ));
    }
    let previous_role = membership.role;
    let mut active: membership::ActiveModel = membership.into();
    active.role = Set(role);
    let membership = active.update(&txn).await?;
    let user = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::internal("membership without user"))?;
    audit::record(
        &txn,
        ctx,
        Action::MemberRoleChange,
        Target::new(TargetType::Member, user_id),
        json!({ "role": role, "previousRole": previous_role }),
    )
    .await?;
    txn.commit().await?;
    auth::publish_role(platform, ctx.tenant(), user_id, Some(role)).await?;
    api_keys::forget_user_keys(platform, ctx.tenant(), user_id).await?;

    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        member.id = %user_id,
        role = role_name(role),
        "member role changed"
    );
    Ok(Member { membership, user })
}

/// Removes a member from the tenant and ends their sessions there. Needs the admin role;
/// removing an owner needs the owner role, and the last owner cannot be removed. Returns
/// the removed member.
pub async fn remove(
    platform: &Platform,
    ctx: &RequestContext,
    user_id: Uuid,
) -> ServiceResult<Member> {
    ctx.require(Role::Admin)?;
    remove_membership(platform, ctx, user_id, Action::MemberRemove).await
}

/// Removes the caller from the tenant and ends their sessions there. Any member may leave,
/// except the last owner.
pub async fn leave(platform: &Platform, ctx: &RequestContext) -> ServiceResult<Member> {
    ctx.require_session()?;
    remove_membership(platform, ctx, ctx.user_id, Action::MemberLeave).await
}

/// Removes `user_id`'s membership and records it as `action`.
async fn remove_membership(
    platform: &Platform,
    ctx: &RequestContext,
    user_id: Uuid,
    action: Action,
) -> ServiceResult<Member> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let owners = lock_owners(&txn, ctx).await?;
    let membership = find_membership(&txn, ctx, user_id).await?;
    if membership.role == Role::Owner && ctx.role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "only an owner can remove an owner".into(),
        ));
    }
    if membership.role == Role::Owner && owners <= 1 {
        return Err(ServiceError::invalid(
            "userId",
            "the last owner cannot be removed; make another member owner first",
        ));
    }
    membership::Entity::delete_by_id(membership.id)
        .exec(&txn)
        .await?;
    let user = user::Entity::find_by_id(user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::internal("membership without user"))?;
    let sessions = auth::revoke_user_sessions(&txn, user_id, Some(ctx.tenant()), None).await?;
    let summary = json!({ "role": membership.role, "sessionsRevoked": sessions.len() });
    audit::record(
        &txn,
        ctx,
        action,
        Target::new(TargetType::Member, user_id),
        summary,
    )
    .await?;
    let removed = json!({
        "userId": user_id,
        "email": user.email,
        "role": membership.role,
        "removedBy": ctx.user_id,
        "left": action == Action::MemberLeave,
    });
    let outbox = webhooks::record(&txn, ctx.tenant(), EventType::MemberRemoved, removed).await?;
    txn.commit().await?;
    outbox.dispatch(platform).await;
    auth::publish_revocations(platform, &sessions).await?;
    auth::publish_role(platform, ctx.tenant(), user_id, None).await?;
    api_keys::forget_user_keys(platform, ctx.tenant(), user_id).await?;

    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        member.id = %user_id,
        sessions = sessions.len(),
        "member removed"
    );
    Ok(Member { membership, user })
}

fn check_acceptable(invitation: &invitation::Model) -> ServiceResult<()> {
    if invitation.revoked_at.is_some() {
        return Err(ServiceError::invalid(
            "token",
            "this invitation was revoked",
        ));
    }
    if invitation.accepted_at.is_some() {
        return Err(ServiceError::invalid(
            "token",
            "this invitation has already been accepted",
        ));
    }
    if invitation.expires_at <= Utc::now() {
        return Err(ServiceError::invalid(
            "token",
            "this invitation has expired; ask for a new one",
        ));
    }
    Ok(())
}

/// Checks the name and password of an account created by accepting, and hashes the password.
async fn new_account_fields(
    full_name: Option<String>,
    password: Option<Secret>,
) -> ServiceResult<(String, String)> {
    let full_name = full_name.unwrap_or_default();
    let full_name = validation::required_text("fullName", &full_name, MAX_NAME_CHARS)?;
    let password = password.ok_or_else(|| {
        ServiceError::invalid("password", "is required to create the invited account")
    })?;
    validation::password("password", password.expose())?;
    Ok((full_name, password::hash(password).await?))
}

/// Marks the invitation accepted by `user_id`, failing when a concurrent accept or revoke
/// came first.
async fn claim(
    txn: &DatabaseTransaction,
    invitation: &invitation::Model,
    user_id: Uuid,
) -> ServiceResult<()> {
    let claimed = invitation::Entity::update_many()
        .col_expr(invitation::Column::AcceptedAt, Expr::value(Utc::now()))
        .col_expr(invitation::Column::AcceptedBy, Expr::value(user_id))
        .filter(invitation::Column::Id.eq(invitation.id))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(ServiceError::invalid(
            "token",
            "this invitation has already been accepted or was revoked",
        ));
    }
    Ok(())
}

/// Locks the tenant's owner memberships for the transaction and returns how many there are,
/// so that two concurrent demotions cannot both pass the last-owner check.
async fn lock_owners<C: ConnectionTrait>(db: &C, ctx: &RequestContext) -> ServiceResult<usize> {
    let owners = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(ctx.tenant()))
        .filter(membership::Column::Role.eq(Role::Owner))
        .lock_exclusive()
        .all(db)
        .await?;
    Ok(owners.len())
}

async fn find_membership<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    user_id: Uuid,
) -> ServiceResult<membership::Model> {
    membership::Entity::find()
        .filter(membership::Column::TenantId.eq(ctx.tenant()))
        .filter(membership::Column::UserId.eq(user_id))
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::not_found("member"))
}
