//! Rate-limit headers: what the per-minute limits have left after a chat request, in the
//! `x-ratelimit-*` form that LLM provider APIs use.

use std::time::Duration;

use async_graphql::Context;
use service::{
    ServiceError,
    quota::{Allowance, RateStatus},
};

/// The header names of one kind of limit.
struct Names {
    limit: &'static str,
    remaining: &'static str,
    reset: &'static str,
}

const REQUESTS: Names = Names {
    limit: "x-ratelimit-limit-requests",
    remaining: "x-ratelimit-remaining-requests",
    reset: "x-ratelimit-reset-requests",
};
const TOKENS: Names = Names {
    limit: "x-ratelimit-limit-tokens",
    remaining: "x-ratelimit-remaining-tokens",
    reset: "x-ratelimit-reset-tokens",
};

/// Every rate-limit header, for the CORS headers that browsers may read.
pub const ALL: [&str; 6] = [
    REQUESTS.limit,
    REQUESTS.remaining,
    REQUESTS.reset,
    TOKENS.limit,
    TOKENS.remaining,
    TOKENS.reset,
];

/// Adds the rate-limit headers of `status` to the HTTP response: for requests and for
/// tokens, the limit, what remains, and the time until the limit is whole again.
pub fn set(ctx: &Context<'_>, status: &RateStatus) {
    for (names, allowance) in [(REQUESTS, status.requests), (TOKENS, status.tokens)] {
        let Some(Allowance {
            limit,
            remaining,
            reset,
        }) = allowance
        else {
            continue;
        };
        ctx.insert_http_header(names.limit, limit.to_string());
        ctx.insert_http_header(names.remaining, remaining.to_string());
        ctx.insert_http_header(names.reset, seconds(reset));
    }
}

/// Adds the headers of a result: the status of an admitted request, or of the limit that
/// refused it.
pub fn set_for<T>(
    ctx: &Context<'_>,
    result: &Result<T, ServiceError>,
    status: impl FnOnce(&T) -> &RateStatus,
) {
    match result {
        Ok(value) => set(ctx, status(value)),
        Err(ServiceError::RateLimited { status, .. }) => set(ctx, status),
        Err(_) => {}
    }
}

/// Formats a duration as seconds with millisecond precision, such as `1.250s`.
fn seconds(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_in_seconds_with_milliseconds() {
        assert_eq!(seconds(Duration::from_micros(1_250_400)), "1.250s");
        assert_eq!(seconds(Duration::ZERO), "0.000s");
    }
}
