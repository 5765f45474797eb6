//! The tool calls of one model step: each recorded as started before it runs, all run at
//! the same time, each recorded with its outcome and reported to an observer as it starts
//! and ends. Agent runs and chat replies share this.

use std::future::Future;
use std::time::Instant;

use chrono::Utc;
use entity::{ToolExecutionStatus, tool_execution};
use futures_util::future::join_all;
use providers::{ChatMessage, ToolCall};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::debug;
use uuid::Uuid;

use crate::{Platform, RequestContext, TenantId, error::ServiceResult};

use super::ToolSet;

/// The tool message for a call whose worker died before recording its outcome.
pub(crate) const UNKNOWN_OUTCOME: &str = "The outcome of this call is unknown: the worker \
    running it stopped before recording a result. It was not run again; check its effect \
    before repeating it.";

/// The owner of the calls: an agent run or the generation of a chat reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallOwner {
    Run(Uuid),
    Message(Uuid),
}

/// The outcome of a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallResult {
    pub status: ToolExecutionStatus,
    pub result: Option<String>,
    pub error: Option<String>,
}

impl CallResult {
    /// Returns the tool message content the model reads.
    pub(crate) fn content(&self) -> String {
        match (&self.status, &self.result, &self.error) {
            (ToolExecutionStatus::Unknown, _, _) => UNKNOWN_OUTCOME.to_owned(),
            (_, Some(result), _) => result.clone(),
            (_, None, error) => format!("Error: {}", error.as_deref().unwrap_or_default()),
        }
    }
}

/// A tool call as run and reply streams carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallEvent {
    /// The model call that asked for it, starting at 1.
    pub step: i32,
    pub call_id: String,
    pub name: String,
    pub arguments: Value,
}

impl ToolCallEvent {
    fn new(step: i32, call: &ToolCall) -> Self {
        Self {
            step,
            call_id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }
    }
}

/// The end of a tool call as run and reply streams carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResultEvent {
    pub step: i32,
    pub call_id: String,
    pub name: String,
    pub status: ToolExecutionStatus,
    pub result: Option<String>,
    pub error: Option<String>,
}

impl ToolResultEvent {
    pub(crate) fn new(step: i32, call: &ToolCall, result: &CallResult) -> Self {
        Self {
            step,
            call_id: call.id.clone(),
            name: call.name.clone(),
            status: result.status,
            result: result.result.clone(),
            error: result.error.clone(),
        }
    }
}

/// Receives the calls of a step as they start and end, to stream them to subscribers.
pub(crate) trait CallObserver: Sync {
    fn started(&self, event: ToolCallEvent) -> impl Future<Output = ()> + Send;
    fn finished(&self, event: ToolResultEvent) -> impl Future<Output = ()> + Send;
}

/// Runs the calls of `step` at the same time and returns their results as tool messages,
/// in the order of `calls`.
pub(crate) async fn run_step(
    platform: &Platform,
    ctx: &RequestContext,
    tools: &ToolSet,
    owner: CallOwner,
    step: i32,
    calls: &[ToolCall],
    observer: &impl CallObserver,
) -> ServiceResult<Vec<ChatMessage>> {
    // Ids made in call order keep the rows in the order the model listed the calls, since
    // UUIDv7s from one process increase.
    let ids: Vec<Uuid> = calls.iter().map(|_| Uuid::now_v7()).collect();
    let results = join_all(
        calls
            .iter()
            .zip(ids)
            .map(|(call, id)| run_one(platform, ctx, tools, owner, id, step, call, observer)),
    )
    .await;
    results.into_iter().collect()
}

/// Records the call as started under `id`, runs it, and records its outcome.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    platform: &Platform,
    ctx: &RequestContext,
    tools: &ToolSet,
    owner: CallOwner,
    id: Uuid,
    step: i32,
    call: &ToolCall,
    observer: &impl CallObserver,
) -> ServiceResult<ChatMessage> {
    if !record_start(platform, ctx, owner, id, step, call).await? {
        // An earlier attempt recorded this call first, so it may have run.
        return Ok(ChatMessage::tool_result(
            &call.id,
            &call.name,
            UNKNOWN_OUTCOME,
        ));
    }
    observer.started(ToolCallEvent::new(step, call)).await;

    let timer = Instant::now();
    let outcome = tools.call(platform, ctx, call).await;
    let duration_ms = timer.elapsed().as_millis() as i64;
    let result = match outcome.result {
        Ok(result) => CallResult {
            status: ToolExecutionStatus::Succeeded,
            result: Some(result),
            error: None,
        },
        Err(error) => CallResult {
            status: ToolExecutionStatus::Failed,
            result: None,
            error: Some(error),
        },
    };
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    tool_execution::Entity::update_many()
        .col_expr(tool_execution::Column::Status, Expr::value(result.status))
        .col_expr(tool_execution::Column::ToolId, Expr::value(outcome.tool_id))
        .col_expr(
            tool_execution::Column::Result,
            Expr::value(result.result.clone()),
        )
        .col_expr(
            tool_execution::Column::Error,
            Expr::value(result.error.clone()),
        )
        .col_expr(tool_execution::Column::DurationMs, Expr::value(duration_ms))
        .col_expr(tool_execution::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(tool_execution::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    debug!(tool = %call.name, status = ?result.status, duration_ms, "tool call finished");

    observer
        .finished(ToolResultEvent::new(step, call, &result))
        .await;
    Ok(ChatMessage::tool_result(
        &call.id,
        &call.name,
        result.content(),
    ))
}

/// Records every call of `owner` still in state started as unknown, with `reason`, after
/// the work that ran them was cut off.
pub(crate) async fn abandon_started(
    platform: &Platform,
    tenant_id: TenantId,
    owner: CallOwner,
    reason: &str,
) -> ServiceResult<u64> {
    let owned = match owner {
        CallOwner::Run(run_id) => tool_execution::Column::RunId.eq(run_id),
        CallOwner::Message(message_id) => tool_execution::Column::MessageId.eq(message_id),
    };
    let txn = platform.tenant_tx(tenant_id).await?;
    let abandoned = tool_execution::Entity::update_many()
        .col_expr(
            tool_execution::Column::Status,
            Expr::value(ToolExecutionStatus::Unknown),
        )
        .col_expr(tool_execution::Column::Error, Expr::value(reason))
        .col_expr(tool_execution::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(owned)
        .filter(tool_execution::Column::Status.eq(ToolExecutionStatus::Started))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(abandoned.rows_affected)
}

/// Writes the call's row in state started. Returns false when a row for the same owner,
/// step and call id exists already.
async fn record_start(
    platform: &Platform,
    ctx: &RequestContext,
    owner: CallOwner,
    id: Uuid,
    step: i32,
    call: &ToolCall,
) -> ServiceResult<bool> {
    let (column, owner_id) = match owner {
        CallOwner::Run(run_id) => ("run_id", run_id),
        CallOwner::Message(message_id) => ("message_id", message_id),
    };
    let sql = format!(
        "INSERT INTO tool_executions \
             (id, tenant_id, {column}, step, call_id, tool_name, arguments, status, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'started', $8) \
         ON CONFLICT ({column}, step, call_id) DO NOTHING"
    );
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let inserted = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                id.into(),
                ctx.tenant().into(),
                owner_id.into(),
                step.into(),
                call.id.clone().into(),
                call.name.clone().into(),
                call.arguments.clone().into(),
                Utc::now().into(),
            ],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_reads_result_error_or_unknown() {
        let succeeded = CallResult {
            status: ToolExecutionStatus::Succeeded,
            result: Some("42".into()),
            error: None,
        };
        assert_eq!(succeeded.content(), "42");
        let failed = CallResult {
            status: ToolExecutionStatus::Failed,
            result: None,
            error: Some("timed out".into()),
        };
        assert_eq!(failed.content(), "Error: timed out");
        let unknown = CallResult {
            status: ToolExecutionStatus::Unknown,
            result: None,
            error: Some(UNKNOWN_OUTCOME.into()),
        };
        assert_eq!(unknown.content(), UNKNOWN_OUTCOME);
    }
}
