//! The `health` query: the readiness checks of `/health/ready`, provider health and the
//! depth of each job queue, for tenant admins.

use async_graphql::{Context, Enum, Json, Object, SimpleObject};
use serde_json::{Map, Value};
use service::health;

use super::{
    context::{caller, platform},
    error::GqlResult,
    provider_health::ProviderHealth,
    scalars::BigInt,
};
use crate::MIGRATIONS;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

impl HealthStatus {
    fn of(passed: bool) -> Self {
        if passed { Self::Ok } else { Self::Unavailable }
    }
}

/// One check of the platform's readiness.
#[derive(SimpleObject)]
pub struct HealthCheck {
    /// `postgres`, `redis`, `migrations` or `worker`.
    pub name: String,
    pub status: HealthStatus,
    pub latency_ms: f64,
    /// The reason the check failed; null when it passed.
    pub error: Option<String>,
    /// The check's findings: the pending migrations, or the age of the newest worker
    /// heartbeat in seconds.
    pub details: Json<Map<String, Value>>,
}

/// The jobs of one queue.
#[derive(SimpleObject)]
pub struct QueueDepth {
    pub queue: String,
    /// Jobs that a worker may take now.
    pub waiting: BigInt,
    /// Jobs due later, such as retries waiting for their time.
    pub scheduled: BigInt,
    /// Jobs that failed for good.
    pub failed: BigInt,
}

/// The platform's health as its api and worker see it.
#[derive(SimpleObject)]
pub struct Health {
    /// OK when every check passed.
    pub status: HealthStatus,
    pub checks: Vec<HealthCheck>,
    pub providers: Vec<ProviderHealth>,
    pub queues: Vec<QueueDepth>,
}

#[derive(Default)]
pub struct HealthQuery;

#[Object]
impl HealthQuery {
    /// Returns the readiness checks (PostgreSQL, Redis, migrations, worker heartbeat), the health
    /// of each provider and the depth of each job queue. Needs the admin role.
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<Health> {
        let report = health::report(platform(ctx), caller(ctx)?, &MIGRATIONS)
            .await
            .gql()?;
        let checks: Vec<HealthCheck> = report
            .checks
            .into_iter()
            .map(|check| HealthCheck {
                name: check.name.to_owned(),
                status: HealthStatus::of(check.passed()),
                latency_ms: check.latency.as_secs_f64() * 1000.0,
                error: check.error,
                details: Json(check.details),
            })
            .collect();
        Ok(Health {
            status: HealthStatus::of(checks.iter().all(|check| check.status == HealthStatus::Ok)),
            checks,
            providers: report
                .providers
                .into_iter()
                .map(ProviderHealth::from)
                .collect(),
            queues: report
                .queues
                .into_iter()
                .map(|depth| QueueDepth {
                    queue: depth.queue.to_owned(),
                    waiting: BigInt(depth.waiting as i64),
                    scheduled: BigInt(depth.scheduled as i64),
                    failed: BigInt(depth.failed as i64),
                })
                .collect(),
        })
    }
}
