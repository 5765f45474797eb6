//! Throttling of sign-in and registration attempts per client IP address and per email
//! address, with per-minute GCRA limits.
//!
//! The limits live in Redis, so every api instance shares them (see [`service::gcra`]).
//! While Redis is unreachable, each instance counts on its own with in-process keyed
//! limiters of the same shape (from the `governor` crate), so N instances allow up to N
//! times the configured rate until Redis is reachable again.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use service::{Platform, auth::tokens::hash_token, gcra};
use tracing::{info, warn};

/// Checks between two sweeps that drop the state of keys that are full again, so that
/// the limiters' memory stays bounded by the keys seen within about a minute.
const CHECKS_PER_SWEEP: u64 = 1024;

/// The limit that rejected an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottledBy {
    ClientIp,
    Email,
}

/// A rejected attempt: the limit it ran into and how long until the next one is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub by: ThrottledBy,
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds until the next attempt is allowed, rounded up and at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        let seconds = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            seconds + 1
        } else {
            seconds
        };
        rounded.max(1)
    }
}

/// Per-minute quotas of sign-in attempts. A full quota may be spent at once, then one
/// attempt comes back every `60 / quota` seconds.
pub struct SignInThrottle {
    per_ip_per_minute: NonZeroU32,
    per_email_per_minute: NonZeroU32,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_email: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
    /// Whether the last check counted in this process because Redis was unreachable.
    local: AtomicBool,
}

impl SignInThrottle {
    pub fn new(per_ip_per_minute: NonZeroU32, per_email_per_minute: NonZeroU32) -> Self {
        Self {
            per_ip_per_minute,
            per_email_per_minute,
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip_per_minute)),
            per_email: RateLimiter::keyed(Quota::per_minute(per_email_per_minute)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
            local: AtomicBool::new(false),
        }
    }

    /// Counts one attempt for `email` from `client_ip` in the limits that every instance
    /// shares, or returns the limit it ran into. A refused attempt counts in neither limit.
    /// While Redis is unreachable, the attempt counts in this process's limiters instead.
    ///
    /// Either key may be `None`: the transport may not know the address, and a malformed
    /// request may carry no email. That part is then not limited.
    pub async fn check(
        &self,
        platform: &Platform,
        client_ip: Option<IpAddr>,
        email: Option<&str>,
    ) -> Result<(), Throttled> {
        let mut limits = Vec::with_capacity(2);
        let mut kinds = Vec::with_capacity(2);
        if let Some(ip) = client_ip {
            let key = platform.redis.key(&["sign-in", "ip", &ip.to_string()]);
            limits.push((key, self.per_ip_per_minute.get()));
            kinds.push(ThrottledBy::ClientIp);
        }
        if let Some(email) = email {
            // The address is hashed, so that Redis contains no email addresses.
            let hash = hash_token(&normalize_email(email));
            limits.push((
                platform.redis.key(&["sign-in", "email", &hash]),
                self.per_email_per_minute.get(),
            ));
            kinds.push(ThrottledBy::Email);
        }
        match gcra::take(platform, &limits).await {
            Ok(taken) => {
                if self.local.swap(false, Ordering::Relaxed) {
                    info!(
                        "Redis answers again; sign-in attempts are counted by every api instance together"
                    );
                }
                taken.map_err(|refused| Throttled {
                    by: kinds[refused.index],
                    retry_after: refused.retry_after,
                })
            }
            Err(error) => {
                if !self.local.swap(true, Ordering::Relaxed) {
                    warn!(
                        %error,
                        "counting sign-in attempts in Redis failed; this api instance counts \
                         them on its own until Redis answers"
                    );
                }
                self.check_locally(client_ip, email)
            }
        }
    }

    /// Counts one attempt in this process's limiters, or returns the limit it ran into.
    /// The address is checked first, so an attempt rejected for its address does not use
    /// up the account's quota.
    fn check_locally(
        &self,
        client_ip: Option<IpAddr>,
        email: Option<&str>,
    ) -> Result<(), Throttled> {
        self.sweep_now_and_then();
        if let Some(ip) = client_ip {
            self.per_ip.check_key(&ip).map_err(|not_until| Throttled {
                by: ThrottledBy::ClientIp,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })?;
        }
        let Some(email) = email else {
            return Ok(());
        };
        self.per_email
            .check_key(&normalize_email(email))
            .map_err(|not_until| Throttled {
                by: ThrottledBy::Email,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    fn sweep_now_and_then(&self) {
        let checks = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if checks.is_multiple_of(CHECKS_PER_SWEEP) {
            self.per_ip.retain_recent();
            self.per_ip.shrink_to_fit();
            self.per_email.retain_recent();
            self.per_email.shrink_to_fit();
        }
    }
}

/// Normalizes an email address the way sign-in looks it up: trimmed and lowercase.
fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_ip: u32, per_email: u32) -> SignInThrottle {
        SignInThrottle::new(
            NonZeroU32::new(per_ip).unwrap(),
            NonZeroU32::new(per_email).unwrap(),
        )
    }

    #[test]
    fn email_quota_spent_then_rejected() {
        let throttle = throttle(100, 3);
        for _ in 0..3 {
            assert_eq!(
                throttle.check_locally(None, Some("ada@example.com")),
                Ok(())
            );
        }
        let rejected = throttle
            .check_locally(None, Some("ada@example.com"))
            .unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::Email);
        // One attempt comes back every 20 s with 3 per minute.
        assert!(rejected.retry_after_seconds() <= 20, "{rejected:?}");
        assert!(rejected.retry_after_seconds() >= 19, "{rejected:?}");
        assert_eq!(
            throttle.check_locally(None, Some("grace@example.com")),
            Ok(())
        );
    }

    #[test]
    fn email_compared_trimmed_and_lowercase() {
        let throttle = throttle(100, 1);
        assert_eq!(
            throttle.check_locally(None, Some("Ada@Example.com")),
            Ok(())
        );
        let rejected = throttle
            .check_locally(None, Some(" ada@example.com "))
            .unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::Email);
    }

    #[test]
    fn ip_quota_covers_every_email() {
        let throttle = throttle(2, 100);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            throttle.check_locally(Some(ip), Some("a@example.com")),
            Ok(())
        );
        assert_eq!(
            throttle.check_locally(Some(ip), Some("b@example.com")),
            Ok(())
        );
        let rejected = throttle
            .check_locally(Some(ip), Some("c@example.com"))
            .unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::ClientIp);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            throttle.check_locally(Some(other), Some("c@example.com")),
            Ok(())
        );
    }

    #[test]
    fn ip_rejection_keeps_email_quota() {
        let throttle = throttle(1, 1);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            throttle.check_locally(Some(ip), Some("a@example.com")),
            Ok(())
        );
        let rejected = throttle
            .check_locally(Some(ip), Some("b@example.com"))
            .unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::ClientIp);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            throttle.check_locally(Some(other), Some("b@example.com")),
            Ok(())
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        let throttled = |retry_after| Throttled {
            by: ThrottledBy::Email,
            retry_after,
        };
        assert_eq!(
            throttled(Duration::from_millis(5_001)).retry_after_seconds(),
            6
        );
        assert_eq!(throttled(Duration::from_secs(5)).retry_after_seconds(), 5);
        assert_eq!(throttled(Duration::ZERO).retry_after_seconds(), 1);
    }
}
