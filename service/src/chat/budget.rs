//! The budget of one reply: its largest possible usage, reserved before the provider call
//! and settled with the real usage when the reply ends.

use providers::{ChatRequest, ProviderKind, Usage, pricing};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    Platform, TenantId,
    error::{ServiceError, ServiceResult},
    plans, prices,
    quota::{self, Estimate, KeyPayer, RateStatus},
    tenant_settings,
};

/// Output tokens reserved for a reply whose agent sets no maximum.
/// NOTE: a reply longer than this uses more than was reserved. The difference is settled
/// afterwards, so a budget can overshoot by that much per reply in flight.
pub const DEFAULT_RESERVED_OUTPUT_TOKENS: i64 = 4_096;

/// The share of the budgets a reply takes.
#[derive(Clone, Copy)]
pub enum Demand<'a> {
    /// A provider call with this request: its largest possible usage.
    Call(&'a ChatRequest),
    /// A reply served from the response cache for this request: one request, and no
    /// tokens or cost.
    Cached(&'a ChatRequest),
}

/// Checks that the tenant's settings still allow the provider and model, then reserves
/// what the reply demands against the tenant's plan limits and those of `api_key`, the key
/// the request was made with. A provider call reserves its largest possible usage, priced
/// at the tenant's price for the model. `db` is a transaction of the tenant's.
pub async fn reserve_for<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    api_key: Option<KeyPayer>,
    provider: ProviderKind,
    demand: Demand<'_>,
    reply_id: Uuid,
) -> ServiceResult<RateStatus> {
    let (Demand::Call(request) | Demand::Cached(request)) = demand;
    // NOTE: three statements on the chat path; one query joining plan, settings and
    // price would save two round trips.
    let limits = plans::limits_for(db, tenant_id).await?;
    let price = prices::price_for(db, tenant_id, provider, &request.model)
        .await?
        .map(|effective| effective.price);
    let settings = tenant_settings::for_tenant(db, tenant_id).await;
    // The settings may have changed since the conversation was created.
    settings?
        .check_allowed(provider, &request.model, "provider", "model")
        .map_err(|error| ServiceError::Forbidden(format!("this conversation's {error}")))?;
    let estimate = match demand {
        Demand::Cached(_) => Estimate {
            tokens: 0,
            cost_micros: 0,
        },
        Demand::Call(request) => {
            let input_tokens = super::generation::estimate_usage(request, "").input_tokens;
            let tokens_per_minute = quota::lowest(
                limits.limits.tokens_per_minute,
                api_key.and_then(|key| key.limits(&limits.limits).tokens_per_minute),
            );
            let maximum = Usage {
                input_tokens,
                output_tokens: reserved_output(request.max_tokens, input_tokens, tokens_per_minute),
                cached_input_tokens: None,
                reasoning_tokens: None,
            };
            Estimate {
                tokens: maximum.input_tokens + maximum.output_tokens,
                cost_micros: price.map_or(0, |price| pricing::cost_micros(&price, &maximum)),
            }
        }
    };
    quota::reserve(
        platform, db, tenant_id, &limits, api_key, reply_id, estimate,
    )
    .await
}

/// Returns the output tokens a call reserves: its maximum, or without one the default.
/// The default is lowered to what a minute's token limit leaves beside the prompt, so that
/// a limit below the default does not refuse every reply that sets no maximum.
fn reserved_output(
    max_tokens: Option<u32>,
    input_tokens: i64,
    tokens_per_minute: Option<i64>,
) -> i64 {
    match (max_tokens, tokens_per_minute) {
        (Some(max_tokens), _) => i64::from(max_tokens),
        (None, Some(per_minute)) => {
            DEFAULT_RESERVED_OUTPUT_TOKENS.min((per_minute - input_tokens).max(1))
        }
        (None, None) => DEFAULT_RESERVED_OUTPUT_TOKENS,
    }
}

/// Settles the reply's reservation with its real usage. A model without a price counts
/// its tokens and no cost.
pub async fn settle(
    platform: &Platform,
    tenant_id: TenantId,
    reply_id: Uuid,
    usage: Option<&Usage>,
    cost_micros: Option<i64>,
) {
    let tokens = usage.map_or(0, |usage| usage.input_tokens + usage.output_tokens);
    quota::settle_or_log(
        platform,
        tenant_id,
        reply_id,
        tokens,
        cost_micros.unwrap_or(0),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_reservation_fits_the_minute() {
        assert_eq!(reserved_output(Some(200), 50, Some(100)), 200);
        assert_eq!(
            reserved_output(None, 50, None),
            DEFAULT_RESERVED_OUTPUT_TOKENS
        );
        assert_eq!(reserved_output(None, 50, Some(3_000)), 2_950);
        assert_eq!(
            reserved_output(None, 50, Some(1_000_000)),
            DEFAULT_RESERVED_OUTPUT_TOKENS
        );
        assert_eq!(reserved_output(None, 5_000, Some(3_000)), 1);
    }
}
