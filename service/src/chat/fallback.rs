//! An agent's fallback model: opened in place of the primary when that fails before any token.

use entity::agent;
use providers::{ChatRequest, ProviderError, ProviderKind};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{
    generation::{self, Generation, Opened},
    provider_for,
};
use crate::{Platform, TenantId, credentials::EndpointOwner, error::ServiceResult};

/// Provider and model that generate the reply when the primary provider fails to open its stream.
pub struct Fallback {
    pub provider_kind: ProviderKind,
    pub model: String,
}

impl Fallback {
    /// Returns the agent's fallback, or `None` when it has none.
    pub fn of_agent(agent: &agent::Model) -> Option<Self> {
        let name = agent.fallback_provider.as_deref()?;
        let model = agent.fallback_model.clone()?;
        let Ok(provider_kind) = name.parse() else {
            warn!(agent.id = %agent.id, provider = name, "agent has an unknown fallback provider");
            return None;
        };
        Some(Self {
            provider_kind,
            model,
        })
    }

    /// Opens the fallback's stream, with the same retries as the primary, after the primary
    /// failed with `primary_error`, and returns it with whose key it used. Returns `None`
    /// when the fallback's adapter cannot be built, so that the reply fails with the
    /// primary's error.
    pub(super) async fn open(
        &self,
        platform: &Platform,
        generation: &Generation,
        request: &ChatRequest,
        primary_error: &ProviderError,
        stop: &CancellationToken,
    ) -> Option<(Opened, EndpointOwner)> {
        warn!(
            error = %primary_error,
            provider = generation.provider_kind.as_str(),
            model = %request.model,
            fallback.provider = self.provider_kind.as_str(),
            fallback.model = %self.model,
            "primary provider failed to open the stream, switching to the fallback"
        );
        let tenant_id = TenantId::new(generation.tenant_id);
        let resolved = async {
            let txn = platform.tenant_tx(tenant_id).await?;
            let provider = provider_for(platform, &txn, tenant_id, self.provider_kind).await?;
            txn.commit().await?;
            ServiceResult::Ok(provider)
        };
        let provider = match resolved.await {
            Ok(provider) => provider,
            Err(error) => {
                warn!(
                    %error,
                    fallback.provider = self.provider_kind.as_str(),
                    "building the fallback provider failed"
                );
                return None;
            }
        };
        let request = ChatRequest {
            model: self.model.clone(),
            ..request.clone()
        };
        let opened = generation::open(provider.adapter.as_ref(), &request, stop).await;
        Some((opened, provider.owner))
    }
}
