//! Registration, login, token refresh, logout and `me`.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{tenant, user};
use service::{Secret, auth};

use super::{
    context::{caller, origin, platform},
    error::GqlResult,
};

/// A member's role in a tenant, from most to least privileged.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl From<entity::Role> for Role {
    fn from(role: entity::Role) -> Self {
        match role {
            entity::Role::Owner => Role::Owner,
            entity::Role::Admin => Role::Admin,
            entity::Role::Member => Role::Member,
            entity::Role::Viewer => Role::Viewer,
        }
    }
}

/// A person with an account. One user can belong to several tenants.
#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: async_graphql::ID,
    pub email: String,
    pub full_name: String,
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for User {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id.into(),
            email: user.email,
            full_name: user.full_name,
            created_at: user.created_at,
        }
    }
}

/// An organisation: the unit that owns agents, conversations, tasks and usage.
#[derive(SimpleObject, Clone)]
pub struct Tenant {
    pub id: async_graphql::ID,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(tenant: tenant::Model) -> Self {
        Self {
            id: tenant.id.into(),
            name: tenant.name,
            created_at: tenant.created_at,
        }
    }
}

/// Tokens of a session. Send the access token as `Authorization: Bearer <token>`; exchange
/// the refresh token for new tokens with `refreshToken` before the access token expires.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    /// Valid once: refreshing returns a new one and the old one stops working.
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user: User,
    pub tenant: Tenant,
    pub role: Role,
}

impl From<auth::AuthSession> for AuthPayload {
    fn from(session: auth::AuthSession) -> Self {
        Self {
            access_token: session.access_token.expose().to_owned(),
            access_token_expires_at: session.access_expires_at,
            refresh_token: session.refresh_token.expose().to_owned(),
            refresh_token_expires_at: session.refresh_expires_at,
            user: session.user.into(),
            tenant: session.tenant.into(),
            role: session.role.into(),
        }
    }
}

/// The signed-in user, the tenant the session belongs to, and the user's role there.
#[derive(SimpleObject)]
pub struct Me {
    pub user: User,
    pub tenant: Tenant,
    pub role: Role,
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    /// Up to 200 characters.
    pub full_name: String,
    /// Name of the new tenant, up to 200 characters. The new user becomes its owner.
    pub tenant_name: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// Tenant to sign in to; the user's first tenant when absent.
    pub tenant_id: Option<async_graphql::ID>,
}

#[derive(InputObject)]
pub struct RefreshTokenInput {
    pub refresh_token: String,
}

#[derive(SimpleObject)]
pub struct LogoutPayload {
    /// True once the session's tokens stopped working.
    pub success: bool,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user, active tenant and role.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let me = auth::me(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(Me {
            user: me.user.into(),
            tenant: me.tenant.into(),
            role: me.role.into(),
        })
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates a tenant with the caller as its owner, and signs in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let input = auth::RegisterInput {
            email: input.email,
            password: Secret::new(input.password),
            full_name: input.full_name,
            tenant_name: input.tenant_name,
        };
        Ok(auth::register(platform(ctx), input, &origin(ctx))
            .await
            .gql()?
            .into())
    }

    /// Signs in with email and password. A wrong password and an unknown email get the
    /// same error.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let tenant_id = match &input.tenant_id {
            Some(id) => Some(super::context::parse_id("tenantId", id)?),
            None => None,
        };
        let input = auth::LoginInput {
            email: input.email,
            password: Secret::new(input.password),
            tenant_id,
        };
        Ok(auth::login(platform(ctx), input).await.gql()?.into())
    }

    /// Exchanges a refresh token for new tokens. Reusing a refresh token revokes its session.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        input: RefreshTokenInput,
    ) -> async_graphql::Result<AuthPayload> {
        let session = auth::refresh(platform(ctx), Secret::new(input.refresh_token))
            .await
            .gql()?;
        Ok(session.into())
    }

    /// Ends the current session: its access and refresh tokens stop working at once.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<LogoutPayload> {
        auth::logout(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(LogoutPayload { success: true })
    }
}
