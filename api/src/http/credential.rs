//! A watch on the credential of a long-lived connection: a WebSocket, or a Server-Sent
//! Events stream. It authenticated once, when it opened. While it stays open, an access
//! token expires, and a session, API key or membership can be revoked, or a role changed.

use std::{future::Future, pin::Pin, time::Duration};

use service::{Platform, RequestContext};
use tokio::time::{Instant, sleep_until};

use super::caller::identify;
use crate::graphql::context::Caller;

/// Why a connection's credential stopped holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lapsed {
    pub(super) reason: String,
    /// True when the credential still authenticates but with another role, or in a
    /// suspended tenant; false when it no longer authenticates.
    pub(super) forbidden: bool,
}

/// Completes once `token`, which authenticated as `context`, no longer holds: at the
/// access token's expiry, or at the first check every `WS_CREDENTIAL_CHECK_SECONDS` that
/// finds it revoked or granting another role.
pub(super) fn watch(
    platform: &Platform,
    token: String,
    context: RequestContext,
) -> Pin<Box<dyn Future<Output = Lapsed> + Send>> {
    let platform = platform.clone();
    let expires_at = expiry(&platform, &token);
    Box::pin(async move {
        let interval = platform.settings.realtime.credential_check_interval;
        let mut checks = tokio::time::interval_at(Instant::now() + interval, interval);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // An API key has no expiry; the timer then never fires.
        let expiry = sleep_until(expires_at.unwrap_or_else(far_future));
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                () = &mut expiry => {
                    return Lapsed {
                        reason: "the access token has expired".into(),
                        forbidden: false,
                    };
                }
                _ = checks.tick() => {
                    if let Some(lapsed) = check(&platform, &token, &context).await {
                        return lapsed;
                    }
                }
            }
        }
    })
}

/// When a JWT expires, as an instant on the runtime's clock; `None` for an API key.
fn expiry(platform: &Platform, token: &str) -> Option<Instant> {
    let claims = platform.tokens.verify(token).ok()?;
    let left = claims.exp - chrono::Utc::now().timestamp();
    Some(Instant::now() + Duration::from_secs(left.max(0) as u64))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Authenticates the credential again.
async fn check(platform: &Platform, token: &str, context: &RequestContext) -> Option<Lapsed> {
    let request_id = uuid::Uuid::now_v7().to_string();
    match identify(platform, Some(token), request_id).await {
        Caller::Authenticated(current) if current.role == context.role => None,
        // A failed check says nothing about the credential; the next one decides.
        Caller::Rejected(rejection) if rejection.unavailable => None,
        Caller::Authenticated(_) => Some(Lapsed {
            reason: "your role has changed, connect again".into(),
            forbidden: true,
        }),
        Caller::Rejected(rejection) => Some(Lapsed {
            reason: rejection.message,
            forbidden: rejection.forbidden,
        }),
        Caller::Anonymous => Some(Lapsed {
            reason: "the credentials are missing".into(),
            forbidden: false,
        }),
    }
}
