//! Provider health: the platform-wide status of each provider, from probes and generations.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::provider_health::{self, ProviderStatus};
use service::provider_health as health;

use super::{
    agents::Provider,
    context::{caller, platform},
    error::GqlResult,
};

/// Health of a provider as the platform last observed it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProviderHealthStatus {
    Healthy,
    /// The probe passes, but the last 3 or more generations failed.
    Degraded,
    /// The last probe failed: the provider is unreachable or rejects the platform's key.
    Down,
    Unknown,
}

impl From<ProviderStatus> for ProviderHealthStatus {
    fn from(status: ProviderStatus) -> Self {
        match status {
            ProviderStatus::Healthy => Self::Healthy,
            ProviderStatus::Degraded => Self::Degraded,
            ProviderStatus::Down => Self::Down,
            ProviderStatus::Unknown => Self::Unknown,
        }
    }
}

/// The health of one provider with the platform's endpoint.
#[derive(SimpleObject)]
pub struct ProviderHealth {
    pub provider: Provider,
    pub status: ProviderHealthStatus,
    /// Duration of the last successful probe, in milliseconds.
    pub latency_ms: Option<i32>,
    /// Error of the last failed probe, cleared when the provider is healthy again.
    pub last_error: Option<String>,
    /// Failed probes and generations since the last success.
    pub consecutive_failures: i32,
    /// Time of the last probe; null while only generations have reported.
    pub checked_at: Option<DateTime<Utc>>,
}

impl From<provider_health::Model> for ProviderHealth {
    fn from(row: provider_health::Model) -> Self {
        Self {
            provider: Provider::from_stored(&row.provider),
            status: row.status.into(),
            latency_ms: row.latency_ms,
            last_error: row.last_error,
            consecutive_failures: row.consecutive_failures,
            checked_at: row.checked_at,
        }
    }
}

#[derive(Default)]
pub struct ProviderHealthQuery;

#[Object]
impl ProviderHealthQuery {
    /// The health of every provider that was probed or used, ordered by provider name.
    async fn provider_health(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProviderHealth>> {
        let rows = health::list(platform(ctx), caller(ctx)?).await.gql()?;
        Ok(rows.into_iter().map(ProviderHealth::from).collect())
    }
}
