//! The per-minute limits of one process, which stand in for the shared limits in Redis
//! while Redis is unreachable.
//!
//! Each limit is a GCRA limiter of the `governor` crate with the same shape as the shared
//! one: a minute's quota may be spent at once, then it comes back evenly over the minute.
//! The counts are this process's alone, so N api instances admit up to N times a limit
//! while Redis is down. They start with a whole minute's quota when the fallback begins,
//! and are dropped when Redis is reachable again.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use governor::{
    DefaultDirectRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use tracing::{info, warn};
use uuid::Uuid;

/// One per-minute limit of a tenant or an API key, and what a request takes from it.
#[derive(Debug, Clone, Copy)]
pub struct LocalCheck {
    /// The limit's name, such as `requests_per_minute`; one limiter is kept per name and id.
    pub limit: &'static str,
    /// The tenant's or the API key's id.
    pub id: Uuid,
    pub per_minute: i64,
    pub cost: i64,
}

/// The reason a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRefusal {
    /// The limit has no room now; it has after `retry_after`.
    Later {
        limit: &'static str,
        retry_after: Duration,
    },
    /// The request takes more than the limit allows in a whole minute.
    Never { limit: &'static str },
}

struct Limiter {
    per_minute: u32,
    limiter: DefaultDirectRateLimiter,
}

/// The process's stand-in limiters and whether they are in use.
#[derive(Default)]
pub struct LocalLimits {
    limiters: Mutex<HashMap<(&'static str, Uuid), Limiter>>,
    /// Reservations admitted by these limiters and not settled yet, with the Redis key of
    /// their period's budget.
    reservations: Mutex<HashMap<Uuid, String>>,
    clock: DefaultClock,
    active: AtomicBool,
}

impl LocalLimits {
    /// Takes each check's cost from its limiter, in order, or returns the first refusal.
    /// A refused request keeps what it took from the limiters checked before, so these
    /// checks, which run only while Redis is down, err on the side of refusing.
    pub fn check(&self, checks: &[LocalCheck]) -> Result<(), LocalRefusal> {
        self.begin();
        let mut limiters = lock(&self.limiters);
        for check in checks {
            let Some(per_minute) =
                NonZeroU32::new(check.per_minute.clamp(0, u32::MAX as i64) as u32)
            else {
                return Err(LocalRefusal::Never { limit: check.limit });
            };
            let Some(cost) = NonZeroU32::new(check.cost.clamp(0, u32::MAX as i64) as u32) else {
                continue;
            };
            let entry = limiters
                .entry((check.limit, check.id))
                .or_insert_with(|| Limiter::new(per_minute));
            // A changed plan starts the limit afresh.
            if entry.per_minute != per_minute.get() {
                *entry = Limiter::new(per_minute);
            }
            match entry.limiter.check_n(cost) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    return Err(LocalRefusal::Later {
                        limit: check.limit,
                        retry_after: not_until.wait_time_from(self.clock.now()),
                    });
                }
                Err(_) => return Err(LocalRefusal::Never { limit: check.limit }),
            }
        }
        Ok(())
    }

    /// Remembers a reservation admitted while Redis was unreachable, until it is settled.
    pub fn remember_reservation(&self, reservation_id: Uuid, period_key: String) {
        lock(&self.reservations).insert(reservation_id, period_key);
    }

    /// Removes a reservation admitted while Redis was unreachable and returns its period
    /// key, or `None` for a reservation made in Redis.
    pub fn take_reservation(&self, reservation_id: Uuid) -> Option<String> {
        lock(&self.reservations).remove(&reservation_id)
    }

    /// Returns whether the stand-in limiters are in use.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Marks the limits as shared again once Redis is reachable, dropping the local counts.
    pub fn end(&self) {
        // Read first, so that the usual call, with Redis up, writes nothing.
        if self.is_active() && self.active.swap(false, Ordering::Relaxed) {
            lock(&self.limiters).clear();
            info!("Redis is reachable again; rate limits are shared by every api instance again");
        }
    }

    fn begin(&self) {
        if !self.active.swap(true, Ordering::Relaxed) {
            warn!(
                "Redis is unreachable; this api instance enforces the per-minute rate limits \
                 on its own until Redis answers, so each instance admits up to the full limit"
            );
        }
    }
}

/// Locks `mutex`, also after a panic elsewhere: the maps hold no invariant a panic breaks.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Limiter {
    fn new(per_minute: NonZeroU32) -> Self {
        Self {
            per_minute: per_minute.get(),
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(limit: &'static str, id: Uuid, per_minute: i64, cost: i64) -> LocalCheck {
        LocalCheck {
            limit,
            id,
            per_minute,
            cost,
        }
    }

    #[test]
    fn quota_spent_then_refused_with_wait() {
        let limits = LocalLimits::default();
        let tenant = Uuid::now_v7();
        for _ in 0..3 {
            assert_eq!(
                limits.check(&[check("requests_per_minute", tenant, 3, 1)]),
                Ok(())
            );
        }
        let refusal = limits
            .check(&[check("requests_per_minute", tenant, 3, 1)])
            .unwrap_err();
        let LocalRefusal::Later { limit, retry_after } = refusal else {
            panic!("expected a wait, got {refusal:?}");
        };
        assert_eq!(limit, "requests_per_minute");
        // One request comes back every 20 s with 3 per minute.
        assert!(retry_after <= Duration::from_secs(20), "{retry_after:?}");
        assert!(retry_after >= Duration::from_secs(19), "{retry_after:?}");
        assert!(limits.is_active());
    }

    #[test]
    fn tenants_counted_apart() {
        let limits = LocalLimits::default();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            limits.check(&[check("requests_per_minute", first, 1, 1)]),
            Ok(())
        );
        assert!(
            limits
                .check(&[check("requests_per_minute", first, 1, 1)])
                .is_err()
        );
        assert_eq!(
            limits.check(&[check("requests_per_minute", second, 1, 1)]),
            Ok(())
        );
    }

    #[test]
    fn cost_over_the_limit_is_never_allowed() {
        let limits = LocalLimits::default();
        let tenant = Uuid::now_v7();
        assert_eq!(
            limits.check(&[check("tokens_per_minute", tenant, 100, 101)]),
            Err(LocalRefusal::Never {
                limit: "tokens_per_minute"
            })
        );
        assert_eq!(
            limits.check(&[check("requests_per_minute", tenant, 0, 1)]),
            Err(LocalRefusal::Never {
                limit: "requests_per_minute"
            })
        );
    }

    #[test]
    fn ending_drops_the_counts() {
        let limits = LocalLimits::default();
        let tenant = Uuid::now_v7();
        assert_eq!(
            limits.check(&[check("requests_per_minute", tenant, 1, 1)]),
            Ok(())
        );
        limits.end();
        assert!(!limits.is_active());
        assert_eq!(
            limits.check(&[check("requests_per_minute", tenant, 1, 1)]),
            Ok(())
        );
    }
}
