//! Provider credentials: the tenant's own API keys, set and deleted by admins and listed
//! without the keys themselves.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::provider_credential;
use service::{Secret, credentials};

use super::{
    agents::Provider,
    context::{caller, platform},
    error::GqlResult,
};

/// The tenant's own key for a provider, used instead of the platform's key. The key itself
/// is never returned.
#[derive(SimpleObject, Clone)]
pub struct ProviderCredential {
    pub id: ID,
    pub provider: Provider,
    /// The last four characters of the key, or an empty string for a key shorter than 12
    /// characters.
    pub key_hint: String,
    /// The endpoint requests go to, or null for the platform's URL of the provider.
    pub base_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<provider_credential::Model> for ProviderCredential {
    fn from(credential: provider_credential::Model) -> Self {
        Self {
            id: credential.id.into(),
            provider: Provider::from_stored(&credential.provider),
            key_hint: credential.key_hint,
            base_url: credential.base_url,
            created_at: credential.created_at,
            updated_at: credential.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct SetProviderCredentialInput {
    pub provider: Provider,
    /// The provider's API key, up to 500 visible ASCII characters. Stored encrypted.
    #[graphql(secret)]
    pub api_key: String,
    /// An http or https endpoint of the provider's API, such as a proxy, or null for the
    /// platform's URL. Its host must be a public address unless the operator allows the
    /// network.
    pub base_url: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteProviderCredentialInput {
    pub provider: Provider,
}

#[derive(SimpleObject)]
pub struct ProviderCredentialPayload {
    pub credential: ProviderCredential,
}

#[derive(SimpleObject)]
pub struct DeleteProviderCredentialPayload {
    /// The provider whose requests use the platform's key again.
    pub deleted_provider: Provider,
}

#[derive(Default)]
pub struct CredentialQuery;

#[Object]
impl CredentialQuery {
    /// The tenant's provider credentials, at most one per provider, so the list is not
    /// paginated. Needs the member role.
    async fn provider_credentials(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProviderCredential>> {
        let credentials = credentials::list(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(credentials.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct CredentialMutation;

#[Object]
impl CredentialMutation {
    /// Stores the tenant's key for a provider, replacing an earlier one. Chats with that
    /// provider use it from the next message on. Needs the admin role.
    async fn set_provider_credential(
        &self,
        ctx: &Context<'_>,
        input: SetProviderCredentialInput,
    ) -> async_graphql::Result<ProviderCredentialPayload> {
        let input = credentials::SetCredential {
            provider: input.provider.into(),
            api_key: Secret::new(input.api_key),
            base_url: input.base_url,
        };
        let credential = credentials::set(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?;
        Ok(ProviderCredentialPayload {
            credential: credential.into(),
        })
    }

    /// Deletes the tenant's key for a provider, so that the platform's key applies again.
    /// Needs the admin role.
    async fn delete_provider_credential(
        &self,
        ctx: &Context<'_>,
        input: DeleteProviderCredentialInput,
    ) -> async_graphql::Result<DeleteProviderCredentialPayload> {
        let deleted = credentials::delete(platform(ctx), caller(ctx)?, input.provider.into())
            .await
            .gql()?;
        Ok(DeleteProviderCredentialPayload {
            deleted_provider: Provider::from_stored(deleted.as_str()),
        })
    }
}
