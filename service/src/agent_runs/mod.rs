//! Agent runs: an agent working on a prompt in the background, model call after tool call,
//! until it has an answer. The api creates the run and enqueues its job; a worker runs it
//! ([`runner`]) and any api process streams its events ([`events`]).
//!
//! Runs are visible to every member of the tenant, like the agents they belong to.

pub mod events;
pub mod runner;
pub mod stats;

use std::time::Duration;

use chrono::Utc;
use entity::{AgentRunStatus, Role, agent_run};
use providers::ProviderKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, agents,
    audit::{self, Action, Target, TargetType},
    chat::registry,
    error::{ServiceError, ServiceResult},
    jobs::RunAgent,
    pagination::{Order, Page, PageRequest, fetch_tenant_page},
    tenant_settings,
    validation::{self, MAX_MESSAGE_CHARS},
};

pub use events::{CursorEvent, RunEvent, subscribe};

/// Error of a run cancelled before a worker took it.
const CANCELLED_WHILE_QUEUED: &str = "cancelled before it started";

/// Conditions a listed run must meet; each one that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub agent_id: Option<Uuid>,
    pub status: Option<AgentRunStatus>,
}

/// Creates a queued run of `agent_id` on `prompt` and enqueues its job. Returns at once;
/// the run's events stream through [`subscribe`].
pub async fn execute(
    platform: &Platform,
    ctx: &RequestContext,
    agent_id: Uuid,
    prompt: &str,
) -> ServiceResult<agent_run::Model> {
    ctx.require(Role::Member)?;
    if prompt.trim().is_empty() {
        return Err(ServiceError::invalid("prompt", "must not be empty"));
    }
    validation::check_length("prompt", prompt, MAX_MESSAGE_CHARS)?;

    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let agent = agents::find(&txn, ctx, agent_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("agent"))?;
    let provider: ProviderKind = agent
        .provider
        .parse()
        .map_err(|_| ServiceError::internal(format!("agent {} has unknown provider", agent.id)))?;
    // The settings may have changed since the agent was saved.
    tenant_settings::for_tenant(&txn, ctx.tenant_id)
        .await?
        .check_allowed(provider, &agent.model, "provider", "model")
        .map_err(|error| ServiceError::Forbidden(format!("this agent's {error}")))?;
    let run = agent_run::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        agent_id: Set(Some(agent.id)),
        created_by: Set(Some(ctx.user_id)),
        api_key_id: Set(ctx.api_key_id),
        request_id: Set(Some(ctx.request_id.clone())),
        prompt: Set(prompt.to_owned()),
        status: Set(AgentRunStatus::Queued),
        provider: Set(agent.provider.clone()),
        model: Set(agent.model.clone()),
        instructions: Set(agent.instructions.clone()),
        temperature: Set(agent.temperature),
        max_tokens: Set(agent.max_tokens),
        tools: Set(agent.tools.clone()),
        max_steps: Set(agent.max_steps),
        timeout_seconds: Set(agent.run_timeout_seconds),
        output: Set(None),
        error: Set(None),
        steps: Set(0),
        input_tokens: Set(0),
        output_tokens: Set(0),
        cost_micros: Set(0),
        attempts: Set(0),
        cancel_requested_at: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(Utc::now()),
        started_at: Set(None),
        finished_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let summary = json!({ "agentId": agent.id, "agentName": agent.name });
    audit::record(
        &txn,
        ctx,
        Action::AgentRunExecute,
        Target::new(TargetType::AgentRun, run.id),
        summary,
    )
    .await?;
    txn.commit().await?;

    events::Publisher::new(platform, &run)
        .publish(&RunEvent::Status {
            status: AgentRunStatus::Queued,
        })
        .await;
    platform
        .jobs
        .run_agent(RunAgent {
            tenant_id: ctx.tenant(),
            run_id: run.id,
            request_id: Some(ctx.request_id.clone()),
        })
        .await;
    info!(tenant.id = %ctx.tenant(), agent_run.id = %run.id, agent.id = %agent.id, "agent run queued");
    Ok(run)
}

/// Cancels a run. A queued run ends at once. A running one stops at once, also inside a
/// model stream or a tool call, and keeps the steps done so far. A run that has ended is
/// returned as it is.
pub async fn cancel(
    platform: &Platform,
    ctx: &RequestContext,
    run_id: Uuid,
) -> ServiceResult<agent_run::Model> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let run = find(&txn, ctx, run_id).await?;
    if run.status.is_finished() {
        txn.commit().await?;
        return Ok(run);
    }
    let now = Utc::now();
    let cancelled_while_queued = agent_run::Entity::update_many()
        .col_expr(
            agent_run::Column::Status,
            Expr::value(AgentRunStatus::Cancelled),
        )
        .col_expr(
            agent_run::Column::Error,
            Expr::value(CANCELLED_WHILE_QUEUED),
        )
        .col_expr(agent_run::Column::CancelRequestedAt, Expr::value(now))
        .col_expr(agent_run::Column::FinishedAt, Expr::value(now))
        .filter(agent_run::Column::Id.eq(run_id))
        .filter(agent_run::Column::Status.eq(AgentRunStatus::Queued))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !cancelled_while_queued {
        agent_run::Entity::update_many()
            .col_expr(agent_run::Column::CancelRequestedAt, Expr::value(now))
            .filter(agent_run::Column::Id.eq(run_id))
            .filter(agent_run::Column::CancelRequestedAt.is_null())
            .exec(&txn)
            .await?;
    }
    audit::record(
        &txn,
        ctx,
        Action::AgentRunCancel,
        Target::new(TargetType::AgentRun, run_id),
        json!({ "agentId": run.agent_id }),
    )
    .await?;
    txn.commit().await?;

    if cancelled_while_queued {
        let run = get(platform, ctx, run_id).await?;
        events::Publisher::new(platform, &run)
            .publish(&RunEvent::finished(&run))
            .await;
        return Ok(run);
    }
    // The worker also reads the request when it renews its lease, so a lost message
    // delays the stop without losing it.
    let published = async {
        let mut redis = platform.redis.shared().await?;
        redis::AsyncCommands::publish::<_, _, i64>(
            &mut redis,
            registry::stop_channel(platform),
            run_id.to_string(),
        )
        .await
    }
    .await;
    if let Err(error) = published {
        warn!(%error, agent_run.id = %run_id, "publishing the run's stop failed; the lease renewal will stop it");
    }
    info!(tenant.id = %ctx.tenant(), agent_run.id = %run_id, "agent run cancel requested");
    wait_for_end(platform, ctx, run_id, Duration::from_secs(5)).await
}

/// Returns the run once it has ended, or as it is after `limit`.
async fn wait_for_end(
    platform: &Platform,
    ctx: &RequestContext,
    run_id: Uuid,
    limit: Duration,
) -> ServiceResult<agent_run::Model> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let run = get(platform, ctx, run_id).await?;
        if run.status.is_finished() || tokio::time::Instant::now() >= deadline {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    run_id: Uuid,
) -> ServiceResult<agent_run::Model> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let run = find(&txn, ctx, run_id).await?;
    txn.commit().await?;
    Ok(run)
}

async fn find<C: sea_orm::ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    run_id: Uuid,
) -> ServiceResult<agent_run::Model> {
    agent_run::Entity::find_by_id(run_id)
        .filter(agent_run::Column::TenantId.eq(ctx.tenant()))
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::not_found("agent run"))
}

pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    filter: &RunFilter,
    page: &PageRequest,
) -> ServiceResult<Page<agent_run::Model>> {
    let mut select = agent_run::Entity::find().filter(agent_run::Column::TenantId.eq(ctx.tenant()));
    if let Some(agent_id) = filter.agent_id {
        select = select.filter(agent_run::Column::AgentId.eq(agent_id));
    }
    if let Some(status) = filter.status {
        select = select.filter(agent_run::Column::Status.eq(status));
    }
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        select,
        agent_run::Column::Id,
        Order::NewestFirst,
        page,
        |run| run.id,
    )
    .await
}

/// Runs the sweep looks at per pass.
const SWEEP_BATCH: u64 = 500;

/// Enqueues runs that need a worker and may have no job. These are queued runs older than
/// `min_age`, whose job may never have reached Redis, and running runs whose lease expired
/// with a dead worker or was cleared by a worker that shut down. A run with two jobs is
/// safe, because a job takes the run only through its lease. Returns the number enqueued.
pub async fn enqueue_stalled(platform: &Platform, min_age: Duration) -> ServiceResult<u64> {
    let now = Utc::now();
    let cutoff =
        now - chrono::Duration::from_std(min_age).unwrap_or_else(|_| chrono::Duration::minutes(1));
    let txn = platform.cross_tenant_tx().await?;
    let stalled = agent_run::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(
                    sea_orm::Condition::all()
                        .add(agent_run::Column::Status.eq(AgentRunStatus::Queued))
                        .add(agent_run::Column::CreatedAt.lt(cutoff)),
                )
                .add(
                    // A worker that shut down released its runs by clearing the lease.
                    sea_orm::Condition::all()
                        .add(agent_run::Column::Status.eq(AgentRunStatus::Running))
                        .add(
                            sea_orm::Condition::any()
                                .add(agent_run::Column::LeaseExpiresAt.is_null())
                                .add(agent_run::Column::LeaseExpiresAt.lt(now)),
                        ),
                ),
        )
        .order_by_asc(agent_run::Column::CreatedAt)
        .limit(SWEEP_BATCH)
        .all(&txn)
        .await?;
    txn.commit().await?;

    for run in &stalled {
        platform
            .jobs
            .run_agent(RunAgent {
                tenant_id: run.tenant_id,
                run_id: run.id,
                request_id: run.request_id.clone(),
            })
            .await;
    }
    if !stalled.is_empty() {
        info!(
            runs = stalled.len(),
            "enqueued agent runs that had no worker"
        );
    }
    Ok(stalled.len() as u64)
}
