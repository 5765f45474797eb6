//! Usage: per-completion records and the billing period's totals.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{usage_counter, usage_record};
use service::usage;

use super::{
    agents::Provider,
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::GqlResult,
    scalars::BigInt,
};

/// Outcome of a reply's lookup in the response cache.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseCacheLookup {
    /// Served from the cache without a provider call.
    Hit,
    /// Not in the cache, so the provider was called.
    Miss,
}

impl From<entity::ResponseCacheLookup> for ResponseCacheLookup {
    fn from(lookup: entity::ResponseCacheLookup) -> Self {
        match lookup {
            entity::ResponseCacheLookup::Hit => Self::Hit,
            entity::ResponseCacheLookup::Miss => Self::Miss,
        }
    }
}

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
    /// Outcome of the reply's response cache lookup, on the reply's first record only;
    /// null when the reply made no lookup. A hit has the original reply's token counts and
    /// a cost of 0, and monthly token and spend quotas leave it out.
    pub response_cache: Option<ResponseCacheLookup>,
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
            response_cache: record.response_cache.map(Into::into),
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
    /// Tokens of response cache hits, part of `inputTokens` and `outputTokens`. They cost
    /// nothing and the monthly token quota leaves them out.
    pub response_cache_hit_tokens: BigInt,
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
            response_cache_hit_tokens: BigInt(counter.response_cache_hit_tokens),
        }
    }
}

/// Tokens and cost of a set of usage records.
#[derive(SimpleObject)]
pub struct SpendTotals {
    pub input_tokens: BigInt,
    pub output_tokens: BigInt,
    /// Input tokens served from the provider's prompt cache; part of `inputTokens`.
    pub cached_input_tokens: BigInt,
    /// Cost in micro-dollars of the records whose price was known.
    pub cost_micros: BigInt,
    pub record_count: BigInt,
    /// Records made when their model had no known price. Their cost is unknown, not zero,
    /// and `costMicros` leaves it out.
    pub unpriced_record_count: BigInt,
    /// Input tokens of the unpriced records.
    pub unpriced_input_tokens: BigInt,
    /// Output tokens of the unpriced records.
    pub unpriced_output_tokens: BigInt,
    /// Records whose token counts were estimated from the text because the provider
    /// reported none, for example when a stream was cut.
    pub estimated_record_count: BigInt,
}

impl From<usage::SpendLine> for SpendTotals {
    fn from(line: usage::SpendLine) -> Self {
        Self {
            input_tokens: BigInt(line.input_tokens),
            output_tokens: BigInt(line.output_tokens),
            cached_input_tokens: BigInt(line.cached_input_tokens),
            cost_micros: BigInt(line.cost_micros),
            record_count: BigInt(line.record_count),
            unpriced_record_count: BigInt(line.unpriced_record_count),
            unpriced_input_tokens: BigInt(line.unpriced_input_tokens),
            unpriced_output_tokens: BigInt(line.unpriced_output_tokens),
            estimated_record_count: BigInt(line.estimated_record_count),
        }
    }
}

/// Spend on one provider and model.
#[derive(SimpleObject)]
pub struct ModelSpend {
    pub provider: Provider,
    pub model: String,
    #[graphql(flatten)]
    pub totals: SpendTotals,
}

/// Spend on one UTC day.
#[derive(SimpleObject)]
pub struct DaySpend {
    /// Midnight UTC at the start of the day.
    pub day: DateTime<Utc>,
    #[graphql(flatten)]
    pub totals: SpendTotals,
}

/// Spend of one agent's conversations.
#[derive(SimpleObject)]
pub struct AgentSpend {
    /// Null for replies in conversations without an agent, or whose agent was deleted.
    pub agent_id: Option<ID>,
    #[graphql(flatten)]
    pub totals: SpendTotals,
}

/// Spend of one member's messages.
#[derive(SimpleObject)]
pub struct UserSpend {
    /// Null for usage whose user was deleted.
    pub user_id: Option<ID>,
    #[graphql(flatten)]
    pub totals: SpendTotals,
}

/// The tenant's spend over a time range, in total and per model, day, agent and user.
#[derive(SimpleObject)]
pub struct Spend {
    /// Start of the range, inclusive.
    pub from: DateTime<Utc>,
    /// End of the range, exclusive.
    pub to: DateTime<Utc>,
    pub total: SpendTotals,
    /// One entry per provider and model with usage in the range, the most expensive first.
    pub by_model: Vec<ModelSpend>,
    /// One entry per UTC day with usage in the range, oldest first.
    pub by_day: Vec<DaySpend>,
    /// One entry per agent with usage in the range, the most expensive first.
    pub by_agent: Vec<AgentSpend>,
    /// One entry per user with usage in the range, the most expensive first.
    pub by_user: Vec<UserSpend>,
}

impl From<usage::Spend> for Spend {
    fn from(spend: usage::Spend) -> Self {
        Self {
            from: spend.from,
            to: spend.to,
            total: spend.total.into(),
            by_model: spend
                .by_model
                .into_iter()
                .map(|(provider, model, line)| ModelSpend {
                    provider: Provider::from_stored(&provider),
                    model,
                    totals: line.into(),
                })
                .collect(),
            by_day: spend
                .by_day
                .into_iter()
                .map(|(day, line)| DaySpend {
                    day,
                    totals: line.into(),
                })
                .collect(),
            by_agent: spend
                .by_agent
                .into_iter()
                .map(|(agent_id, line)| AgentSpend {
                    agent_id: agent_id.map(Into::into),
                    totals: line.into(),
                })
                .collect(),
            by_user: spend
                .by_user
                .into_iter()
                .map(|(user_id, line)| UserSpend {
                    user_id: user_id.map(Into::into),
                    totals: line.into(),
                })
                .collect(),
        }
    }
}

/// Response cache lookups and hits of a set of replies.
#[derive(SimpleObject)]
pub struct CacheLookupTotals {
    /// Replies that looked up the response cache.
    pub lookups: BigInt,
    /// Replies served from the cache, without a provider call.
    pub hits: BigInt,
    /// `hits / lookups`, from 0 to 1; null without lookups.
    pub hit_rate: Option<f64>,
}

impl From<usage::CacheLookups> for CacheLookupTotals {
    fn from(line: usage::CacheLookups) -> Self {
        Self {
            lookups: BigInt(line.lookups),
            hits: BigInt(line.hits),
            hit_rate: (line.lookups > 0).then(|| line.hits as f64 / line.lookups as f64),
        }
    }
}

/// Response cache lookups of one agent's replies.
#[derive(SimpleObject)]
pub struct AgentCacheLookups {
    /// Null for replies in conversations without an agent, or whose agent was deleted.
    pub agent_id: Option<ID>,
    #[graphql(flatten)]
    pub totals: CacheLookupTotals,
}

/// The tenant's response cache lookups and hits over a time range.
#[derive(SimpleObject)]
pub struct ResponseCacheStats {
    /// Start of the range, inclusive.
    pub from: DateTime<Utc>,
    /// End of the range, exclusive.
    pub to: DateTime<Utc>,
    #[graphql(flatten)]
    pub totals: CacheLookupTotals,
    /// One entry per agent with lookups in the range, the most lookups first.
    pub by_agent: Vec<AgentCacheLookups>,
}

impl From<usage::ResponseCacheStats> for ResponseCacheStats {
    fn from(stats: usage::ResponseCacheStats) -> Self {
        Self {
            from: stats.from,
            to: stats.to,
            totals: stats.total.into(),
            by_agent: stats
                .by_agent
                .into_iter()
                .map(|(agent_id, line)| AgentCacheLookups {
                    agent_id: agent_id.map(Into::into),
                    totals: line.into(),
                })
                .collect(),
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

    /// The tenant's spend from its usage records created in `[from, to)`, in total and per
    /// provider and model, UTC day, agent and user. Both bounds default to the current billing period (the calendar
    /// month in UTC), and the range may span at most 366 days. Unlike `usage`, this includes
    /// records the worker has not counted yet. Records older than `USAGE_RETENTION_DAYS`
    /// are kept as daily totals, which count when their UTC day starts within the range.
    async fn spend(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Spend> {
        Ok(usage::spend(platform(ctx), caller(ctx)?, from, to)
            .await
            .gql()?
            .into())
    }

    /// The tenant's response cache lookups and hits in `[from, to)`, in total and per agent,
    /// optionally of one agent only. Both bounds default to the current billing period, and
    /// the range may span at most 366 days. Counts include replies the worker has not
    /// counted yet and the daily totals of records older than `USAGE_RETENTION_DAYS`.
    async fn response_cache_stats(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        agent_id: Option<ID>,
    ) -> async_graphql::Result<ResponseCacheStats> {
        let agent_id = agent_id.map(|id| parse_id("agentId", &id)).transpose()?;
        let stats = usage::response_cache_stats(platform(ctx), caller(ctx)?, from, to, agent_id)
            .await
            .gql()?;
        Ok(stats.into())
    }

    /// The tenant's usage records, newest first. Records older than `USAGE_RETENTION_DAYS`
    /// are rolled up into daily totals and no longer listed here; `spend` still counts them.
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
