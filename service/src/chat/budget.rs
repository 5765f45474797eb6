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

/// Checks that the tenant's settings still allow the provider and model, then reserves the
/// reply's largest possible usage, priced at the tenant's price for the model, against the
/// tenant's plan limits and those of `api_key`, the key the request was made with. `db` is
/// a transaction of the tenant's.
pub async fn reserve_for<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    api_key: Option<KeyPayer>,
    provider: ProviderKind,
    request: &ChatRequest,
    reply_id: Uuid,
) -> ServiceResult<RateStatus> {
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
    let output_tokens = request
        .max_tokens
        .map_or(DEFAULT_RESERVED_OUTPUT_TOKENS, i64::from);
    let maximum = Usage {
        input_tokens: super::generation::estimate_usage(request, "").input_tokens,
        output_tokens,
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    let estimate = Estimate {
        tokens: maximum.input_tokens + maximum.output_tokens,
        cost_micros: price.map_or(0, |price| pricing::cost_micros(&price, &maximum)),
    };
    quota::reserve(
        platform, db, tenant_id, &limits, api_key, reply_id, estimate,
    )
    .await
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
