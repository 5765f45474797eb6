//! Budget reservations: the one mechanism behind every token, spend and request limit.
//!
//! Before a provider call, [`reserve`] takes the call's maximum tokens and cost from the
//! tenant's budgets for the billing period and the current minute, atomically in a Redis
//! script. When the reply ends, whether finished, stopped or failed, [`settle`] replaces
//! the reservation with the real usage. Concurrent calls therefore overshoot a budget by at
//! most what is reserved and not yet settled, never more.
//!
//! The period's usage lives in a Redis hash per tenant and period. When the hash is missing,
//! for example after a Redis restart, it is seeded from the usage records in PostgreSQL.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::Script;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use tracing::warn;
use uuid::Uuid;

use crate::webhooks::{self, QuotaThreshold};
use crate::{
    Platform, TenantId,
    error::{ServiceError, ServiceResult},
    plans::TenantLimits,
    usage::billing_period,
};

/// How long a reservation is kept when nothing settles it, such as when its process died
/// and the sweep has not closed the reply yet.
const RESERVATION_SECONDS: u64 = 24 * 3600;
/// Period hashes outlive their period by this much, so that late settlements find them.
const PERIOD_GRACE_SECONDS: i64 = 35 * 24 * 3600;

/// The largest usage of one provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub tokens: i64,
    /// Micro-dollars.
    pub cost_micros: i64,
}

/// Takes `estimate` from the tenant's budgets under `reservation_id` (the reply's message
/// id), or fails with QUOTA_EXCEEDED for a monthly limit or RATE_LIMITED for a per-minute
/// one, naming the plan, the limit and when it resets.
pub async fn reserve<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    tenant: &TenantLimits,
    reservation_id: Uuid,
    estimate: Estimate,
) -> ServiceResult<()> {
    let now = Utc::now();
    let (period_start, period_end) = billing_period(now);
    let minute = now.timestamp() / 60;
    let keys = Keys::new(platform, tenant_id, period_start, minute, reservation_id);
    let limits = &tenant.limits;
    let period_ttl = (period_end - now).num_seconds().max(1) + PERIOD_GRACE_SECONDS;

    let mut seed: Option<(i64, i64)> = None;
    loop {
        let mut invocation = RESERVE.prepare_invoke();
        invocation
            .key(&keys.period)
            .key(&keys.minute)
            .key(&keys.reservation)
            .arg(estimate.tokens)
            .arg(estimate.cost_micros)
            .arg(limits.tokens_per_month.unwrap_or(-1))
            .arg(limits.spend_per_month_micros.unwrap_or(-1))
            .arg(limits.requests_per_minute.unwrap_or(-1))
            .arg(limits.tokens_per_minute.unwrap_or(-1))
            .arg(period_ttl)
            .arg(RESERVATION_SECONDS);
        match seed {
            Some((tokens, spend)) => invocation.arg(tokens).arg(spend),
            None => invocation.arg("").arg(""),
        };
        let mut redis = platform.redis.shared().await?;
        let (outcome, used): (String, i64) = invocation.invoke_async(&mut redis).await?;
        match outcome.as_str() {
            "ok" => return Ok(()),
            "seed" if seed.is_none() => {
                seed = Some(period_usage(db, tenant_id, period_start, period_end).await?);
            }
            limit => {
                crate::metrics::rate_limited(limit);
                announce_quota_reached(platform, tenant_id, tenant, limit, used, period_start)
                    .await;
                return Err(exceeded(tenant, limit, used, now, period_end));
            }
        }
    }
}

/// Replaces the reservation of `reservation_id` with the real usage. Settling twice, or a
/// reservation that never existed, changes nothing.
pub async fn settle(
    platform: &Platform,
    tenant_id: TenantId,
    reservation_id: Uuid,
    tokens: i64,
    cost_micros: i64,
) -> ServiceResult<bool> {
    let key = reservation_key(platform, tenant_id, reservation_id);
    let mut redis = platform.redis.shared().await?;
    let settled: i64 = SETTLE
        .key(key)
        .arg(tokens.max(0))
        .arg(cost_micros.max(0))
        .invoke_async(&mut redis)
        .await?;
    Ok(settled == 1)
}

/// Runs [`settle`] and logs a failure instead of returning it, for callers that must go on
/// storing the reply.
pub async fn settle_or_log(
    platform: &Platform,
    tenant_id: TenantId,
    reservation_id: Uuid,
    tokens: i64,
    cost_micros: i64,
) {
    if let Err(error) = settle(platform, tenant_id, reservation_id, tokens, cost_micros).await {
        warn!(
            %error,
            tenant.id = %tenant_id.as_uuid(),
            reservation.id = %reservation_id,
            "settling a budget reservation failed"
        );
    }
}

/// Sums the tokens and cost the tenant's usage records hold for a period. Response cache
/// hits are left out: they cost nothing and their tokens never reached a provider.
async fn period_usage<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> ServiceResult<(i64, i64)> {
    const SQL: &str = r#"
        SELECT COALESCE(SUM(input_tokens + output_tokens), 0)::bigint AS tokens,
               COALESCE(SUM(cost_micros), 0)::bigint AS spend
        FROM usage_records
        WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
          AND response_cache IS DISTINCT FROM 'hit'
    "#;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [tenant_id.as_uuid().into(), start.into(), end.into()],
        ))
        .await?
        .ok_or_else(|| ServiceError::internal("period usage returned no row"))?;
    Ok((row.try_get("", "tokens")?, row.try_get("", "spend")?))
}

/// Records `usage.quota_reached` when a monthly quota refuses a reservation. Reservations
/// hold the most a reply may use, so they refuse requests before the counted usage can
/// reach the quota itself. It has a transaction of its own, because the caller's is
/// rolled back with the refusal. A failure is logged: the refusal stands either way.
async fn announce_quota_reached(
    platform: &Platform,
    tenant_id: TenantId,
    tenant: &TenantLimits,
    limit: &str,
    used: i64,
    period_start: DateTime<Utc>,
) {
    let (quota, value) = match limit {
        "tokens_per_month" => ("tokens_per_month", tenant.limits.tokens_per_month),
        "spend_per_month" => (
            "spend_per_month_micros",
            tenant.limits.spend_per_month_micros,
        ),
        _ => return,
    };
    let Some(value) = value else { return };
    let threshold = QuotaThreshold {
        quota,
        percent: 100,
        limit: value,
        used,
        period_start,
    };
    let recorded = async {
        let txn = platform.tenant_tx(tenant_id).await?;
        let outbox = webhooks::record_quota_threshold(&txn, tenant_id.as_uuid(), threshold).await?;
        txn.commit().await?;
        ServiceResult::Ok(outbox)
    }
    .await;
    match recorded {
        Ok(outbox) => outbox.dispatch(platform).await,
        Err(error) => {
            warn!(%error, tenant.id = %tenant_id.as_uuid(), "recording a reached quota failed");
        }
    }
}

fn exceeded(
    tenant: &TenantLimits,
    limit: &str,
    used: i64,
    now: DateTime<Utc>,
    period_end: DateTime<Utc>,
) -> ServiceError {
    let plan = tenant.plan_name();
    let limits = &tenant.limits;
    let retry_seconds = 60 - now.timestamp() % 60;
    match limit {
        "tokens_per_month" => ServiceError::QuotaExceeded(format!(
            "the {plan} plan allows {} tokens per month and {used} are used or reserved; \
             the quota resets at {}",
            limits.tokens_per_month.unwrap_or_default(),
            period_end.to_rfc3339()
        )),
        "spend_per_month" => ServiceError::QuotaExceeded(format!(
            "the {plan} plan allows {} micro-dollars of spend per month and {used} are used \
             or reserved; the quota resets at {}",
            limits.spend_per_month_micros.unwrap_or_default(),
            period_end.to_rfc3339()
        )),
        "requests_per_minute" => ServiceError::RateLimited(format!(
            "the {plan} plan allows {} chat requests per minute; retry in {retry_seconds} s",
            limits.requests_per_minute.unwrap_or_default()
        )),
        "tokens_per_minute" => ServiceError::RateLimited(format!(
            "the {plan} plan allows {} tokens per minute and {used} are used or reserved; \
             retry in {retry_seconds} s",
            limits.tokens_per_minute.unwrap_or_default()
        )),
        other => ServiceError::internal(format!("unknown budget outcome {other:?}")),
    }
}

struct Keys {
    period: String,
    minute: String,
    reservation: String,
}

impl Keys {
    fn new(
        platform: &Platform,
        tenant_id: TenantId,
        period_start: DateTime<Utc>,
        minute: i64,
        reservation_id: Uuid,
    ) -> Self {
        let tenant = tenant_id.as_uuid().to_string();
        Self {
            period: platform.redis.key(&[
                "budget",
                &tenant,
                "period",
                &period_start.format("%Y-%m").to_string(),
            ]),
            minute: platform
                .redis
                .key(&["budget", &tenant, "minute", &minute.to_string()]),
            reservation: reservation_key(platform, tenant_id, reservation_id),
        }
    }
}

fn reservation_key(platform: &Platform, tenant_id: TenantId, reservation_id: Uuid) -> String {
    platform.redis.key(&[
        "budget",
        &tenant_id.as_uuid().to_string(),
        "reservation",
        &reservation_id.to_string(),
    ])
}

/// KEYS: period hash, minute hash, reservation hash. ARGV: tokens, cost, monthly token
/// limit, monthly spend limit, requests per minute, tokens per minute (each -1 for none),
/// period TTL, reservation TTL, and the seed tokens and spend (empty when not read yet).
/// Returns `{"ok", 0}`, `{"seed", 0}` when the period hash must be seeded first, or the
/// name of the exceeded limit with the amount already used or reserved.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local tokens = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[9] == '' then return {'seed', 0} end
  redis.call('HSET', KEYS[1], 'used_tokens', ARGV[9], 'used_spend', ARGV[10],
             'reserved_tokens', 0, 'reserved_spend', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[7])
end
local period = redis.call('HMGET', KEYS[1], 'used_tokens', 'used_spend',
                          'reserved_tokens', 'reserved_spend')
local period_tokens = (tonumber(period[1]) or 0) + (tonumber(period[3]) or 0)
local period_spend = (tonumber(period[2]) or 0) + (tonumber(period[4]) or 0)
local limit_tokens = tonumber(ARGV[3])
if limit_tokens >= 0 and period_tokens + tokens > limit_tokens then
  return {'tokens_per_month', period_tokens}
end
local limit_spend = tonumber(ARGV[4])
if limit_spend >= 0 and period_spend + cost > limit_spend then
  return {'spend_per_month', period_spend}
end
local minute = redis.call('HMGET', KEYS[2], 'requests', 'tokens')
local rpm = tonumber(ARGV[5])
if rpm >= 0 and (tonumber(minute[1]) or 0) + 1 > rpm then
  return {'requests_per_minute', tonumber(minute[1]) or 0}
end
local tpm = tonumber(ARGV[6])
local minute_tokens = tonumber(minute[2]) or 0
if tpm >= 0 and minute_tokens + tokens > tpm then
  return {'tokens_per_minute', minute_tokens}
end
redis.call('HINCRBY', KEYS[1], 'reserved_tokens', tokens)
redis.call('HINCRBY', KEYS[1], 'reserved_spend', cost)
redis.call('HINCRBY', KEYS[2], 'requests', 1)
redis.call('HINCRBY', KEYS[2], 'tokens', tokens)
redis.call('EXPIRE', KEYS[2], 120)
redis.call('HSET', KEYS[3], 'tokens', tokens, 'cost', cost,
           'period', KEYS[1], 'minute', KEYS[2])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return {'ok', 0}
"#,
    )
});

/// KEYS: reservation hash. ARGV: real tokens and cost. Moves the reservation's amounts
/// from reserved to used in its period, corrects its minute's token count, and deletes the
/// reservation. Returns 1, or 0 when there was no reservation.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local reservation = redis.call('HMGET', KEYS[1], 'tokens', 'cost', 'period', 'minute')
if not reservation[1] then return 0 end
local tokens = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local period = reservation[3]
if redis.call('EXISTS', period) == 1 then
  -- `0 - x` rather than `-x`: Lua turns `-0` into the string "-0", which HINCRBY rejects.
  redis.call('HINCRBY', period, 'reserved_tokens', 0 - tonumber(reservation[1]))
  redis.call('HINCRBY', period, 'reserved_spend', 0 - tonumber(reservation[2]))
  redis.call('HINCRBY', period, 'used_tokens', tokens)
  redis.call('HINCRBY', period, 'used_spend', cost)
end
local minute = reservation[4]
if redis.call('EXISTS', minute) == 1 then
  redis.call('HINCRBY', minute, 'tokens', tokens - tonumber(reservation[1]))
end
redis.call('DEL', KEYS[1])
return 1
"#,
    )
});
