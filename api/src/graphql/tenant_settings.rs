//! Tenant settings: chat defaults and restrictions, and message retention.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use service::tenant_settings::{self, TenantSettings as Stored};

use super::{
    agents::Provider,
    context::{caller, platform},
    error::GqlResult,
};

/// The tenant's chat defaults and restrictions, and how long messages are kept.
#[derive(SimpleObject)]
pub struct TenantSettings {
    /// Provider of conversations created without an agent or provider.
    pub default_provider: Option<Provider>,
    /// Model of conversations created without an agent or model.
    pub default_model: Option<String>,
    /// Providers members may use; null allows all.
    pub allowed_providers: Option<Vec<Provider>>,
    /// Models members may use; null allows all.
    pub allowed_models: Option<Vec<String>>,
    /// Days a message is kept before the worker deletes it; null keeps messages forever.
    /// Usage records are kept either way.
    pub message_retention_days: Option<i32>,
}

impl From<Stored> for TenantSettings {
    fn from(settings: Stored) -> Self {
        let provider = |kind: providers::ProviderKind| Provider::from_stored(kind.as_str());
        Self {
            default_provider: settings.default_provider.map(provider),
            default_model: settings.default_model,
            allowed_providers: settings
                .allowed_providers
                .map(|kinds| kinds.into_iter().map(provider).collect()),
            allowed_models: settings.allowed_models,
            message_retention_days: settings.message_retention_days,
        }
    }
}

/// The tenant's settings as a whole; a field left null clears that setting.
#[derive(InputObject)]
pub struct UpdateTenantSettingsInput {
    /// Needs `defaultModel` too.
    pub default_provider: Option<Provider>,
    /// Up to 200 characters; needs `defaultProvider` too.
    pub default_model: Option<String>,
    pub allowed_providers: Option<Vec<Provider>>,
    /// Up to 200 model names.
    pub allowed_models: Option<Vec<String>>,
    /// From 1 to 3650 days.
    pub message_retention_days: Option<i32>,
}

#[derive(SimpleObject)]
pub struct TenantSettingsPayload {
    pub settings: TenantSettings,
}

#[derive(Default)]
pub struct TenantSettingsQuery;

#[Object]
impl TenantSettingsQuery {
    /// The tenant's chat defaults and restrictions, and message retention.
    async fn tenant_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<TenantSettings> {
        Ok(tenant_settings::get(platform(ctx), caller(ctx)?)
            .await
            .gql()?
            .into())
    }
}

#[derive(Default)]
pub struct TenantSettingsMutation;

#[Object]
impl TenantSettingsMutation {
    /// Replaces the tenant's settings. Restrictions apply to agents and conversations
    /// created or changed from then on, and to every message sent. Needs the admin role.
    async fn update_tenant_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateTenantSettingsInput,
    ) -> async_graphql::Result<TenantSettingsPayload> {
        let settings = Stored {
            default_provider: input.default_provider.map(Into::into),
            default_model: input.default_model,
            allowed_providers: input
                .allowed_providers
                .map(|providers| providers.into_iter().map(Into::into).collect()),
            allowed_models: input.allowed_models,
            message_retention_days: input.message_retention_days,
        };
        let saved = tenant_settings::update(platform(ctx), caller(ctx)?, settings)
            .await
            .gql()?;
        Ok(TenantSettingsPayload {
            settings: saved.into(),
        })
    }
}
