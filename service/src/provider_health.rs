//! Provider health: periodic probes of the platform's provider endpoints, the outcome of
//! each generation, and the resulting status per provider.
//!
//! A failed probe marks the provider `down`. Generations that fail
//! [`DEGRADED_AFTER_FAILURES`] times in a row mark it `degraded`, and one successful
//! generation makes it `healthy` again. A successful probe clears `down` and `unknown` but
//! leaves `degraded` in place, because listing models does not show that generations work.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{Role, provider_health};
use futures_util::future::join_all;
use providers::{ApiKey, Ollama, ProviderKind};
use sea_orm::{DbBackend, EntityTrait, QueryOrder, Statement, Value};
use tracing::{debug, warn};

use crate::webhooks::{self, EventType};
use crate::{
    Platform, RequestContext, Secret, chat,
    credentials::{Endpoint, EndpointOwner},
    error::ServiceResult,
    live::Change,
};

/// Failed generations in a row that mark a provider `degraded`.
pub const DEGRADED_AFTER_FAILURES: i32 = 3;
/// Maximum duration of one provider's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Lists the health of every provider that was probed or used, ordered by provider name.
/// Providers with no row yet are left out.
pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
) -> ServiceResult<Vec<provider_health::Model>> {
    ctx.require(Role::Member)?;
    Ok(provider_health::Entity::find()
        .order_by_asc(provider_health::Column::Provider)
        .all(&platform.db)
        .await?)
}

/// Probes every provider the platform is configured for, all at once with a timeout each,
/// and stores each result. Returns the stored rows of the probed providers.
pub async fn probe_all(platform: &Platform) -> ServiceResult<Vec<provider_health::Model>> {
    let kinds = ProviderKind::ALL
        .into_iter()
        .filter(|kind| is_configured(platform, *kind));
    let results = join_all(kinds.map(|kind| probe(platform, kind))).await;

    let mut rows = Vec::with_capacity(results.len());
    for (kind, result) in results {
        rows.push(store_probe(platform, kind, result).await?);
    }
    Ok(rows)
}

/// Records the outcome of one generation on `kind` with the platform's key. Failures in a
/// row are counted, and the count reaching [`DEGRADED_AFTER_FAILURES`] marks the provider
/// `degraded` unless a probe already marked it `down`. A success resets the count and marks
/// the provider `healthy`.
///
/// Generations with a tenant's own credential are not recorded, because a tenant's revoked
/// key or unreachable proxy shows nothing about the platform's provider.
pub async fn record_outcome(
    platform: &Platform,
    kind: ProviderKind,
    ok: bool,
) -> ServiceResult<provider_health::Model> {
    let now = Utc::now();
    let statement = if ok {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"INSERT INTO provider_health
                   (provider, status, latency_ms, last_error, consecutive_failures,
                    checked_at, updated_at)
               VALUES ($1, 'healthy', NULL, NULL, 0, NULL, $2)
               ON CONFLICT (provider) DO UPDATE SET
                   status = 'healthy',
                   last_error = NULL,
                   consecutive_failures = 0,
                   updated_at = EXCLUDED.updated_at
               RETURNING *"#,
            [kind.as_str().into(), now.into()],
        )
    } else {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"INSERT INTO provider_health
                   (provider, status, latency_ms, last_error, consecutive_failures,
                    checked_at, updated_at)
               VALUES ($1, CASE WHEN $3 <= 1 THEN 'degraded' ELSE 'unknown' END,
                       NULL, NULL, 1, NULL, $2)
               ON CONFLICT (provider) DO UPDATE SET
                   status = CASE
                       WHEN provider_health.status <> 'down'
                           AND provider_health.consecutive_failures + 1 >= $3
                       THEN 'degraded'
                       ELSE provider_health.status
                   END,
                   consecutive_failures = provider_health.consecutive_failures + 1,
                   updated_at = EXCLUDED.updated_at
               RETURNING *"#,
            [
                kind.as_str().into(),
                now.into(),
                DEGRADED_AFTER_FAILURES.into(),
            ],
        )
    };
    let row = upsert(platform, kind, statement).await?;

    if !ok && row.consecutive_failures == DEGRADED_AFTER_FAILURES {
        warn!(
            provider = kind.as_str(),
            failures = row.consecutive_failures,
            status = ?row.status,
            "provider generations keep failing"
        );
    }
    Ok(row)
}

/// Runs [`record_outcome`] on the runtime without waiting for it, logging a failure.
pub fn spawn_record_outcome(platform: &Platform, kind: ProviderKind, ok: bool) {
    let platform = platform.clone();
    tokio::spawn(async move {
        if let Err(error) = record_outcome(&platform, kind, ok).await {
            warn!(%error, provider = kind.as_str(), "recording the provider outcome failed");
        }
    });
}

/// Checks whether the platform has an endpoint of its own for `kind`: a configured API key,
/// or for Ollama, which needs no key, a base URL other than the local default. The default URL
/// is left out so that deployments without a local model server do not report Ollama as down.
fn is_configured(platform: &Platform, kind: ProviderKind) -> bool {
    let endpoint = platform.settings.providers.get(kind);
    endpoint.api_key.is_some()
        || (kind == ProviderKind::Ollama && endpoint.base_url != Ollama::DEFAULT_BASE_URL)
}

/// Probes `kind` with the platform's key and returns the latency or the error message.
async fn probe(
    platform: &Platform,
    kind: ProviderKind,
) -> (ProviderKind, Result<Duration, String>) {
    let settings = platform.settings.providers.get(kind);
    let endpoint = Endpoint {
        client: platform.http.clone(),
        base_url: settings.base_url.clone(),
        api_key: ApiKey::new(settings.api_key.as_ref().map_or("", Secret::expose)),
        owner: EndpointOwner::Platform,
    };
    let adapter = chat::adapter(kind, endpoint);

    let started = Instant::now();
    let result = match tokio::time::timeout(PROBE_TIMEOUT, adapter.probe()).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "probe timed out after {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    };
    (kind, result)
}

/// Stores one probe result: `healthy` with its latency, or `down` with its error.
async fn store_probe(
    platform: &Platform,
    kind: ProviderKind,
    result: Result<Duration, String>,
) -> ServiceResult<provider_health::Model> {
    let now: DateTime<Utc> = Utc::now();
    let statement = match result {
        Ok(latency) => {
            let latency_ms = i32::try_from(latency.as_millis()).unwrap_or(i32::MAX);
            debug!(
                provider = kind.as_str(),
                latency_ms, "provider probe passed"
            );
            Statement::from_sql_and_values(
                DbBackend::Postgres,
                r#"INSERT INTO provider_health
                       (provider, status, latency_ms, last_error, consecutive_failures,
                        checked_at, updated_at)
                   VALUES ($1, 'healthy', $2, NULL, 0, $3, $3)
                   ON CONFLICT (provider) DO UPDATE SET
                       status = CASE WHEN provider_health.status = 'degraded'
                           THEN 'degraded' ELSE 'healthy' END,
                       consecutive_failures = CASE WHEN provider_health.status = 'degraded'
                           THEN provider_health.consecutive_failures ELSE 0 END,
                       last_error = CASE WHEN provider_health.status = 'degraded'
                           THEN provider_health.last_error ELSE NULL END,
                       latency_ms = EXCLUDED.latency_ms,
                       checked_at = EXCLUDED.checked_at,
                       updated_at = EXCLUDED.updated_at
                   RETURNING *"#,
                [kind.as_str().into(), latency_ms.into(), now.into()],
            )
        }
        Err(error) => {
            warn!(provider = kind.as_str(), %error, "provider probe failed");
            Statement::from_sql_and_values(
                DbBackend::Postgres,
                r#"INSERT INTO provider_health
                       (provider, status, latency_ms, last_error, consecutive_failures,
                        checked_at, updated_at)
                   VALUES ($1, 'down', NULL, $2, 1, $3, $3)
                   ON CONFLICT (provider) DO UPDATE SET
                       status = 'down',
                       latency_ms = NULL,
                       last_error = EXCLUDED.last_error,
                       consecutive_failures = provider_health.consecutive_failures + 1,
                       checked_at = EXCLUDED.checked_at,
                       updated_at = EXCLUDED.updated_at
                   RETURNING *"#,
                [kind.as_str().into(), Value::from(error), now.into()],
            )
        }
    };
    upsert(platform, kind, statement).await
}

/// Runs an `INSERT .. ON CONFLICT .. RETURNING *`, which PostgreSQL applies atomically, so
/// that outcomes recorded at the same time each count.
/// Runs the upsert `statement` of `kind`'s row. A change of its status is announced to
/// every tenant's live updates, and recorded as a webhook event in the same transaction.
async fn upsert(
    platform: &Platform,
    kind: ProviderKind,
    statement: Statement,
) -> ServiceResult<provider_health::Model> {
    // Webhooks of every tenant are read, so the transaction crosses tenants.
    let txn = platform.cross_tenant_tx().await?;
    let before = provider_health::Entity::find_by_id(kind.as_str())
        .one(&txn)
        .await?
        .map(|row| row.status);
    let row = provider_health::Entity::find()
        .from_raw_sql(statement)
        .one(&txn)
        .await?
        .ok_or_else(|| crate::ServiceError::internal("provider health upsert returned no row"))?;
    let changed = before != Some(row.status);
    let outbox = if changed {
        let data = serde_json::json!({
            "provider": row.provider,
            "status": row.status,
            "previousStatus": before,
            "lastError": row.last_error,
        });
        webhooks::record_for_all(&txn, EventType::ProviderHealthChanged, data).await?
    } else {
        webhooks::Outbox::default()
    };
    txn.commit().await?;
    if changed {
        platform.live.everyone(Change::ProviderHealthChanged {
            provider: row.provider.clone(),
            status: row.status,
        });
        outbox.dispatch(platform).await;
    }
    Ok(row)
}
