//! Usage accounting: billing periods, counting records into per-period counters, reports.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use entity::{usage_counter, usage_record};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Statement};
use uuid::Uuid;

use crate::webhooks::{self, Outbox, QuotaThreshold};
use crate::{
    Platform, RequestContext, TenantId,
    error::{ServiceError, ServiceResult},
    pagination::{Order, Page, PageRequest, fetch_tenant_page},
};

/// Returns the calendar month in UTC that contains `at`, as `[start, end)`.
pub fn billing_period(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc
        .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(at);
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    let end = Utc
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .unwrap_or(at);
    (start, end)
}

/// [`count_uncounted`] in a transaction of the tenant's. When the count takes the current
/// period's usage to 80% or 100% of a monthly quota of the plan, the same transaction
/// records the webhook event, so each crossing is announced once.
pub async fn count_tenant(platform: &Platform, tenant_id: Uuid) -> ServiceResult<u64> {
    let tenant = TenantId::new(tenant_id);
    let txn = platform.tenant_tx(tenant).await?;
    let (period_start, _) = billing_period(Utc::now());
    let before = period_totals(&txn, tenant_id, period_start).await?;
    let counted = count_uncounted(&txn, tenant_id).await?;
    let mut outbox = Outbox::default();
    if counted > 0 {
        let after = period_totals(&txn, tenant_id, period_start).await?;
        let limits = crate::plans::limits_for(&txn, tenant).await?.limits;
        let quotas = [
            (
                "tokens_per_month",
                limits.tokens_per_month,
                before.0,
                after.0,
            ),
            (
                "spend_per_month_micros",
                limits.spend_per_month_micros,
                before.1,
                after.1,
            ),
        ];
        for (quota, limit, before, after) in quotas {
            let Some(limit) = limit.filter(|limit| *limit > 0) else {
                continue;
            };
            for percent in [80, 100] {
                // The threshold in whole units, rounded up: 80% of 5 tokens is 4.
                let threshold = (limit * percent + 99) / 100;
                if before < threshold && after >= threshold {
                    let crossed = QuotaThreshold {
                        quota,
                        percent,
                        limit,
                        used: after,
                        period_start,
                    };
                    outbox
                        .extend(webhooks::record_quota_threshold(&txn, tenant_id, crossed).await?);
                }
            }
        }
    }
    txn.commit().await?;
    outbox.dispatch(platform).await;
    Ok(counted)
}

/// The tokens and cost counted so far in the period starting at `period_start`, as the
/// monthly quotas count them: without the tokens of response cache hits.
async fn period_totals<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    period_start: DateTime<Utc>,
) -> ServiceResult<(i64, i64)> {
    let counter = usage_counter::Entity::find()
        .filter(usage_counter::Column::TenantId.eq(tenant_id))
        .filter(usage_counter::Column::PeriodStart.eq(period_start))
        .one(db)
        .await?;
    Ok(counter.map_or((0, 0), |counter| {
        (
            counter.input_tokens + counter.output_tokens - counter.response_cache_hit_tokens,
            counter.cost_micros,
        )
    }))
}

/// Adds the tenant's uncounted records to their period's counter and marks them counted,
/// in one statement. The tokens of response cache hits are counted like any others and also
/// apart, so that the quotas can leave them out. Records locked by a concurrent count are skipped, so running this
/// twice, or at the same time, counts each record once. Returns the records counted.
pub async fn count_uncounted<C: ConnectionTrait>(db: &C, tenant_id: Uuid) -> ServiceResult<u64> {
    const SQL: &str = r#"
        WITH picked AS (
            SELECT id FROM usage_records
            WHERE tenant_id = $1 AND counted_at IS NULL
            FOR UPDATE SKIP LOCKED
        ), marked AS (
            UPDATE usage_records AS record SET counted_at = now()
            FROM picked WHERE record.id = picked.id
            RETURNING record.input_tokens, record.output_tokens, record.cost_micros,
                      record.price_known, record.response_cache,
                      date_trunc('month', record.created_at, 'UTC') AS period_start
        ), totals AS (
            INSERT INTO usage_counters
                (tenant_id, period_start, input_tokens, output_tokens, cost_micros,
                 record_count, unpriced_record_count, response_cache_hit_tokens, updated_at)
            SELECT $1, period_start, SUM(input_tokens)::bigint, SUM(output_tokens)::bigint,
                   SUM(cost_micros)::bigint, COUNT(*), COUNT(*) FILTER (WHERE NOT price_known),
                   COALESCE(SUM(input_tokens + output_tokens)
                       FILTER (WHERE response_cache = 'hit'), 0)::bigint,
                   now()
            FROM marked GROUP BY period_start
            ON CONFLICT (tenant_id, period_start) DO UPDATE SET
                input_tokens = usage_counters.input_tokens + EXCLUDED.input_tokens,
                output_tokens = usage_counters.output_tokens + EXCLUDED.output_tokens,
                cost_micros = usage_counters.cost_micros + EXCLUDED.cost_micros,
                record_count = usage_counters.record_count + EXCLUDED.record_count,
                unpriced_record_count =
                    usage_counters.unpriced_record_count + EXCLUDED.unpriced_record_count,
                response_cache_hit_tokens =
                    usage_counters.response_cache_hit_tokens
                    + EXCLUDED.response_cache_hit_tokens,
                updated_at = now()
        )
        SELECT COUNT(*)::bigint AS counted FROM marked
    "#;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [tenant_id.into()],
        ))
        .await?
        .ok_or_else(|| ServiceError::internal("usage count returned no row"))?;
    let counted: i64 = row.try_get("", "counted")?;
    Ok(counted.max(0) as u64)
}

/// Returns the tenants that have records no job counted within `older_than_seconds`.
pub async fn tenants_with_uncounted<C: ConnectionTrait>(
    db: &C,
    older_than_seconds: i64,
) -> ServiceResult<Vec<Uuid>> {
    const SQL: &str = r#"
        SELECT DISTINCT tenant_id FROM usage_records
        WHERE counted_at IS NULL AND created_at < now() - make_interval(secs => $1)
    "#;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [(older_than_seconds as f64).into()],
        ))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<Uuid>("", "tenant_id")?))
        .collect()
}

/// Returns the caller's tenant counters for the billing period containing now, or zeros.
pub async fn current_period(
    platform: &Platform,
    ctx: &RequestContext,
) -> ServiceResult<usage_counter::Model> {
    let (period_start, _) = billing_period(Utc::now());
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let counter = usage_counter::Entity::find()
        .filter(usage_counter::Column::TenantId.eq(ctx.tenant()))
        .filter(usage_counter::Column::PeriodStart.eq(period_start))
        .one(&txn)
        .await?;
    txn.commit().await?;
    Ok(counter.unwrap_or(usage_counter::Model {
        tenant_id: ctx.tenant(),
        period_start,
        input_tokens: 0,
        output_tokens: 0,
        cost_micros: 0,
        record_count: 0,
        unpriced_record_count: 0,
        response_cache_hit_tokens: 0,
        updated_at: period_start,
    }))
}

/// Maximum range of a spend report, in days.
pub const MAX_SPEND_RANGE_DAYS: i64 = 366;

/// Tokens and cost of the records of one provider and model, or of all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendLine {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    /// Cost in micro-dollars of the records with a known price.
    pub cost_micros: i64,
    pub record_count: i64,
    /// Records whose model had no price when they were made; `cost_micros` leaves them out.
    pub unpriced_record_count: i64,
    pub unpriced_input_tokens: i64,
    pub unpriced_output_tokens: i64,
    /// Records whose token counts were estimated because the provider reported none.
    pub estimated_record_count: i64,
}

impl SpendLine {
    fn add(&mut self, other: &SpendLine) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cost_micros += other.cost_micros;
        self.record_count += other.record_count;
        self.unpriced_record_count += other.unpriced_record_count;
        self.unpriced_input_tokens += other.unpriced_input_tokens;
        self.unpriced_output_tokens += other.unpriced_output_tokens;
        self.estimated_record_count += other.estimated_record_count;
    }
}

/// The tenant's spend over `[from, to)`, in total and per model, day, agent and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total: SpendLine,
    /// One line per provider and model, the most expensive first.
    pub by_model: Vec<(String, String, SpendLine)>,
    /// One line per UTC day with usage, oldest first.
    pub by_day: Vec<(DateTime<Utc>, SpendLine)>,
    /// One line per agent, the most expensive first; `None` for replies without an agent
    /// or whose agent was deleted.
    pub by_agent: Vec<(Option<Uuid>, SpendLine)>,
    /// One line per user, the most expensive first; `None` for usage whose user was deleted.
    pub by_user: Vec<(Option<Uuid>, SpendLine)>,
}

/// Sums the caller's tenant usage records created in `[from, to)`, by default the current
/// billing period, with the daily totals of older records. Reads the records themselves, so
/// replies that finished a moment ago are included before the worker counts them.
pub async fn spend(
    platform: &Platform,
    ctx: &RequestContext,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> ServiceResult<Spend> {
    // One statement computes all four breakdowns: GROUPING() is 0 for the columns of the
    // grouping set that produced a row.
    //
    // Raw records and the daily totals they were rolled up into are read alike. A day of
    // totals counts when its start lies in the range.
    const SQL: &str = r#"
        WITH usage AS (
            SELECT provider, model, date_trunc('day', created_at, 'UTC') AS day, agent_id,
                   user_id, input_tokens, output_tokens, cached_input_tokens, cost_micros,
                   1 AS record_count,
                   CASE WHEN price_known THEN 0 ELSE 1 END AS unpriced_record_count,
                   CASE WHEN price_known THEN 0 ELSE input_tokens END AS unpriced_input_tokens,
                   CASE WHEN price_known THEN 0 ELSE output_tokens END AS unpriced_output_tokens,
                   CASE WHEN estimated THEN 1 ELSE 0 END AS estimated_record_count
            FROM usage_records
            WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
            UNION ALL
            SELECT provider, model, day::timestamp AT TIME ZONE 'UTC', agent_id, user_id,
                   input_tokens, output_tokens, cached_input_tokens, cost_micros,
                   record_count, unpriced_record_count, unpriced_input_tokens,
                   unpriced_output_tokens, estimated_record_count
            FROM usage_daily_totals
            WHERE tenant_id = $1 AND day::timestamp AT TIME ZONE 'UTC' >= $2
              AND day::timestamp AT TIME ZONE 'UTC' < $3
        )
        SELECT provider, model, day, agent_id, user_id,
               GROUPING(provider, model) AS not_by_model,
               GROUPING(day) AS not_by_day,
               GROUPING(agent_id) AS not_by_agent,
               GROUPING(user_id) AS not_by_user,
               COALESCE(SUM(input_tokens), 0)::bigint AS input_tokens,
               COALESCE(SUM(output_tokens), 0)::bigint AS output_tokens,
               COALESCE(SUM(cached_input_tokens), 0)::bigint AS cached_input_tokens,
               COALESCE(SUM(cost_micros), 0)::bigint AS cost_micros,
               COALESCE(SUM(record_count), 0)::bigint AS record_count,
               COALESCE(SUM(unpriced_record_count), 0)::bigint AS unpriced_record_count,
               COALESCE(SUM(unpriced_input_tokens), 0)::bigint AS unpriced_input_tokens,
               COALESCE(SUM(unpriced_output_tokens), 0)::bigint AS unpriced_output_tokens,
               COALESCE(SUM(estimated_record_count), 0)::bigint AS estimated_record_count
        FROM usage
        GROUP BY GROUPING SETS ((provider, model), (day), (agent_id), (user_id))
        ORDER BY cost_micros DESC, day, provider, model, agent_id, user_id
    "#;
    let (from, to) = report_range(from, to)?;

    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [ctx.tenant().into(), from.into(), to.into()],
        ))
        .await?;
    txn.commit().await?;
    let mut spend = Spend {
        from,
        to,
        total: SpendLine::default(),
        by_model: Vec::new(),
        by_day: Vec::new(),
        by_agent: Vec::new(),
        by_user: Vec::new(),
    };
    for row in rows {
        let line = SpendLine {
            input_tokens: row.try_get("", "input_tokens")?,
            output_tokens: row.try_get("", "output_tokens")?,
            cached_input_tokens: row.try_get("", "cached_input_tokens")?,
            cost_micros: row.try_get("", "cost_micros")?,
            record_count: row.try_get("", "record_count")?,
            unpriced_record_count: row.try_get("", "unpriced_record_count")?,
            unpriced_input_tokens: row.try_get("", "unpriced_input_tokens")?,
            unpriced_output_tokens: row.try_get("", "unpriced_output_tokens")?,
            estimated_record_count: row.try_get("", "estimated_record_count")?,
        };
        if row.try_get::<i32>("", "not_by_model")? == 0 {
            // Every record has a model, so the model lines sum to the total.
            spend.total.add(&line);
            let provider = row.try_get("", "provider")?;
            spend
                .by_model
                .push((provider, row.try_get("", "model")?, line));
        } else if row.try_get::<i32>("", "not_by_day")? == 0 {
            spend.by_day.push((row.try_get("", "day")?, line));
        } else if row.try_get::<i32>("", "not_by_agent")? == 0 {
            spend.by_agent.push((row.try_get("", "agent_id")?, line));
        } else if row.try_get::<i32>("", "not_by_user")? == 0 {
            spend.by_user.push((row.try_get("", "user_id")?, line));
        }
    }
    spend.by_day.sort_by_key(|(day, _)| *day);
    Ok(spend)
}

/// Response cache lookups and hits of replies in a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheLookups {
    pub lookups: i64,
    pub hits: i64,
}

/// The tenant's response cache lookups over `[from, to)`, in total and per agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseCacheStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total: CacheLookups,
    /// One line per agent with lookups, the most lookups first; `None` for replies without
    /// an agent or whose agent was deleted.
    pub by_agent: Vec<(Option<Uuid>, CacheLookups)>,
}

/// Counts the caller's tenant response cache lookups and hits in `[from, to)`, by default
/// the current billing period, from the usage records and the daily totals of older ones.
/// With `agent_id`, only that agent's replies count, and an agent missing from the tenant
/// is NOT_FOUND.
pub async fn response_cache_stats(
    platform: &Platform,
    ctx: &RequestContext,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    agent_id: Option<Uuid>,
) -> ServiceResult<ResponseCacheStats> {
    // Each reply that made a lookup marks exactly one of its usage records, so counting
    // marked records counts lookups.
    const SQL: &str = r#"
        WITH lookups AS (
            SELECT agent_id, 1 AS lookups,
                   CASE WHEN response_cache = 'hit' THEN 1 ELSE 0 END AS hits
            FROM usage_records
            WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
              AND response_cache IS NOT NULL
              AND ($4::uuid IS NULL OR agent_id = $4)
            UNION ALL
            SELECT agent_id, response_cache_lookups, response_cache_hits
            FROM usage_daily_totals
            WHERE tenant_id = $1 AND day::timestamp AT TIME ZONE 'UTC' >= $2
              AND day::timestamp AT TIME ZONE 'UTC' < $3
              AND response_cache_lookups > 0
              AND ($4::uuid IS NULL OR agent_id = $4)
        )
        SELECT agent_id, GROUPING(agent_id) AS not_by_agent,
               COALESCE(SUM(lookups), 0)::bigint AS lookups,
               COALESCE(SUM(hits), 0)::bigint AS hits
        FROM lookups
        GROUP BY GROUPING SETS ((), (agent_id))
        ORDER BY lookups DESC, agent_id
    "#;
    ctx.require(entity::Role::Viewer)?;
    let (from, to) = report_range(from, to)?;

    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    if let Some(agent_id) = agent_id {
        crate::agents::find(&txn, ctx, agent_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("agent"))?;
    }
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [ctx.tenant().into(), from.into(), to.into(), agent_id.into()],
        ))
        .await?;
    txn.commit().await?;

    let mut stats = ResponseCacheStats {
        from,
        to,
        total: CacheLookups::default(),
        by_agent: Vec::new(),
    };
    for row in rows {
        let line = CacheLookups {
            lookups: row.try_get("", "lookups")?,
            hits: row.try_get("", "hits")?,
        };
        if row.try_get::<i32>("", "not_by_agent")? == 0 {
            stats.by_agent.push((row.try_get("", "agent_id")?, line));
        } else {
            stats.total = line;
        }
    }
    Ok(stats)
}

/// Returns `[from, to)` of a usage report: the current billing period where a bound is
/// absent. Fails when `from` is not before `to` or the range exceeds
/// [`MAX_SPEND_RANGE_DAYS`].
fn report_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> ServiceResult<(DateTime<Utc>, DateTime<Utc>)> {
    let (period_start, period_end) = billing_period(Utc::now());
    let from = from.unwrap_or(period_start);
    let to = to.unwrap_or(period_end);
    if from >= to {
        return Err(ServiceError::invalid("to", "must be later than from"));
    }
    if to - from > chrono::Duration::days(MAX_SPEND_RANGE_DAYS) {
        return Err(ServiceError::invalid(
            "from",
            format!("the range may span at most {MAX_SPEND_RANGE_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// Lists the caller's tenant usage records, newest first.
pub async fn records(
    platform: &Platform,
    ctx: &RequestContext,
    page: &PageRequest,
) -> ServiceResult<Page<usage_record::Model>> {
    let select =
        usage_record::Entity::find().filter(usage_record::Column::TenantId.eq(ctx.tenant()));
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        select,
        usage_record::Column::Id,
        Order::NewestFirst,
        page,
        |r| r.id,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_period_is_calendar_month() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 17, 30, 0).unwrap();
        let (start, end) = billing_period(at);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }
}
