//! Statistics of an agent's runs over a period: outcomes, durations, usage and tool calls.

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, FromQueryResult, Statement};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, agents,
    error::{ServiceError, ServiceResult},
};

/// Outcomes and totals of the runs created in a period.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct RunTotals {
    pub runs: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Runs still queued or running.
    pub unfinished: i64,
    /// Median time from first start to end of the finished runs, in milliseconds.
    pub p50_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

impl RunTotals {
    /// Returns the share of finished runs that succeeded, or `None` when none finished.
    pub fn success_rate(&self) -> Option<f64> {
        let finished = self.succeeded + self.failed + self.cancelled;
        (finished > 0).then(|| self.succeeded as f64 / finished as f64)
    }
}

/// Tool calls of one tool in the runs of a period.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ToolCallTotals {
    pub tool_name: String,
    pub calls: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Calls whose worker died before recording an outcome.
    pub unknown: i64,
}

/// Statistics of the agent's runs created in `[from, to)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStats {
    pub agent_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: RunTotals,
    /// Most called tools first.
    pub tool_calls: Vec<ToolCallTotals>,
}

const TOTALS: &str = "SELECT count(*) AS runs,
        count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
        count(*) FILTER (WHERE status IN ('queued', 'running')) AS unfinished,
        percentile_cont(0.5) WITHIN GROUP (
            ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
            FILTER (WHERE started_at IS NOT NULL AND finished_at IS NOT NULL)
            AS p50_duration_ms,
        percentile_cont(0.95) WITHIN GROUP (
            ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
            FILTER (WHERE started_at IS NOT NULL AND finished_at IS NOT NULL)
            AS p95_duration_ms,
        COALESCE(sum(input_tokens), 0)::bigint AS input_tokens,
        COALESCE(sum(output_tokens), 0)::bigint AS output_tokens,
        COALESCE(sum(cost_micros), 0)::bigint AS cost_micros
    FROM agent_runs
    WHERE tenant_id = $1 AND agent_id = $2 AND created_at >= $3 AND created_at < $4";

const TOOL_CALLS: &str = "SELECT e.tool_name, count(*) AS calls,
        count(*) FILTER (WHERE e.status = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE e.status = 'failed') AS failed,
        count(*) FILTER (WHERE e.status = 'unknown') AS unknown
    FROM tool_executions e JOIN agent_runs r ON r.id = e.run_id
    WHERE r.tenant_id = $1 AND r.agent_id = $2 AND r.created_at >= $3 AND r.created_at < $4
    GROUP BY e.tool_name
    ORDER BY calls DESC, e.tool_name";

/// Returns the statistics of the agent's runs created in `[from, to)`.
pub async fn for_agent(
    platform: &Platform,
    ctx: &RequestContext,
    agent_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ServiceResult<AgentStats> {
    if from >= to {
        return Err(ServiceError::invalid("to", "must be later than from"));
    }

    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    agents::find(&txn, ctx, agent_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("agent"))?;
    let values = [ctx.tenant().into(), agent_id.into(), from.into(), to.into()];
    let totals = RunTotals::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        TOTALS,
        values.clone(),
    ))
    .one(&txn)
    .await?
    .ok_or_else(|| ServiceError::internal("the run totals query returned no row"))?;
    let tool_calls = ToolCallTotals::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        TOOL_CALLS,
        values,
    ))
    .all(&txn)
    .await?;
    txn.commit().await?;

    Ok(AgentStats {
        agent_id,
        from,
        to,
        totals,
        tool_calls,
    })
}
