//! API keys: credentials for programs, created by members and listed without their secret.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use service::api_keys::{self, ApiKey as StoredKey, ApiKeyScope as Scope};
use service::quota::MinuteLimits;

use super::{
    context::{caller, parse_id, platform},
    error::GqlResult,
    scalars::BigInt,
};

/// A permission of an API key. A key acts with the highest role among its scopes, never
/// above its creator's current role.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ApiKeyScope {
    /// Queries and subscriptions, as the viewer role.
    Read,
    /// Also the member role's mutations, such as chatting and editing agents and tasks.
    Write,
    /// Also the admin role's mutations, such as provider credentials and model prices.
    Admin,
}

impl From<ApiKeyScope> for Scope {
    fn from(scope: ApiKeyScope) -> Self {
        match scope {
            ApiKeyScope::Read => Scope::Read,
            ApiKeyScope::Write => Scope::Write,
            ApiKeyScope::Admin => Scope::Admin,
        }
    }
}

impl From<Scope> for ApiKeyScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Read => ApiKeyScope::Read,
            Scope::Write => ApiKeyScope::Write,
            Scope::Admin => ApiKeyScope::Admin,
        }
    }
}

/// A credential for programs. Send it as `Authorization: Bearer <key>` or `X-API-Key`.
#[derive(SimpleObject)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The key's first 12 characters, such as `tak_Xk3v9Qa1`.
    pub prefix: String,
    pub scopes: Vec<ApiKeyScope>,
    /// The member the key acts for.
    pub created_by_id: ID,
    pub expires_at: Option<DateTime<Utc>>,
    /// The key's own limit of chat requests per minute; null for the plan's limit for each
    /// key. The tenant's limits apply as well.
    pub requests_per_minute: Option<BigInt>,
    /// The key's own limit of tokens per minute; null for the plan's limit for each key.
    pub tokens_per_minute: Option<BigInt>,
    /// Last request made with the key, recorded at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<StoredKey> for ApiKey {
    fn from(key: StoredKey) -> Self {
        Self {
            id: key.model.id.into(),
            name: key.model.name,
            prefix: key.model.prefix,
            scopes: key.scopes.into_iter().map(Into::into).collect(),
            created_by_id: key.model.created_by.into(),
            expires_at: key.model.expires_at,
            requests_per_minute: key.model.requests_per_minute.map(BigInt),
            tokens_per_minute: key.model.tokens_per_minute.map(BigInt),
            last_used_at: key.model.last_used_at,
            revoked_at: key.model.revoked_at,
            created_at: key.model.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// Up to 200 characters.
    pub name: String,
    /// At least one scope, none above the caller's role.
    pub scopes: Vec<ApiKeyScope>,
    /// When the key stops working, at most 730 days ahead; null for a key that lasts until
    /// it is revoked.
    pub expires_at: Option<DateTime<Utc>>,
    /// A limit of chat requests per minute for this key, at most the plan's limit for each
    /// key; null for the plan's.
    pub requests_per_minute: Option<BigInt>,
    /// A limit of tokens per minute for this key, at most the plan's limit for each key;
    /// null for the plan's.
    pub tokens_per_minute: Option<BigInt>,
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// The key itself. It is shown only here: store it now.
    pub secret: String,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct ApiKeyPayload {
    pub api_key: ApiKey,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The tenant's API keys that are not revoked, newest first: every key for admins, the
    /// caller's own keys for other members.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let keys = api_keys::list(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(keys.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Creates an API key that acts for the caller with the given scopes. Needs a session
    /// signed in with a password, not another API key.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let scopes: Vec<Scope> = input.scopes.into_iter().map(Into::into).collect();
        let created = api_keys::create(
            platform(ctx),
            caller(ctx)?,
            &input.name,
            &scopes,
            input.expires_at,
            MinuteLimits {
                requests_per_minute: input.requests_per_minute.map(|value| value.0),
                tokens_per_minute: input.tokens_per_minute.map(|value| value.0),
            },
        )
        .await
        .gql()?;
        Ok(CreateApiKeyPayload {
            api_key: created.key.into(),
            secret: created.secret.expose().to_owned(),
        })
    }

    /// Revokes an API key; it stops working at once. Members revoke their own keys, admins
    /// any key of the tenant.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> async_graphql::Result<ApiKeyPayload> {
        let id = parse_id("id", &input.id)?;
        let key = api_keys::revoke(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(ApiKeyPayload {
            api_key: key.into(),
        })
    }
}
