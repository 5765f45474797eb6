//! Per-minute limits that every instance shares: the generic cell rate algorithm (GCRA)
//! in Redis, on Redis's clock, one atomic script per decision.
//!
//! A limit's key contains its theoretical arrival time (TAT) in microseconds. A request of
//! cost c moves it c * 60 s / limit later, and is admitted when the TAT stays within a
//! minute of now. A minute's quota may therefore be spent at once, and it comes back
//! evenly over the minute.

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use crate::Platform;

/// Lua functions that the scripts using these limits start with, reading the `now` and
/// `window` defined here. `gcra_arrival(key, per_minute, cost)` returns the TAT a request
/// would leave and the wait in microseconds before it is admitted, 0 or less when it is
/// admitted now. `gcra_store(key, arrival)` keeps a TAT for as long as it matters.
pub(crate) const LUA_FUNCTIONS: &str = r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local window = 60000000
local function gcra_arrival(key, per_minute, cost)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local arrival = tat + cost * window / per_minute
  return arrival, arrival - window - now
end
local function gcra_store(key, arrival)
  redis.call('SET', key, string.format('%.0f', arrival),
             'PX', math.ceil((arrival - now) / 1000) + 1000)
end
"#;

/// A limit that refused a request: its index among the limits checked, and the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub retry_after: Duration,
}

/// Takes one request from each limit, given as a Redis key and its requests per minute
/// (at least 1), when all of them have room. Otherwise it takes nothing and returns the
/// first limit, in order, that has none.
pub async fn take(
    platform: &Platform,
    limits: &[(String, u32)],
) -> redis::RedisResult<Result<(), Refused>> {
    if limits.is_empty() {
        return Ok(Ok(()));
    }
    let mut invocation = TAKE.prepare_invoke();
    for (key, per_minute) in limits {
        invocation.key(key).arg((*per_minute).max(1));
    }
    let mut redis = platform.redis.shared().await?;
    let (refused, wait): (i64, i64) = invocation.invoke_async(&mut redis).await?;
    if refused == 0 {
        return Ok(Ok(()));
    }
    Ok(Err(Refused {
        index: usize::try_from(refused - 1).unwrap_or_default(),
        retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or_default()),
    }))
}

/// KEYS: one per limit. ARGV: each limit's requests per minute. Returns `{0, 0}` when every
/// limit took one request, or the 1-based index of the first refusing limit and its wait
/// in microseconds, writing nothing.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_FUNCTIONS}{}",
        r#"
local arrivals = {}
for i, key in ipairs(KEYS) do
  local arrival, wait = gcra_arrival(key, tonumber(ARGV[i]), 1)
  if wait > 0 then return {i, math.ceil(wait)} end
  arrivals[i] = arrival
end
for i, key in ipairs(KEYS) do gcra_store(key, arrivals[i]) end
return {0, 0}
"#
    ))
});
