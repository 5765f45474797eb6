//! Members and invitations of the tenant, and the caller's own sessions and tenants.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{invitation, session};
use service::{
    Secret,
    auth::sessions,
    members::{self, AcceptInvitation, Member},
};

use super::{
    auth::{AuthPayload, Role, Tenant, User},
    connection::{Paged, page_request, to_connection},
    context::{caller, optional_caller, origin, parse_id, platform},
    error::GqlResult,
};

impl From<Role> for entity::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Owner => entity::Role::Owner,
            Role::Admin => entity::Role::Admin,
            Role::Member => entity::Role::Member,
            Role::Viewer => entity::Role::Viewer,
        }
    }
}

/// A user's membership of the tenant.
#[derive(SimpleObject)]
pub struct TenantMember {
    pub user: User,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl From<Member> for TenantMember {
    fn from(member: Member) -> Self {
        Self {
            user: member.user.into(),
            role: member.membership.role.into(),
            joined_at: member.membership.created_at,
        }
    }
}

/// An offer to an email address to join the tenant with a role.
#[derive(SimpleObject)]
pub struct Invitation {
    pub id: ID,
    pub email: String,
    pub role: Role,
    pub invited_by_id: Option<ID>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<invitation::Model> for Invitation {
    fn from(invitation: invitation::Model) -> Self {
        Self {
            id: invitation.id.into(),
            email: invitation.email,
            role: invitation.role.into(),
            invited_by_id: invitation.invited_by.map(Into::into),
            expires_at: invitation.expires_at,
            accepted_at: invitation.accepted_at,
            revoked_at: invitation.revoked_at,
            created_at: invitation.created_at,
        }
    }
}

/// One sign-in of the caller, renewed by refreshing its tokens.
#[derive(SimpleObject)]
pub struct Session {
    pub id: ID,
    pub tenant_id: ID,
    /// True for the session of the access token this request carries.
    pub current: bool,
    pub created_at: DateTime<Utc>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Session {
    fn new(session: session::Model, current_id: uuid::Uuid) -> Self {
        Self {
            id: session.id.into(),
            tenant_id: session.tenant_id.into(),
            current: session.id == current_id,
            created_at: session.created_at,
            last_refreshed_at: session.last_refreshed_at,
            expires_at: session.expires_at,
            revoked_at: session.revoked_at,
        }
    }
}

/// A tenant the caller belongs to, with their role there.
#[derive(SimpleObject)]
pub struct TenantMembership {
    pub tenant: Tenant,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub email: String,
    pub role: Role,
}

#[derive(SimpleObject)]
pub struct InviteMemberPayload {
    pub invitation: Invitation,
    /// The token that accepts the invitation with `acceptInvitation`. It is shown only
    /// here; send it to the invited person.
    pub token: String,
}

#[derive(InputObject)]
pub struct RevokeInvitationInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct InvitationPayload {
    pub invitation: Invitation,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    #[graphql(secret)]
    pub token: String,
    /// Name of the account to create, when no account has the invited email address.
    pub full_name: Option<String>,
    /// Password of the account to create, or of the existing account unless the request
    /// is signed in as the invited user.
    #[graphql(secret)]
    pub password: Option<String>,
}

#[derive(InputObject)]
pub struct ChangeMemberRoleInput {
    pub user_id: ID,
    pub role: Role,
}

#[derive(SimpleObject)]
pub struct MemberPayload {
    pub member: TenantMember,
}

#[derive(InputObject)]
pub struct RemoveMemberInput {
    pub user_id: ID,
}

#[derive(InputObject)]
pub struct RevokeSessionInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct SessionPayload {
    pub session: Session,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    #[graphql(secret)]
    pub current_password: String,
    /// 8 to 128 characters.
    #[graphql(secret)]
    pub new_password: String,
}

#[derive(SimpleObject)]
pub struct ChangePasswordPayload {
    /// Sessions of the user, other than the current one, that were signed out.
    pub revoked_sessions: i32,
}

#[derive(InputObject)]
pub struct SwitchTenantInput {
    pub tenant_id: ID,
}

#[derive(Default)]
pub struct MemberQuery;

#[Object]
impl MemberQuery {
    /// The tenant's members, oldest membership first.
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<TenantMember>> {
        let request = page_request(first, after);
        let page = members::list(platform(ctx), caller(ctx)?, &request)
            .await
            .gql()?;
        Ok(to_connection(page, TenantMember::from))
    }

    /// The tenant's invitations that can still be accepted, newest first. Needs the admin
    /// role.
    async fn invitations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Invitation>> {
        let invitations = members::pending_invitations(platform(ctx), caller(ctx)?)
            .await
            .gql()?;
        Ok(invitations.into_iter().map(Into::into).collect())
    }

    /// The caller's sessions that have not ended, in every tenant, newest first.
    async fn my_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let ctx_caller = caller(ctx)?;
        let sessions = sessions::list(platform(ctx), ctx_caller).await.gql()?;
        Ok(sessions
            .into_iter()
            .map(|session| Session::new(session, ctx_caller.session_id))
            .collect())
    }

    /// The tenants the caller belongs to, oldest membership first. `switchTenant` opens a
    /// session in another of them.
    async fn my_tenants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TenantMembership>> {
        let memberships = sessions::memberships(platform(ctx), caller(ctx)?)
            .await
            .gql()?;
        Ok(memberships
            .into_iter()
            .map(|membership| TenantMembership {
                tenant: membership.tenant.into(),
                role: membership.role.into(),
                joined_at: membership.joined_at,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct MemberMutation;

#[Object]
impl MemberMutation {
    /// Invites an email address to the tenant with a role, replacing a pending invitation
    /// of the same address. The invitation is valid for 7 days. Needs the admin role, and
    /// the owner role to invite an owner.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> async_graphql::Result<InviteMemberPayload> {
        let created = members::invite(platform(ctx), caller(ctx)?, &input.email, input.role.into())
            .await
            .gql()?;
        Ok(InviteMemberPayload {
            invitation: created.invitation.into(),
            token: created.token.expose().to_owned(),
        })
    }

    /// Revokes a pending invitation so that its token stops working. Needs the admin role.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: RevokeInvitationInput,
    ) -> async_graphql::Result<InvitationPayload> {
        let id = parse_id("id", &input.id)?;
        let invitation = members::revoke_invitation(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(InvitationPayload {
            invitation: invitation.into(),
        })
    }

    /// Accepts an invitation and signs in to its tenant. Without an account for the invited
    /// email address, `fullName` and `password` create one; with one, `password` proves it,
    /// unless the request is signed in as that user.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> async_graphql::Result<AuthPayload> {
        let input = AcceptInvitation {
            token: Secret::new(input.token),
            full_name: input.full_name,
            password: input.password.map(Secret::new),
        };
        let origin = origin(ctx);
        let session = members::accept(platform(ctx), optional_caller(ctx)?, input, &origin)
            .await
            .gql()?;
        Ok(session.into())
    }

    /// Changes a member's role; it applies to their next request. Needs the admin role, and
    /// the owner role to grant or take away the owner role. The last owner keeps it.
    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeMemberRoleInput,
    ) -> async_graphql::Result<MemberPayload> {
        let user_id = parse_id("userId", &input.user_id)?;
        let member = members::change_role(platform(ctx), caller(ctx)?, user_id, input.role.into())
            .await
            .gql()?;
        Ok(MemberPayload {
            member: member.into(),
        })
    }

    /// Removes a member and signs them out of the tenant. Needs the admin role; removing an
    /// owner needs the owner role, and the last owner stays.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveMemberInput,
    ) -> async_graphql::Result<MemberPayload> {
        let user_id = parse_id("userId", &input.user_id)?;
        let member = members::remove(platform(ctx), caller(ctx)?, user_id)
            .await
            .gql()?;
        Ok(MemberPayload {
            member: member.into(),
        })
    }

    /// Leaves the tenant: the caller's membership ends and their sessions there are signed
    /// out. The last owner cannot leave.
    async fn leave_tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<MemberPayload> {
        let member = members::leave(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(MemberPayload {
            member: member.into(),
        })
    }

    /// Signs out one of the caller's sessions, which may be the current one.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        input: RevokeSessionInput,
    ) -> async_graphql::Result<SessionPayload> {
        let id = parse_id("id", &input.id)?;
        let ctx_caller = caller(ctx)?;
        let session = sessions::revoke(platform(ctx), ctx_caller, id)
            .await
            .gql()?;
        Ok(SessionPayload {
            session: Session::new(session, ctx_caller.session_id),
        })
    }

    /// Changes the caller's password and signs out every other session of the user.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<ChangePasswordPayload> {
        let revoked = sessions::change_password(
            platform(ctx),
            caller(ctx)?,
            Secret::new(input.current_password),
            Secret::new(input.new_password),
        )
        .await
        .gql()?;
        Ok(ChangePasswordPayload {
            revoked_sessions: i32::try_from(revoked).unwrap_or(i32::MAX),
        })
    }

    /// Opens a session in another tenant the caller belongs to; the current session stays
    /// open.
    async fn switch_tenant(
        &self,
        ctx: &Context<'_>,
        input: SwitchTenantInput,
    ) -> async_graphql::Result<AuthPayload> {
        let tenant_id = parse_id("tenantId", &input.tenant_id)?;
        let session = sessions::switch_tenant(platform(ctx), caller(ctx)?, tenant_id)
            .await
            .gql()?;
        Ok(session.into())
    }
}
