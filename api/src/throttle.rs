//! Throttling of sign-in and registration attempts per client IP address and per email
//! address, with in-process keyed rate limiters (GCRA, from the `governor` crate).
//!
//! Each api process counts on its own, so N replicas allow up to N times the configured
//! rate. The counters start empty when the process starts.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

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
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_email: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl SignInThrottle {
    pub fn new(per_ip_per_minute: NonZeroU32, per_email_per_minute: NonZeroU32) -> Self {
        Self {
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip_per_minute)),
            per_email: RateLimiter::keyed(Quota::per_minute(per_email_per_minute)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one attempt for `email` from `client_ip`, or returns the limit it ran into.
    ///
    /// The address is checked first, so an attempt rejected for its address does not use
    /// up the account's quota. Either key may be `None`: the transport may not know the
    /// address, and a malformed request may carry no email. That part is then not limited.
    pub fn check(&self, client_ip: Option<IpAddr>, email: Option<&str>) -> Result<(), Throttled> {
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
            assert_eq!(throttle.check(None, Some("ada@example.com")), Ok(()));
        }
        let rejected = throttle.check(None, Some("ada@example.com")).unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::Email);
        // One attempt comes back every 20 s with 3 per minute.
        assert!(rejected.retry_after_seconds() <= 20, "{rejected:?}");
        assert!(rejected.retry_after_seconds() >= 19, "{rejected:?}");
        assert_eq!(throttle.check(None, Some("grace@example.com")), Ok(()));
    }

    #[test]
    fn email_compared_trimmed_and_lowercase() {
        let throttle = throttle(100, 1);
        assert_eq!(throttle.check(None, Some("Ada@Example.com")), Ok(()));
        let rejected = throttle.check(None, Some(" ada@example.com ")).unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::Email);
    }

    #[test]
    fn ip_quota_covers_every_email() {
        let throttle = throttle(2, 100);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttle.check(Some(ip), Some("a@example.com")), Ok(()));
        assert_eq!(throttle.check(Some(ip), Some("b@example.com")), Ok(()));
        let rejected = throttle.check(Some(ip), Some("c@example.com")).unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::ClientIp);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(throttle.check(Some(other), Some("c@example.com")), Ok(()));
    }

    #[test]
    fn ip_rejection_keeps_email_quota() {
        let throttle = throttle(1, 1);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttle.check(Some(ip), Some("a@example.com")), Ok(()));
        let rejected = throttle.check(Some(ip), Some("b@example.com")).unwrap_err();
        assert_eq!(rejected.by, ThrottledBy::ClientIp);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(throttle.check(Some(other), Some("b@example.com")), Ok(()));
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
