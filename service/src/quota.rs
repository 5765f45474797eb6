//! Budget reservations: the one mechanism behind every token, spend and request limit.
//!
//! Before a provider call, [`reserve`] takes the call's maximum tokens and cost from the
//! tenant's budgets for the billing period, and one request and those tokens from the
//! per-minute limits of the tenant and of the API key the request used, atomically in one
//! Redis script. When the reply ends, whether finished, stopped or failed, [`settle_or_log`]
//! replaces the reservation with the real usage, giving the tokens it did not use back to
//! the per-minute limits. Concurrent calls therefore overshoot a budget by at most what is
//! reserved and not yet settled, never more, however many api instances serve them.
//!
//! The period's usage lives in a Redis hash per tenant and period. When the hash is missing,
//! for example after a Redis restart, it is seeded from the usage records in PostgreSQL.
//!
//! Each per-minute limit is a generic cell rate algorithm (GCRA) on Redis's clock: a key
//! holds the limit's theoretical arrival time, a minute's quota may be spent at once, and
//! it comes back evenly over the minute. While Redis is unreachable, the monthly budgets
//! are checked against the usage records and the per-minute limits by this process alone
//! (see [`crate::local_limits`]).

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use redis::Script;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde::{Deserialize, Serialize};
use tracing::warn;
use uuid::Uuid;

use crate::local_limits::{LocalCheck, LocalRefusal};
use crate::webhooks::{self, QuotaThreshold};
use crate::{
    Platform, TenantId,
    error::{ServiceError, ServiceResult},
    plans::{PlanLimits, TenantLimits},
    redis_conn,
    usage::billing_period,
};

/// How long a reservation is kept when nothing settles it, such as when its process died
/// and the sweep has not closed the reply yet. It then gives its amounts back to the
/// period's budget at the next reservation.
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

/// Per-minute limits; `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteLimits {
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
}

/// The API key a request was made with, and the limits the key itself sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPayer {
    pub id: Uuid,
    pub own: MinuteLimits,
}

impl KeyPayer {
    /// Returns the key's limits under `plan`: its own where it sets them, capped by the
    /// plan's limit for each key.
    pub fn limits(&self, plan: &PlanLimits) -> MinuteLimits {
        MinuteLimits {
            requests_per_minute: lowest(
                self.own.requests_per_minute,
                plan.api_key_requests_per_minute,
            ),
            tokens_per_minute: lowest(self.own.tokens_per_minute, plan.api_key_tokens_per_minute),
        }
    }
}

/// Returns the lower of two optional limits, where `None` means no limit.
pub(crate) fn lowest(first: Option<i64>, second: Option<i64>) -> Option<i64> {
    match (first, second) {
        (Some(first), Some(second)) => Some(first.min(second)),
        (first, second) => first.or(second),
    }
}

/// The room one per-minute limit has left after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: i64,
    pub remaining: i64,
    /// Time until the limit is whole again.
    pub reset: Duration,
}

/// The room the request and token limits have left after a request. Each is the tighter
/// of the tenant's and the API key's, and `None` where no limit applies or the count is
/// not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStatus {
    pub requests: Option<Allowance>,
    pub tokens: Option<Allowance>,
}

/// Takes `estimate` from the tenant's budgets, and from the API key's when `api_key` is
/// set, under `reservation_id` (the reply's message id). Fails with QUOTA_EXCEEDED for a
/// monthly limit or a request larger than a per-minute limit, or RATE_LIMITED with the
/// wait for a per-minute one, naming the plan or key, the limit and when it has room.
pub async fn reserve<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    tenant: &TenantLimits,
    api_key: Option<KeyPayer>,
    reservation_id: Uuid,
    estimate: Estimate,
) -> ServiceResult<RateStatus> {
    let now = Utc::now();
    let (period_start, period_end) = billing_period(now);
    let limits = &tenant.limits;
    let key_limits = api_key.map(|key| key.limits(limits)).unwrap_or_default();
    let keys = Keys::new(platform, tenant_id, api_key, period_start, reservation_id);
    let period_ttl = (period_end - now).num_seconds().max(1) + PERIOD_GRACE_SECONDS;
    let payer = Payer {
        tenant_id,
        tenant,
        api_key,
        key_limits,
    };

    let mut seed: Option<(i64, i64)> = None;
    loop {
        let mut invocation = RESERVE.prepare_invoke();
        invocation
            .key(&keys.period)
            .key(&keys.tenant_requests)
            .key(&keys.tenant_tokens)
            .key(&keys.key_requests)
            .key(&keys.key_tokens)
            .key(&keys.reservation)
            .key(&keys.expiring)
            .arg(estimate.tokens)
            .arg(estimate.cost_micros)
            .arg(limits.tokens_per_month.unwrap_or(-1))
            .arg(limits.spend_per_month_micros.unwrap_or(-1))
            .arg(limits.requests_per_minute.unwrap_or(-1))
            .arg(limits.tokens_per_minute.unwrap_or(-1))
            .arg(key_limits.requests_per_minute.unwrap_or(-1))
            .arg(key_limits.tokens_per_minute.unwrap_or(-1))
            .arg(period_ttl)
            .arg(RESERVATION_SECONDS);
        match seed {
            Some((tokens, spend)) => invocation.arg(tokens).arg(spend),
            None => invocation.arg("").arg(""),
        };
        invocation.arg(reservation_id.to_string());
        let result: redis::RedisResult<Vec<String>> = async {
            let mut redis = platform.redis.shared().await?;
            invocation.invoke_async(&mut redis).await
        }
        .await;
        let reply = match result {
            Ok(reply) => reply,
            Err(error) if redis_conn::is_unreachable(&error) => {
                let reservation = (reservation_id, keys.period.clone());
                return reserve_locally(platform, db, &payer, reservation, estimate, now).await;
            }
            Err(error) => return Err(error.into()),
        };
        platform.local_limits.end();
        match Reply::parse(&reply)? {
            Reply::Reserved(status) => return Ok(status),
            Reply::Seed if seed.is_none() => {
                seed = Some(period_usage(db, tenant_id, period_start, period_end).await?);
            }
            Reply::Seed => return Err(ServiceError::internal("budget seeded twice")),
            Reply::OverMonth { limit, used } => {
                crate::metrics::rate_limited(limit);
                announce_quota_reached(platform, tenant_id, tenant, limit, used, period_start)
                    .await;
                return Err(over_month(tenant, limit, used, period_end));
            }
            Reply::Wait { limit, wait } => return Err(payer.wait(limit, wait)),
            Reply::Never { limit } => return Err(payer.never(limit, estimate)),
        }
    }
}

/// Checks a reservation while Redis is unreachable: the monthly budgets against the usage
/// records, without the reservations of replies in flight, and the per-minute limits with
/// this process's own limiters. Nothing is reserved in Redis; the process remembers the
/// reservation, so that settling it adds its usage to the period's count.
async fn reserve_locally<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    payer: &Payer<'_>,
    (reservation_id, period_key): (Uuid, String),
    estimate: Estimate,
    now: DateTime<Utc>,
) -> ServiceResult<RateStatus> {
    let (period_start, period_end) = billing_period(now);
    let (tokens, spend) = period_usage(db, payer.tenant_id, period_start, period_end).await?;
    let limits = &payer.tenant.limits;
    if estimate.tokens > 0
        && limits
            .tokens_per_month
            .is_some_and(|limit| tokens + estimate.tokens > limit)
    {
        crate::metrics::rate_limited(TOKENS_PER_MONTH);
        return Err(over_month(
            payer.tenant,
            TOKENS_PER_MONTH,
            tokens,
            period_end,
        ));
    }
    if estimate.cost_micros > 0
        && limits
            .spend_per_month_micros
            .is_some_and(|limit| spend + estimate.cost_micros > limit)
    {
        crate::metrics::rate_limited(SPEND_PER_MONTH);
        return Err(over_month(payer.tenant, SPEND_PER_MONTH, spend, period_end));
    }

    let tenant_id = payer.tenant_id.as_uuid();
    let mut checks = Vec::with_capacity(4);
    let mut add = |limit, id, per_minute: Option<i64>, cost| {
        if let Some(per_minute) = per_minute {
            checks.push(LocalCheck {
                limit,
                id,
                per_minute,
                cost,
            });
        }
    };
    if let Some(key) = payer.api_key {
        add(
            KEY_REQUESTS,
            key.id,
            payer.key_limits.requests_per_minute,
            1,
        );
        add(
            KEY_TOKENS,
            key.id,
            payer.key_limits.tokens_per_minute,
            estimate.tokens,
        );
    }
    add(TENANT_REQUESTS, tenant_id, limits.requests_per_minute, 1);
    add(
        TENANT_TOKENS,
        tenant_id,
        limits.tokens_per_minute,
        estimate.tokens,
    );
    match platform.local_limits.check(&checks) {
        Ok(()) => {
            platform
                .local_limits
                .remember_reservation(reservation_id, period_key);
            Ok(RateStatus::default())
        }
        Err(LocalRefusal::Later { limit, retry_after }) => Err(payer.wait(limit, retry_after)),
        Err(LocalRefusal::Never { limit }) => Err(payer.never(limit, estimate)),
    }
}

/// Replaces the reservation of `reservation_id` with the real usage, and logs a failure
/// instead of returning it, for callers that must go on storing the reply. Settling twice,
/// or a reservation that never existed, changes nothing.
///
/// A reservation made while Redis was unreachable adds its usage to the period's count. A
/// settlement that cannot reach Redis is retried in the background every
/// [`SETTLE_RETRY_EVERY`] for up to [`SETTLE_RETRY_FOR`], so that an outage leaves
/// neither a stale reservation nor missing usage behind.
pub async fn settle_or_log(
    platform: &Platform,
    tenant_id: TenantId,
    reservation_id: Uuid,
    tokens: i64,
    cost_micros: i64,
) {
    let settlement = Settlement {
        target: match platform.local_limits.take_reservation(reservation_id) {
            Some(period) => Target::LocalReservation { period },
            None => Target::Reservation {
                key: reservation_key(platform, tenant_id, reservation_id),
            },
        },
        tokens: tokens.max(0),
        cost_micros: cost_micros.max(0),
    };
    let error = match settlement.apply(platform).await {
        Ok(()) => return,
        Err(error) => error,
    };
    if !redis_conn::is_unreachable(&error) {
        warn!(
            %error,
            tenant.id = %tenant_id.as_uuid(),
            reservation.id = %reservation_id,
            "settling a budget reservation failed"
        );
        return;
    }
    warn!(
        %error,
        tenant.id = %tenant_id.as_uuid(),
        reservation.id = %reservation_id,
        "settling a budget reservation failed; retrying until Redis answers"
    );
    let platform = platform.clone();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(SETTLE_RETRY_EVERY).await;
            match settlement.apply(&platform).await {
                Ok(()) => return,
                Err(error)
                    if redis_conn::is_unreachable(&error)
                        && started.elapsed() < SETTLE_RETRY_FOR => {}
                Err(error) => {
                    warn!(
                        %error,
                        tenant.id = %tenant_id.as_uuid(),
                        reservation.id = %reservation_id,
                        "settling a budget reservation failed for good"
                    );
                    return;
                }
            }
        }
    });
}

/// How often a settlement that could not reach Redis is tried again.
const SETTLE_RETRY_EVERY: Duration = Duration::from_secs(5);
/// How long a settlement that could not reach Redis is tried again.
const SETTLE_RETRY_FOR: Duration = Duration::from_secs(3600);

/// A reply's real usage and the budget entry it settles.
struct Settlement {
    target: Target,
    tokens: i64,
    cost_micros: i64,
}

enum Target {
    /// The reservation hash that [`RESERVE`] wrote.
    Reservation { key: String },
    /// A reservation made while Redis was unreachable, which wrote nothing; its usage is
    /// added to the count of the period hash.
    LocalReservation { period: String },
}

impl Settlement {
    async fn apply(&self, platform: &Platform) -> redis::RedisResult<()> {
        let mut redis = platform.redis.shared().await?;
        let mut invocation = match &self.target {
            Target::Reservation { key } => SETTLE.key(key),
            Target::LocalReservation { period } => ADD_USAGE.key(period),
        };
        let _: i64 = invocation
            .arg(self.tokens)
            .arg(self.cost_micros)
            .invoke_async(&mut redis)
            .await?;
        Ok(())
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

const TOKENS_PER_MONTH: &str = "tokens_per_month";
const SPEND_PER_MONTH: &str = "spend_per_month";
const TENANT_REQUESTS: &str = "requests_per_minute";
const TENANT_TOKENS: &str = "tokens_per_minute";
const KEY_REQUESTS: &str = "api_key_requests_per_minute";
const KEY_TOKENS: &str = "api_key_tokens_per_minute";

/// Whom a reservation is taken from, with the limits that apply.
struct Payer<'a> {
    tenant_id: TenantId,
    tenant: &'a TenantLimits,
    api_key: Option<KeyPayer>,
    key_limits: MinuteLimits,
}

impl Payer<'_> {
    /// Returns the per-minute limit named `limit` and its holder, such as `the free plan`.
    fn minute_limit(&self, limit: &str) -> (String, i64) {
        let tenant = self.tenant;
        let key = "this API key".to_owned();
        match limit {
            TENANT_REQUESTS => (
                tenant.limit_source(|limits| limits.requests_per_minute),
                tenant.limits.requests_per_minute.unwrap_or_default(),
            ),
            TENANT_TOKENS => (
                tenant.limit_source(|limits| limits.tokens_per_minute),
                tenant.limits.tokens_per_minute.unwrap_or_default(),
            ),
            KEY_REQUESTS => (key, self.key_limits.requests_per_minute.unwrap_or_default()),
            _ => (key, self.key_limits.tokens_per_minute.unwrap_or_default()),
        }
    }

    /// RATE_LIMITED for a per-minute limit that has room again after `wait`.
    fn wait(&self, limit: &'static str, wait: Duration) -> ServiceError {
        crate::metrics::rate_limited(limit);
        let (whose, per_minute) = self.minute_limit(limit);
        let retry_after_seconds = whole_seconds(wait);
        let what = match (is_request_limit(limit), per_minute) {
            (true, 1) => "chat request",
            (true, _) => "chat requests",
            (false, 1) => "token",
            (false, _) => "tokens",
        };
        let allowance = Allowance {
            limit: per_minute,
            remaining: 0,
            reset: wait,
        };
        let status = if is_request_limit(limit) {
            RateStatus {
                requests: Some(allowance),
                tokens: None,
            }
        } else {
            RateStatus {
                requests: None,
                tokens: Some(allowance),
            }
        };
        ServiceError::RateLimited {
            message: format!(
                "{whose} allows {per_minute} {what} per minute; retry in {retry_after_seconds} s"
            ),
            retry_after_seconds,
            status: Box::new(status),
        }
    }

    /// QUOTA_EXCEEDED for a reply that needs more than a per-minute limit allows at all,
    /// which waiting does not change.
    fn never(&self, limit: &'static str, estimate: Estimate) -> ServiceError {
        crate::metrics::rate_limited(limit);
        let (whose, per_minute) = self.minute_limit(limit);
        if is_request_limit(limit) {
            // Only a limit of 0 refuses every request.
            return ServiceError::QuotaExceeded(format!(
                "{whose} allows no chat requests per minute"
            ));
        }
        ServiceError::QuotaExceeded(format!(
            "this reply may use up to {} tokens and {whose} allows {per_minute} tokens per \
             minute; lower the agent's maxTokens or start a shorter conversation",
            estimate.tokens
        ))
    }
}

fn is_request_limit(limit: &str) -> bool {
    limit == TENANT_REQUESTS || limit == KEY_REQUESTS
}

/// Whole seconds of `wait`, rounded up and at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

fn over_month(
    tenant: &TenantLimits,
    limit: &str,
    used: i64,
    period_end: DateTime<Utc>,
) -> ServiceError {
    let limits = &tenant.limits;
    if limit == SPEND_PER_MONTH {
        return ServiceError::QuotaExceeded(format!(
            "{} allows {} micro-dollars of spend per month and {used} are used or reserved; \
             the quota resets at {}",
            tenant.limit_source(|limits| limits.spend_per_month_micros),
            limits.spend_per_month_micros.unwrap_or_default(),
            period_end.to_rfc3339()
        ));
    }
    ServiceError::QuotaExceeded(format!(
        "{} allows {} tokens per month and {used} are used or reserved; the quota resets at \
         {}",
        tenant.limit_source(|limits| limits.tokens_per_month),
        limits.tokens_per_month.unwrap_or_default(),
        period_end.to_rfc3339()
    ))
}

/// The result of [`RESERVE`].
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Reserved(RateStatus),
    Seed,
    OverMonth { limit: &'static str, used: i64 },
    Wait { limit: &'static str, wait: Duration },
    Never { limit: &'static str },
}

impl Reply {
    fn parse(reply: &[String]) -> ServiceResult<Self> {
        let malformed = || ServiceError::internal(format!("malformed budget reply {reply:?}"));
        let number = |index: usize| -> ServiceResult<i64> {
            reply
                .get(index)
                .and_then(|value| value.parse().ok())
                .ok_or_else(malformed)
        };
        let limit = |index: usize| -> ServiceResult<&'static str> {
            let name = reply.get(index).ok_or_else(malformed)?;
            [
                TOKENS_PER_MONTH,
                SPEND_PER_MONTH,
                TENANT_REQUESTS,
                TENANT_TOKENS,
                KEY_REQUESTS,
                KEY_TOKENS,
            ]
            .into_iter()
            .find(|known| known == name)
            .ok_or_else(malformed)
        };
        match reply.first().map(String::as_str) {
            Some("ok") => {
                let mut status = RateStatus::default();
                for entry in reply[1..].chunks(4) {
                    let [name, limit, remaining, reset_micros] = entry else {
                        return Err(malformed());
                    };
                    let parse = |value: &String| value.parse::<i64>().map_err(|_| malformed());
                    let allowance = Allowance {
                        limit: parse(limit)?,
                        remaining: parse(remaining)?.max(0),
                        reset: Duration::from_micros(parse(reset_micros)?.max(0) as u64),
                    };
                    let slot = if is_request_limit(name) {
                        &mut status.requests
                    } else {
                        &mut status.tokens
                    };
                    if slot.is_none_or(|current| allowance.remaining < current.remaining) {
                        *slot = Some(allowance);
                    }
                }
                Ok(Reply::Reserved(status))
            }
            Some("seed") => Ok(Reply::Seed),
            Some("month") => Ok(Reply::OverMonth {
                limit: limit(1)?,
                used: number(2)?,
            }),
            Some("wait") => Ok(Reply::Wait {
                limit: limit(1)?,
                wait: Duration::from_micros(number(2)?.max(0) as u64),
            }),
            Some("never") => Ok(Reply::Never { limit: limit(1)? }),
            _ => Err(malformed()),
        }
    }
}

struct Keys {
    period: String,
    /// The period's reservations by the time they expire unsettled.
    expiring: String,
    tenant_requests: String,
    tenant_tokens: String,
    key_requests: String,
    key_tokens: String,
    reservation: String,
}

impl Keys {
    fn new(
        platform: &Platform,
        tenant_id: TenantId,
        api_key: Option<KeyPayer>,
        period_start: DateTime<Utc>,
        reservation_id: Uuid,
    ) -> Self {
        let tenant = tenant_id.as_uuid().to_string();
        let redis = &platform.redis;
        // Without a key, the key's limits are -1 and its keys are never read or written.
        let key = api_key.map_or_else(|| "none".to_owned(), |key| key.id.to_string());
        let period = redis.key(&[
            "budget",
            &tenant,
            "period",
            &period_start.format("%Y-%m").to_string(),
        ]);
        Self {
            expiring: format!("{period}:expiring"),
            period,
            tenant_requests: redis.key(&["budget", &tenant, "rate", "requests"]),
            tenant_tokens: redis.key(&["budget", &tenant, "rate", "tokens"]),
            key_requests: redis.key(&["budget", &tenant, "api-key", &key, "requests"]),
            key_tokens: redis.key(&["budget", &tenant, "api-key", &key, "tokens"]),
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

/// KEYS: period hash; the tenant's request and token limits; the API key's request and
/// token limits; the reservation hash; the period's expiring reservations.
///
/// ARGV: tokens, cost, monthly token limit, monthly spend limit, the tenant's requests
/// and tokens per minute, and the key's requests and tokens per minute (each -1 for
/// none). Then the period TTL, the reservation TTL, the seed tokens and spend (empty when
/// not read yet), and the reservation's id.
///
/// Returns `{"ok", [name, limit, remaining, reset µs]...}` for each per-minute limit that
/// applies, `{"seed"}` when the period hash must be seeded first, `{"month", name, used}`
/// for a monthly limit, `{"wait", name, µs}` for a per-minute limit that has room after
/// that wait, or `{"never", name}` for one that the request is larger than. Nothing is
/// written unless every limit has room.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        crate::gcra::LUA_FUNCTIONS,
        r#"
local tokens = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[11] == '' then return {'seed'} end
  redis.call('HSET', KEYS[1], 'used_tokens', ARGV[11], 'used_spend', ARGV[12],
             'reserved_tokens', 0, 'reserved_spend', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[9])
end
-- Reservations that nothing settled in their lifetime, such as one of a worker that died
-- during a model call, give their amounts back.
local expired = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, 100)
for _, member in ipairs(expired) do
  local expired_tokens, expired_spend = string.match(member, ':(%d+):(%d+)$')
  redis.call('HINCRBY', KEYS[1], 'reserved_tokens', 0 - tonumber(expired_tokens))
  redis.call('HINCRBY', KEYS[1], 'reserved_spend', 0 - tonumber(expired_spend))
  redis.call('ZREM', KEYS[7], member)
end
local period = redis.call('HMGET', KEYS[1], 'used_tokens', 'used_spend',
                          'reserved_tokens', 'reserved_spend')
local period_tokens = (tonumber(period[1]) or 0) + (tonumber(period[3]) or 0)
local period_spend = (tonumber(period[2]) or 0) + (tonumber(period[4]) or 0)
local limit_tokens = tonumber(ARGV[3])
if tokens > 0 and limit_tokens >= 0 and period_tokens + tokens > limit_tokens then
  return {'month', 'tokens_per_month', tostring(period_tokens)}
end
local limit_spend = tonumber(ARGV[4])
if cost > 0 and limit_spend >= 0 and period_spend + cost > limit_spend then
  return {'month', 'spend_per_month', tostring(period_spend)}
end

-- The per-minute limits are GCRA limits (see `crate::gcra`).
local limits = {
  {KEYS[2], tonumber(ARGV[5]), 1, 'requests_per_minute'},
  {KEYS[3], tonumber(ARGV[6]), tokens, 'tokens_per_minute'},
  {KEYS[4], tonumber(ARGV[7]), 1, 'api_key_requests_per_minute'},
  {KEYS[5], tonumber(ARGV[8]), tokens, 'api_key_tokens_per_minute'},
}
local arrivals = {}
local refused, wait = nil, -1
for i, limit in ipairs(limits) do
  local per_minute = limit[2]
  if per_minute >= 0 then
    if per_minute == 0 or limit[3] > per_minute then return {'never', limit[4]} end
    local arrival, limit_wait = gcra_arrival(limit[1], per_minute, limit[3])
    if limit_wait > 0 then
      if limit_wait > wait then refused, wait = limit[4], limit_wait end
    else
      arrivals[i] = arrival
    end
  end
end
if refused then return {'wait', refused, string.format('%.0f', wait)} end

redis.call('HINCRBY', KEYS[1], 'reserved_tokens', tokens)
redis.call('HINCRBY', KEYS[1], 'reserved_spend', cost)
local member = ARGV[13] .. ':' .. string.format('%d', tokens) .. ':' .. string.format('%d', cost)
redis.call('ZADD', KEYS[7], now + tonumber(ARGV[10]) * 1000000, member)
redis.call('EXPIRE', KEYS[7], ARGV[9])
redis.call('HSET', KEYS[6], 'tokens', tokens, 'cost', cost, 'period', KEYS[1],
           'expiring', KEYS[7], 'member', member)
local status = {'ok'}
for i, limit in ipairs(limits) do
  local arrival = arrivals[i]
  if arrival then
    local interval = window / limit[2]
    gcra_store(limit[1], arrival)
    if i % 2 == 0 then
      -- The token limits get back what the reply does not use when it is settled.
      redis.call('HSET', KEYS[6], 'refund:' .. limit[1], string.format('%.6f', interval))
    end
    table.insert(status, limit[4])
    table.insert(status, tostring(limit[2]))
    table.insert(status, string.format('%.0f', math.floor((window - (arrival - now)) / interval)))
    table.insert(status, string.format('%.0f', arrival - now))
  end
end
redis.call('EXPIRE', KEYS[6], ARGV[10])
return status
"#
    ))
});

/// KEYS: reservation hash. ARGV: real tokens and cost. Moves the reservation's amounts
/// from reserved to used in its period, gives the tokens it reserved and did not use back
/// to its per-minute token limits (or takes the excess), and deletes the reservation.
/// Returns 1, or 0 when there was no reservation.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        crate::gcra::LUA_FUNCTIONS,
        r#"
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return 0 end
local reservation = {}
for i = 1, #fields, 2 do reservation[fields[i]] = fields[i + 1] end
local reserved = tonumber(reservation['tokens'])
local tokens = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local period = reservation['period']
-- A reservation that expired gave its amounts back already.
local held = true
if reservation['expiring'] then
  held = redis.call('ZREM', reservation['expiring'], reservation['member']) == 1
end
if redis.call('EXISTS', period) == 1 then
  if held then
    -- `0 - x` rather than `-x`: Lua turns `-0` into the string "-0", which HINCRBY
    -- rejects.
    redis.call('HINCRBY', period, 'reserved_tokens', 0 - reserved)
    redis.call('HINCRBY', period, 'reserved_spend', 0 - tonumber(reservation['cost']))
  end
  redis.call('HINCRBY', period, 'used_tokens', tokens)
  redis.call('HINCRBY', period, 'used_spend', cost)
end
for field, interval in pairs(reservation) do
  if string.sub(field, 1, 7) == 'refund:' then
    local key = string.sub(field, 8)
    local tat = tonumber(redis.call('GET', key))
    if tat then
      local arrival = tat - (reserved - tokens) * tonumber(interval)
      if arrival <= now then
        redis.call('DEL', key)
      else
        gcra_store(key, arrival)
      end
    end
  end
end
redis.call('DEL', KEYS[1])
return 1
"#
    ))
});

/// KEYS: period hash. ARGV: tokens and cost. Adds the usage of a reply whose reservation
/// was made without Redis to the period's count, when the period hash exists. A missing
/// hash is seeded later from the usage records, which contain this usage. Returns 1, or 0
/// without a hash.
static ADD_USAGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'used_tokens', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'used_spend', ARGV[2])
return 1
"#,
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn reply_keeps_the_tighter_limit() {
        let reply = strings(&[
            "ok",
            "requests_per_minute",
            "60",
            "40",
            "20000000",
            "api_key_requests_per_minute",
            "10",
            "3",
            "42000000",
            "tokens_per_minute",
            "1000",
            "900",
            "6000000",
        ]);
        let Reply::Reserved(status) = Reply::parse(&reply).unwrap() else {
            panic!("expected a reservation");
        };
        assert_eq!(
            status.requests,
            Some(Allowance {
                limit: 10,
                remaining: 3,
                reset: Duration::from_secs(42),
            })
        );
        assert_eq!(
            status.tokens,
            Some(Allowance {
                limit: 1000,
                remaining: 900,
                reset: Duration::from_secs(6),
            })
        );
    }

    #[test]
    fn reply_names_the_refusing_limit() {
        assert_eq!(
            Reply::parse(&strings(&["wait", "api_key_tokens_per_minute", "1500001"])).unwrap(),
            Reply::Wait {
                limit: KEY_TOKENS,
                wait: Duration::from_micros(1_500_001),
            }
        );
        assert_eq!(
            Reply::parse(&strings(&["month", "spend_per_month", "12"])).unwrap(),
            Reply::OverMonth {
                limit: SPEND_PER_MONTH,
                used: 12,
            }
        );
        assert!(Reply::parse(&strings(&["wait", "made_up", "1"])).is_err());
        assert!(Reply::parse(&strings(&["ok", "requests_per_minute", "1"])).is_err());
    }

    #[test]
    fn key_limits_take_the_lower_value() {
        let mut plan = crate::plans::defaults(entity::PlanKind::Pro);
        plan.api_key_requests_per_minute = Some(100);
        plan.api_key_tokens_per_minute = None;
        let key = KeyPayer {
            id: Uuid::nil(),
            own: MinuteLimits {
                requests_per_minute: Some(500),
                tokens_per_minute: Some(2_000),
            },
        };
        assert_eq!(
            key.limits(&plan),
            MinuteLimits {
                requests_per_minute: Some(100),
                tokens_per_minute: Some(2_000),
            }
        );
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(5_001)), 6);
        assert_eq!(whole_seconds(Duration::from_secs(5)), 5);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }
}
