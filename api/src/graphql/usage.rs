//! Usage: per-completion records and the billing period's totals.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{usage_counter, usage_record};
use service::usage;

use super::{
    agents::Provider,
    connection::{Paged, page_request, to_connection},
    context::{caller, platform},
    error::GqlResult,
    scalars::BigInt,
};

/// Tokens and cost of one completion.
#[derive(SimpleObject)]
pub struct UsageRecord {
    pub id: ID,
    pub provider: Provider,
    pub model: String,
    pub input_tokens: BigInt,
    pub output_tokens: BigInt,
    /// Input tokens the provider served from its prompt cache, billed at its cached price.
    pub cached_input_tokens: BigInt,
    /// Cost in micro-dollars; 0 when `priceKnown` is false.
    pub cost_micros: BigInt,
    /// False when the model is missing from the price table, so the cost is unknown
    /// rather than zero.
    pub price_known: bool,
    /// True when the provider reported no usage and the counts were estimated from the text.
    pub estimated: bool,
    /// True once the record is added to the billing period's totals.
    pub counted: bool,
    pub user_id: Option<ID>,
    pub agent_id: Option<ID>,
    pub conversation_id: Option<ID>,
    pub message_id: Option<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<usage_record::Model> for UsageRecord {
    fn from(record: usage_record::Model) -> Self {
        Self {
            id: record.id.into(),
            provider: Provider::from_stored(&record.provider),
            model: record.model,
            input_tokens: BigInt(record.input_tokens),
            output_tokens: BigInt(record.output_tokens),
            cached_input_tokens: BigInt(record.cached_input_tokens),
            cost_micros: BigInt(record.cost_micros),
            price_known: record.price_known,
            estimated: record.estimated,
            counted: record.counted_at.is_some(),
            user_id: record.user_id.map(Into::into),
            agent_id: record.agent_id.map(Into::into),
            conversation_id: record.conversation_id.map(Into::into),
            message_id: record.message_id.map(Into::into),
            created_at: record.created_at,
        }
    }
}

/// The tenant's counted usage in one billing period (a calendar month in UTC).
#[derive(SimpleObject)]
pub struct UsagePeriod {
    pub period_start: DateTime<Utc>,
    pub input_tokens: BigInt,
    pub output_tokens: BigInt,
    /// Cost in micro-dollars.
    pub cost_micros: BigInt,
    /// Usage records counted so far; records are counted by the worker shortly after
    /// each completion.
    pub record_count: BigInt,
    /// Counted records whose model had no known price; `costMicros` leaves them out.
    pub unpriced_record_count: BigInt,
}

impl From<usage_counter::Model> for UsagePeriod {
    fn from(counter: usage_counter::Model) -> Self {
        Self {
            period_start: counter.period_start,
            input_tokens: BigInt(counter.input_tokens),
            output_tokens: BigInt(counter.output_tokens),
            cost_micros: BigInt(counter.cost_micros),
            record_count: BigInt(counter.record_count),
            unpriced_record_count: BigInt(counter.unpriced_record_count),
        }
    }
}

#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// The tenant's usage in the current billing period.
    async fn usage(&self, ctx: &Context<'_>) -> async_graphql::Result<UsagePeriod> {
        Ok(usage::current_period(platform(ctx), caller(ctx)?)
            .await
            .gql()?
            .into())
    }

    /// The tenant's usage records, newest first.
    async fn usage_records(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<UsageRecord>> {
        let request = page_request(first, after);
        let page = usage::records(platform(ctx), caller(ctx)?, &request)
            .await
            .gql()?;
        Ok(to_connection(page, UsageRecord::from))
    }
}
