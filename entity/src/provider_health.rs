//! Entity for `provider_health`: the platform-wide health of one provider, from periodic
//! probes and from the outcome of generations.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Health of a provider as the platform last observed it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    #[sea_orm(string_value = "healthy")]
    Healthy,
    /// The probe passes, but the last 3 or more generations failed.
    #[sea_orm(string_value = "degraded")]
    Degraded,
    /// The probe failed: the provider is unreachable or rejects the platform's key.
    #[sea_orm(string_value = "down")]
    Down,
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_health")]
pub struct Model {
    /// Stable provider name, such as `openai`.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub provider: String,
    pub status: ProviderStatus,
    /// Duration of the last successful probe, in milliseconds.
    pub latency_ms: Option<i32>,
    /// Error of the last failed probe, cleared when the provider is healthy again.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// Failed probes and generations since the last success.
    pub consecutive_failures: i32,
    /// Time of the last probe; `None` while only generations have reported.
    pub checked_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
