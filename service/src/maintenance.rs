//! Maintenance that keeps tables from growing without bound, run by the worker's sweep for
//! every tenant: removal of sessions, invitations and webhook events that ended longer ago
//! than [`KEEP_ENDED_FOR_DAYS`], and the roll-up of old usage records into daily totals.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use tracing::info;

use crate::{Platform, error::ServiceResult};

/// Days that an ended session, invitation or webhook event stays in the database, so that
/// an admin can still look it up while reading recent audit rows or deliveries that name it.
pub const KEEP_ENDED_FOR_DAYS: i32 = 30;

/// The rows one run removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub sessions: u64,
    pub invitations: u64,
    /// Webhook events, each with its messages and delivery attempts.
    pub webhook_events: u64,
}

/// Deletes sessions that expired or were revoked, invitations that expired, were revoked
/// or were accepted, and webhook events none of whose messages is still pending, more than
/// [`KEEP_ENDED_FOR_DAYS`] ago, in every tenant.
pub async fn remove_ended(platform: &Platform) -> ServiceResult<Removed> {
    const SESSIONS: &str = r#"
        DELETE FROM sessions
        WHERE expires_at < now() - make_interval(days => $1)
           OR revoked_at < now() - make_interval(days => $1)
    "#;
    const INVITATIONS: &str = r#"
        DELETE FROM invitations
        WHERE expires_at < now() - make_interval(days => $1)
           OR revoked_at < now() - make_interval(days => $1)
           OR accepted_at < now() - make_interval(days => $1)
    "#;

    // Deleting an event deletes its messages and their delivery attempts with it.
    const WEBHOOK_EVENTS: &str = r#"
        DELETE FROM webhook_events e
        WHERE e.created_at < now() - make_interval(days => $1)
          AND NOT EXISTS (SELECT 1 FROM webhook_messages m
                          WHERE m.event_id = e.id AND m.status = 'pending')
    "#;

    let statement = |sql: &str| {
        Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, [KEEP_ENDED_FOR_DAYS.into()])
    };
    // Every tenant's rows: the sweep runs for the whole platform.
    let txn = platform.cross_tenant_tx().await?;
    let sessions = txn.execute_raw(statement(SESSIONS)).await?.rows_affected();
    let invitations = txn
        .execute_raw(statement(INVITATIONS))
        .await?
        .rows_affected();
    let webhook_events = txn
        .execute_raw(statement(WEBHOOK_EVENTS))
        .await?
        .rows_affected();
    txn.commit().await?;

    let removed = Removed {
        sessions,
        invitations,
        webhook_events,
    };
    if removed != Removed::default() {
        info!(
            sessions = removed.sessions,
            invitations = removed.invitations,
            webhook_events = removed.webhook_events,
            "removed ended sessions, invitations and webhook events"
        );
    }
    Ok(removed)
}

/// Counted usage records moved into daily totals per transaction.
const ROLL_UP_BATCH: i64 = 5_000;

/// Moves the usage records created before the start of the UTC day `retention_days` ago,
/// and already counted into the period counters, into `usage_daily_totals`, in every
/// tenant. Each batch deletes its records and inserts their sums in one statement, so a
/// record is never in both places or in neither. Returns the number of records moved.
pub async fn roll_up_usage(platform: &Platform, retention_days: u32) -> ServiceResult<u64> {
    const MOVE: &str = r#"
        WITH moved AS (
            DELETE FROM usage_records
            WHERE id IN (
                SELECT id FROM usage_records
                WHERE created_at < date_trunc('day', now(), 'UTC') - make_interval(days => $1)
                  AND counted_at IS NOT NULL
                ORDER BY created_at
                LIMIT $2
            )
            RETURNING *
        ),
        inserted AS (
            INSERT INTO usage_daily_totals (
                tenant_id, day, provider, model, agent_id, user_id,
                input_tokens, output_tokens, cached_input_tokens, cost_micros, record_count,
                unpriced_record_count, unpriced_input_tokens, unpriced_output_tokens,
                estimated_record_count, response_cache_lookups, response_cache_hits
            )
            SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, provider, model,
                   agent_id, user_id,
                   SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens),
                   SUM(cost_micros), COUNT(*),
                   COUNT(*) FILTER (WHERE NOT price_known),
                   COALESCE(SUM(input_tokens) FILTER (WHERE NOT price_known), 0),
                   COALESCE(SUM(output_tokens) FILTER (WHERE NOT price_known), 0),
                   COUNT(*) FILTER (WHERE estimated),
                   COUNT(*) FILTER (WHERE response_cache IS NOT NULL),
                   COUNT(*) FILTER (WHERE response_cache = 'hit')
            FROM moved
            GROUP BY tenant_id, (created_at AT TIME ZONE 'UTC')::date, provider, model,
                     agent_id, user_id
        )
        SELECT COUNT(*)::bigint AS moved FROM moved
    "#;

    let mut total = 0;
    loop {
        // Every tenant's records: the sweep runs for the whole platform.
        let txn = platform.cross_tenant_tx().await?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                MOVE,
                [(retention_days as i32).into(), ROLL_UP_BATCH.into()],
            ))
            .await?;
        txn.commit().await?;
        let moved: i64 = match row {
            Some(row) => row.try_get("", "moved")?,
            None => 0,
        };
        total += moved as u64;
        if moved < ROLL_UP_BATCH {
            break;
        }
    }
    if total > 0 {
        info!(
            records = total,
            retention_days, "rolled usage records up into daily totals"
        );
    }
    Ok(total)
}
