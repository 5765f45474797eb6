//! Running one agent run in the worker: take its lease, rebuild the conversation from the
//! stored steps, then call the model and the tools it requests until it returns a final output, a
//! limit is reached or the run is cancelled.
//!
//! A run is held through a lease in its row that the worker renews. A worker that dies
//! stops renewing it, and the sweep gives the run to another worker, which continues after
//! the last stored step. A tool call is recorded as started before the tool runs; a call
//! found in that state on resume ran in the dead worker with an outcome nobody saw, so it is
//! recorded as unknown and the model is told so instead of the tool running twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{
    AgentRunStatus, FinishReason, Role, ToolExecutionStatus, agent_run, agent_run_step, api_key,
    membership, tool_execution, usage_record,
};
use futures_util::StreamExt;
use providers::{
    ChatMessage, ChatRequest, ProviderError, ProviderKind, ResponseAccumulator, StreamEvent,
    ToolCall, Usage, pricing,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
    sea_query::{Expr, ExprTrait},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use uuid::Uuid;

use super::events::{Publisher, RunEvent};
use crate::webhooks::{self, EventType, Outbox};
use crate::{
    Platform, RequestContext, TenantId,
    chat::{self, ResolvedProvider, budget, generation},
    error::{ServiceError, ServiceResult},
    jobs::{CountUsage, RunAgent},
    metrics, prices,
    quota::MinuteLimits,
    tools::{
        self, ToolSet,
        calls::{self, CallOwner, CallResult, ToolResultEvent, UNKNOWN_OUTCOME},
    },
};

/// Workers that may take a run. A run taken once more fails instead of running.
const MAX_ATTEMPTS: i32 = 5;

/// The end of a run, or the reason this worker stopped working on it.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Succeeded(String),
    Failed(String),
    Cancelled,
    /// Another worker has the run now, or this one is shutting down: the run stays
    /// running and is resumed from its stored steps.
    Released,
}

/// Works on the run of `job` until it ends or this worker loses it. Does nothing when the
/// run has ended or another worker has its lease, so a job delivered twice is harmless.
pub async fn run(platform: &Platform, job: &RunAgent) -> ServiceResult<()> {
    let tenant_id = TenantId::new(job.tenant_id);
    let lease_owner = Uuid::now_v7();
    let Some(run) = claim(platform, tenant_id, job.run_id, lease_owner).await? else {
        debug!(agent_run.id = %job.run_id, "agent run ended or held by another worker");
        return Ok(());
    };
    let span = info_span!(
        "agent_run",
        tenant.id = %run.tenant_id,
        agent_run.id = %run.id,
        attempt = run.attempts,
    );
    async {
        let _running = metrics::generation_running();
        let handle = platform.generations.register(run.id);
        let lease = Lease::start(
            platform,
            tenant_id,
            run.id,
            lease_owner,
            handle.stop.clone(),
        );
        let publisher = Publisher::new(platform, &run);
        publisher
            .publish(&RunEvent::Status {
                status: AgentRunStatus::Running,
            })
            .await;
        info!("agent run started");

        let end = match Runner::new(
            platform,
            &run,
            lease_owner,
            &lease,
            &handle.stop,
            &publisher,
        )
        .await
        {
            Ok(Ok(mut runner)) => runner.drive().await,
            Ok(Err(reason)) => Ok(End::Failed(reason)),
            Err(error) => Err(error),
        };
        lease.stop();
        platform.generations.remove(run.id);
        handle.finished.cancel();
        let end = end?;
        finish(platform, &run, lease_owner, end, &publisher).await
    }
    .instrument(span)
    .await
}

/// Takes the run for `owner` when it is queued, or running under an expired lease.
async fn claim(
    platform: &Platform,
    tenant_id: TenantId,
    run_id: Uuid,
    owner: Uuid,
) -> ServiceResult<Option<agent_run::Model>> {
    let now = Utc::now();
    let expires = now + lease_length(platform);
    let txn = platform.tenant_tx(tenant_id).await?;
    let claimed = agent_run::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE agent_runs SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
                 attempts = attempts + 1, started_at = COALESCE(started_at, $3) \
             WHERE id = $4 AND status IN ('queued', 'running') \
                 AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
             RETURNING *",
            [owner.into(), expires.into(), now.into(), run_id.into()],
        ))
        .one(&txn)
        .await?;
    txn.commit().await?;
    Ok(claimed)
}

fn lease_length(platform: &Platform) -> chrono::Duration {
    chrono::Duration::from_std(platform.settings.agent_run_lease)
        .unwrap_or_else(|_| chrono::Duration::seconds(30))
}

/// The renewal of a run's lease, on its own task. It stops the run when the lease is lost
/// or a cancel was requested.
struct Lease {
    task: tokio::task::AbortHandle,
    lost: Arc<AtomicBool>,
}

impl Lease {
    fn start(
        platform: &Platform,
        tenant_id: TenantId,
        run_id: Uuid,
        owner: Uuid,
        stop: CancellationToken,
    ) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let period = platform.settings.agent_run_lease / 3;
        let platform = platform.clone();
        let flag = Arc::clone(&lost);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                match renew(&platform, tenant_id, run_id, owner).await {
                    Ok(Some(run)) if run.cancel_requested_at.is_some() => stop.cancel(),
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        warn!(agent_run.id = %run_id, "lost the agent run's lease");
                        flag.store(true, Ordering::Relaxed);
                        stop.cancel();
                        return;
                    }
                    Err(error) => {
                        warn!(%error, agent_run.id = %run_id, "renewing the agent run's lease failed")
                    }
                }
            }
        });
        Self {
            task: task.abort_handle(),
            lost,
        }
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    fn stop(&self) {
        self.task.abort();
    }
}

async fn renew(
    platform: &Platform,
    tenant_id: TenantId,
    run_id: Uuid,
    owner: Uuid,
) -> ServiceResult<Option<agent_run::Model>> {
    let txn = platform.tenant_tx(tenant_id).await?;
    let renewed = agent_run::Entity::update_many()
        .col_expr(
            agent_run::Column::LeaseExpiresAt,
            Expr::value(Utc::now() + lease_length(platform)),
        )
        .filter(agent_run::Column::Id.eq(run_id))
        .filter(agent_run::Column::LeaseOwner.eq(owner))
        .filter(agent_run::Column::Status.eq(AgentRunStatus::Running))
        .exec_with_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(renewed.into_iter().next())
}

/// One model call's result.
struct ModelStep {
    text: String,
    calls: Vec<ToolCall>,
    /// Set when the run ends with this step.
    end: Option<End>,
}

struct Runner<'a> {
    platform: &'a Platform,
    run: &'a agent_run::Model,
    lease_owner: Uuid,
    lease: &'a Lease,
    stop: &'a CancellationToken,
    publisher: &'a Publisher,
    /// The member who started the run; task tools act with their current role.
    ctx: RequestContext,
    tools: ToolSet,
    provider_kind: ProviderKind,
    provider: ResolvedProvider,
    deadline: DateTime<Utc>,
}

impl<'a> Runner<'a> {
    /// Loads what the run needs. The inner error is a reason to fail the run with.
    async fn new(
        platform: &'a Platform,
        run: &'a agent_run::Model,
        lease_owner: Uuid,
        lease: &'a Lease,
        stop: &'a CancellationToken,
        publisher: &'a Publisher,
    ) -> ServiceResult<Result<Runner<'a>, String>> {
        let tenant_id = TenantId::new(run.tenant_id);
        let txn = platform.tenant_tx(tenant_id).await?;
        let Some(user_id) = run.created_by else {
            return Ok(Err("the member who started the run no longer exists".into()));
        };
        let Some(member) = membership::Entity::find()
            .filter(membership::Column::TenantId.eq(run.tenant_id))
            .filter(membership::Column::UserId.eq(user_id))
            .one(&txn)
            .await?
        else {
            return Ok(Err(
                "the member who started the run has left the organisation".into(),
            ));
        };
        // A run started with an API key counts against the key's current limits.
        let api_key_limits = match run.api_key_id {
            Some(key_id) => api_key::Entity::find_by_id(key_id)
                .one(&txn)
                .await?
                .map(|key| MinuteLimits {
                    requests_per_minute: key.requests_per_minute,
                    tokens_per_minute: key.tokens_per_minute,
                })
                .unwrap_or_default(),
            None => MinuteLimits::default(),
        };
        let ctx = RequestContext {
            tenant_id,
            user_id,
            session_id: Uuid::nil(),
            role: member.role,
            request_id: run.request_id.clone().unwrap_or_default(),
            api_key_id: run.api_key_id,
            api_key_limits,
            client_ip: None,
        };
        if member.role == Role::Viewer {
            return Ok(Err("the member who started the run is now a viewer".into()));
        }
        let Ok(provider_kind) = run.provider.parse::<ProviderKind>() else {
            return Ok(Err(format!("provider {} is not available", run.provider)));
        };
        let provider = chat::provider_for(platform, &txn, tenant_id, provider_kind).await?;
        let tools = ToolSet::load(&txn, &ctx, &tools::names(&run.tools)).await?;
        txn.commit().await?;
        let started_at = run.started_at.unwrap_or_else(Utc::now);
        let deadline = started_at + chrono::Duration::seconds(i64::from(run.timeout_seconds));
        Ok(Ok(Runner {
            platform,
            run,
            lease_owner,
            lease,
            stop,
            publisher,
            ctx,
            tools,
            provider_kind,
            provider,
            deadline,
        }))
    }

    fn tenant_id(&self) -> TenantId {
        self.ctx.tenant_id
    }

    /// Calls the model and the tools until the run ends.
    async fn drive(&mut self) -> ServiceResult<End> {
        if self.run.cancel_requested_at.is_some() {
            return Ok(End::Cancelled);
        }
        // A run that takes its workers down with it must not be resumed forever.
        if self.run.attempts > MAX_ATTEMPTS {
            return Ok(End::Failed(format!(
                "stopped after {MAX_ATTEMPTS} attempts: the workers running it kept stopping"
            )));
        }
        let (mut messages, mut step, end) = self.resume().await?;
        if let Some(end) = end {
            return Ok(end);
        }
        loop {
            if let Some(end) = self.stopped() {
                return Ok(end);
            }
            if Utc::now() >= self.deadline {
                return Ok(End::Failed(self.time_limit_reason()));
            }
            if step >= self.run.max_steps {
                return Ok(End::Failed(self.step_limit_reason()));
            }
            step += 1;
            let model_step = self.call_model(step, &messages).await?;
            if let Some(end) = model_step.end {
                return Ok(end);
            }
            if model_step.calls.is_empty() {
                return Ok(End::Succeeded(model_step.text));
            }
            // The last step's calls would feed no further model call, so they do not run,
            // as in chat replies.
            if step >= self.run.max_steps {
                return Ok(End::Failed(self.step_limit_reason()));
            }
            messages.push(ChatMessage::assistant_tool_calls(
                model_step.text,
                model_step.calls.clone(),
            ));
            match self
                .run_calls_within_limits(step, &model_step.calls)
                .await?
            {
                Ok(results) => messages.extend(results),
                Err(end) => return Ok(end),
            }
        }
    }

    fn step_limit_reason(&self) -> String {
        format!(
            "reached its limit of {} steps without a final answer",
            self.run.max_steps
        )
    }

    /// Runs the calls of `step` until they end, the run is stopped or its time limit
    /// passes. Calls cut off by a cancel or the time limit are recorded as unknown, because
    /// they may have taken effect. Calls cut off for another worker stay started, so that
    /// the next worker records them as unknown.
    async fn run_calls_within_limits(
        &self,
        step: i32,
        calls: &[ToolCall],
    ) -> ServiceResult<Result<Vec<ChatMessage>, End>> {
        let remaining = (self.deadline - Utc::now()).to_std().unwrap_or_default();
        let end = tokio::select! {
            results = self.run_calls(step, calls) => return results.map(Ok),
            () = self.stop.cancelled() => self.stopped().unwrap_or(End::Cancelled),
            () = tokio::time::sleep(remaining) => End::Failed(self.time_limit_reason()),
        };
        if end != End::Released {
            let reason = match &end {
                End::Cancelled => "the run was cancelled while the call ran",
                _ => "the run reached its time limit while the call ran",
            };
            calls::abandon_started(
                self.platform,
                self.tenant_id(),
                CallOwner::Run(self.run.id),
                reason,
            )
            .await?;
        }
        Ok(Err(end))
    }

    /// Returns why the run must stop now, if it must: a lost lease, this worker shutting
    /// down, or a cancel.
    fn stopped(&self) -> Option<End> {
        if !self.stop.is_cancelled() {
            return None;
        }
        if self.lease.is_lost() || self.platform.generations.is_interrupting() {
            Some(End::Released)
        } else {
            Some(End::Cancelled)
        }
    }

    fn time_limit_reason(&self) -> String {
        format!(
            "reached its time limit of {} seconds",
            self.run.timeout_seconds
        )
    }

    /// Rebuilds the conversation from the stored steps and finishes their tool calls:
    /// finished calls are reused, calls left started become unknown, and calls never
    /// started run now. Returns the messages, the number of stored steps, and the run's end
    /// when its last stored step was the final output.
    async fn resume(&self) -> ServiceResult<(Vec<ChatMessage>, i32, Option<End>)> {
        let mut messages = vec![ChatMessage::user(self.run.prompt.clone())];
        let txn = self.platform.tenant_tx(self.tenant_id()).await?;
        let steps = agent_run_step::Entity::find()
            .filter(agent_run_step::Column::RunId.eq(self.run.id))
            .order_by_asc(agent_run_step::Column::Step)
            .all(&txn)
            .await?;
        let executions = tool_execution::Entity::find()
            .filter(tool_execution::Column::RunId.eq(self.run.id))
            .all(&txn)
            .await?;
        txn.commit().await?;

        let stored = steps.len() as i32;
        for stored_step in &steps {
            let calls = calls_of(stored_step);
            if calls.is_empty() {
                match stored_step.finish_reason {
                    // A call cut off by a cancel or a shutdown is made again. A cancelled
                    // run never gets here, because `drive` ends it first.
                    Some(FinishReason::Cancelled | FinishReason::Error) => continue,
                    _ => {
                        let end = End::Succeeded(stored_step.text.clone());
                        return Ok((messages, stored, Some(end)));
                    }
                }
            }
            messages.push(ChatMessage::assistant_tool_calls(
                stored_step.text.clone(),
                calls.clone(),
            ));
            let mut pending = Vec::new();
            let mut results = Vec::with_capacity(calls.len());
            for call in &calls {
                let execution = executions
                    .iter()
                    .find(|row| row.step == stored_step.step && row.call_id == call.id);
                match execution {
                    Some(row) => results.push(Some(self.stored_result(row, call).await?)),
                    None => {
                        pending.push(call.clone());
                        results.push(None);
                    }
                }
            }
            let mut ran = self
                .run_calls(stored_step.step, &pending)
                .await?
                .into_iter();
            messages.extend(
                results
                    .into_iter()
                    .filter_map(|result| result.or_else(|| ran.next())),
            );
        }
        Ok((messages, stored, None))
    }

    /// Returns the tool message for a call recorded in an earlier attempt, marking a call
    /// left started as unknown.
    async fn stored_result(
        &self,
        row: &tool_execution::Model,
        call: &ToolCall,
    ) -> ServiceResult<ChatMessage> {
        let content = match row.status {
            ToolExecutionStatus::Succeeded => row.result.clone().unwrap_or_default(),
            ToolExecutionStatus::Failed => {
                format!("Error: {}", row.error.clone().unwrap_or_default())
            }
            ToolExecutionStatus::Unknown => UNKNOWN_OUTCOME.to_owned(),
            ToolExecutionStatus::Started => {
                let txn = self.platform.tenant_tx(self.tenant_id()).await?;
                tool_execution::Entity::update_many()
                    .col_expr(
                        tool_execution::Column::Status,
                        Expr::value(ToolExecutionStatus::Unknown),
                    )
                    .col_expr(tool_execution::Column::Error, Expr::value(UNKNOWN_OUTCOME))
                    .col_expr(tool_execution::Column::FinishedAt, Expr::value(Utc::now()))
                    .filter(tool_execution::Column::Id.eq(row.id))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                let unknown = CallResult {
                    status: ToolExecutionStatus::Unknown,
                    result: None,
                    error: Some(UNKNOWN_OUTCOME.to_owned()),
                };
                self.publisher
                    .publish(&RunEvent::ToolResult(ToolResultEvent::new(
                        row.step, call, &unknown,
                    )))
                    .await;
                UNKNOWN_OUTCOME.to_owned()
            }
        };
        Ok(ChatMessage::tool_result(&call.id, &call.name, content))
    }

    /// Makes model call number `step`, streaming its text as run events, and stores the step
    /// with its usage.
    async fn call_model(&self, step: i32, messages: &[ChatMessage]) -> ServiceResult<ModelStep> {
        let request = ChatRequest {
            model: self.run.model.clone(),
            system: Some(self.run.instructions.clone()),
            messages: messages.to_vec(),
            temperature: self.run.temperature.map(|t| t as f32),
            max_tokens: self.run.max_tokens.map(|t| Ord::max(t, 1) as u32),
            stop: Vec::new(),
            tools: self.tools.definitions(),
        };
        let reservation = Uuid::now_v7();
        let reserved = loop {
            let txn = self.platform.tenant_tx(self.tenant_id()).await?;
            let reserved = budget::reserve_for(
                self.platform,
                &txn,
                self.tenant_id(),
                self.ctx.key_payer(),
                self.provider_kind,
                budget::Demand::Call(&request),
                reservation,
            )
            .await;
            txn.commit().await?;
            // A run waits for room in a per-minute limit, within its time limit.
            let Err(ServiceError::RateLimited {
                retry_after_seconds,
                ..
            }) = &reserved
            else {
                break reserved;
            };
            let wait = Duration::from_secs(*retry_after_seconds);
            let remaining = (self.deadline - Utc::now()).to_std().unwrap_or_default();
            if wait >= remaining {
                break reserved;
            }
            tokio::select! {
                () = self.stop.cancelled() => {
                    return Ok(ModelStep {
                        text: String::new(),
                        calls: Vec::new(),
                        end: Some(self.stopped().unwrap_or(End::Cancelled)),
                    });
                }
                () = tokio::time::sleep(wait) => {}
            }
        };
        match reserved {
            Ok(_) => {}
            Err(error) if error.is_internal() => return Err(error),
            Err(error) => {
                return Ok(ModelStep {
                    text: String::new(),
                    calls: Vec::new(),
                    end: Some(End::Failed(error.to_string())),
                });
            }
        }

        let started_at = Utc::now();
        let streamed = self.stream(step, &request).await;
        let outcome = match (&streamed.error, streamed.stopped, streamed.timed_out) {
            (_, true, _) => "cancelled",
            (_, _, true) => "timeout",
            (Some(error), _, _) => error.code(),
            (None, false, false) => "ok",
        };
        metrics::provider_call(
            self.provider_kind,
            &request.model,
            outcome,
            streamed.elapsed,
        );
        let response = streamed.response;
        let text = response.text().to_owned();
        let (usage, estimated) = match response.usage() {
            Some(usage) => (Some(usage), false),
            None if streamed.opened => (Some(generation::estimate_usage(&request, &text)), true),
            None => (None, false),
        };
        // A call cut off for another worker to redo ends with ERROR, so that resuming
        // can distinguish it from one a member cancelled.
        let finish_reason = if streamed.stopped && self.stopped() != Some(End::Released) {
            Some(FinishReason::Cancelled)
        } else if streamed.stopped || streamed.error.is_some() || streamed.timed_out {
            Some(FinishReason::Error)
        } else {
            response.finish_reason().map(generation::finish_reason_of)
        };
        let calls = if streamed.error.is_some() || streamed.stopped || streamed.timed_out {
            Vec::new()
        } else {
            generation::normalise_call_ids(response.into_response().tool_calls)
        };

        let end = if streamed.stopped {
            self.stopped()
        } else if streamed.timed_out {
            Some(End::Failed(self.time_limit_reason()))
        } else {
            streamed
                .error
                .as_ref()
                .map(|error| End::Failed(format!("the provider failed: {error}")))
        };
        // A step that never reached the provider costs nothing and is not stored.
        if usage.is_none() && text.is_empty() {
            budget::settle(self.platform, self.tenant_id(), reservation, None, None).await;
            return Ok(ModelStep { text, calls, end });
        }
        let stored = self
            .store_step(StoredStep {
                step,
                text: &text,
                calls: &calls,
                finish_reason,
                usage: usage.as_ref(),
                estimated,
                started_at,
                reservation,
            })
            .await?;
        let end = if stored { end } else { Some(End::Released) };
        Ok(ModelStep { text, calls, end })
    }

    /// Streams one model call, publishing its text, until it ends, fails, is stopped or
    /// the run's time limit passes.
    async fn stream(&self, step: i32, request: &ChatRequest) -> Streamed {
        let started = Instant::now();
        let remaining = (self.deadline - Utc::now()).to_std().unwrap_or_default();
        let deadline = tokio::time::sleep(remaining);
        tokio::pin!(deadline);
        let mut streamed = Streamed {
            response: ResponseAccumulator::new(),
            error: None,
            opened: false,
            stopped: false,
            timed_out: false,
            elapsed: Duration::ZERO,
        };
        let opened = tokio::select! {
            () = &mut deadline => {
                streamed.timed_out = true;
                streamed.elapsed = started.elapsed();
                return streamed;
            }
            opened = generation::open(self.provider.adapter.as_ref(), request, self.stop) => opened,
        };
        let mut stream = match opened {
            generation::Opened::Stream(stream) => stream,
            generation::Opened::Failed(error) => {
                streamed.error = Some(error);
                streamed.elapsed = started.elapsed();
                return streamed;
            }
            generation::Opened::Stopped => {
                streamed.stopped = true;
                streamed.elapsed = started.elapsed();
                return streamed;
            }
        };
        streamed.opened = true;
        loop {
            let event = tokio::select! {
                biased;
                () = self.stop.cancelled() => {
                    streamed.stopped = true;
                    break;
                }
                () = &mut deadline => {
                    streamed.timed_out = true;
                    break;
                }
                event = stream.next() => event,
            };
            match event {
                Some(Ok(event)) => {
                    if let StreamEvent::TextDelta(text) = &event {
                        if streamed.response.text().is_empty() {
                            metrics::provider_first_token(
                                self.provider_kind,
                                &request.model,
                                started.elapsed(),
                            );
                        }
                        self.publisher
                            .publish(&RunEvent::Text {
                                step,
                                text: text.clone(),
                            })
                            .await;
                    }
                    streamed.response.push(&event);
                }
                Some(Err(error)) => {
                    streamed.error = Some(error);
                    break;
                }
                None => break,
            }
        }
        streamed.elapsed = started.elapsed();
        streamed
    }

    /// Stores a step, its usage record and the run's new totals in one transaction, while
    /// this worker still holds the lease. Returns false when it does not.
    async fn store_step(&self, step: StoredStep<'_>) -> ServiceResult<bool> {
        let model = &self.run.model;
        let price =
            prices::lookup_or_platform(self.platform, self.tenant_id(), self.provider_kind, model)
                .await;
        let cost_micros = step
            .usage
            .zip(price.as_ref())
            .map(|(usage, price)| pricing::cost_micros(price, usage));
        let (input_tokens, output_tokens) = step
            .usage
            .map_or((0, 0), |usage| (usage.input_tokens, usage.output_tokens));
        let now = Utc::now();

        let txn = self.platform.tenant_tx(self.tenant_id()).await?;
        let updated = agent_run::Entity::update_many()
            .col_expr(agent_run::Column::Steps, Expr::value(step.step))
            .col_expr(
                agent_run::Column::InputTokens,
                Expr::col(agent_run::Column::InputTokens).add(input_tokens),
            )
            .col_expr(
                agent_run::Column::OutputTokens,
                Expr::col(agent_run::Column::OutputTokens).add(output_tokens),
            )
            .col_expr(
                agent_run::Column::CostMicros,
                Expr::col(agent_run::Column::CostMicros).add(cost_micros.unwrap_or(0)),
            )
            .filter(agent_run::Column::Id.eq(self.run.id))
            .filter(agent_run::Column::LeaseOwner.eq(self.lease_owner))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            budget::settle(
                self.platform,
                self.tenant_id(),
                step.reservation,
                None,
                None,
            )
            .await;
            return Ok(false);
        }
        agent_run_step::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(self.run.tenant_id),
            run_id: Set(self.run.id),
            step: Set(step.step),
            provider: Set(self.provider_kind.as_str().to_owned()),
            model: Set(model.clone()),
            text: Set(step.text.to_owned()),
            tool_calls: Set(calls_json(step.calls)),
            finish_reason: Set(step.finish_reason),
            input_tokens: Set(input_tokens),
            output_tokens: Set(output_tokens),
            cost_micros: Set(cost_micros),
            usage_estimated: Set(step.estimated),
            started_at: Set(step.started_at),
            finished_at: Set(now),
        }
        .insert(&txn)
        .await?;
        if let Some(usage) = step.usage {
            usage_record::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(self.run.tenant_id),
                user_id: Set(self.run.created_by),
                agent_id: Set(self.run.agent_id),
                conversation_id: Set(None),
                message_id: Set(None),
                agent_run_id: Set(Some(self.run.id)),
                provider: Set(self.provider_kind.as_str().to_owned()),
                model: Set(model.clone()),
                input_tokens: Set(usage.input_tokens),
                output_tokens: Set(usage.output_tokens),
                cached_input_tokens: Set(usage.cached_input_tokens.unwrap_or(0)),
                cost_micros: Set(cost_micros.unwrap_or(0)),
                price_known: Set(cost_micros.is_some()),
                estimated: Set(step.estimated),
                // Agent runs make no response cache lookup.
                response_cache: Set(None),
                created_at: Set(now),
                counted_at: Set(None),
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;

        budget::settle(
            self.platform,
            self.tenant_id(),
            step.reservation,
            step.usage,
            cost_micros,
        )
        .await;
        if let Some(usage) = step.usage {
            metrics::provider_usage(
                self.provider_kind,
                model,
                usage.input_tokens,
                usage.output_tokens,
                cost_micros,
            );
            self.platform
                .jobs
                .count_usage(CountUsage {
                    tenant_id: self.run.tenant_id,
                    request_id: self.run.request_id.clone(),
                })
                .await;
        }
        Ok(true)
    }

    /// Runs the calls of `step` at the same time and returns their results as tool
    /// messages, in the order of `calls`.
    async fn run_calls(&self, step: i32, calls: &[ToolCall]) -> ServiceResult<Vec<ChatMessage>> {
        calls::run_step(
            self.platform,
            &self.ctx,
            &self.tools,
            CallOwner::Run(self.run.id),
            step,
            calls,
            self.publisher,
        )
        .await
    }
}

/// The outcome of one provider stream.
struct Streamed {
    response: ResponseAccumulator,
    error: Option<ProviderError>,
    /// Whether the provider accepted the request, so that it may bill for it.
    opened: bool,
    stopped: bool,
    timed_out: bool,
    elapsed: Duration,
}

/// A step to store.
struct StoredStep<'a> {
    step: i32,
    text: &'a str,
    calls: &'a [ToolCall],
    finish_reason: Option<FinishReason>,
    usage: Option<&'a Usage>,
    estimated: bool,
    started_at: DateTime<Utc>,
    reservation: Uuid,
}

fn calls_json(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|call| json!({"id": call.id, "name": call.name, "arguments": call.arguments}))
            .collect(),
    )
}

/// Reads the tool calls stored with a step.
fn calls_of(step: &agent_run_step::Model) -> Vec<ToolCall> {
    step.tool_calls
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|call| ToolCall {
                    id: call["id"].as_str().unwrap_or_default().to_owned(),
                    name: call["name"].as_str().unwrap_or_default().to_owned(),
                    arguments: call["arguments"].clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the run's end while this worker holds its lease, and publishes it. A released
/// run keeps its state and gives its lease up, so that another worker can take it at once.
async fn finish(
    platform: &Platform,
    run: &agent_run::Model,
    lease_owner: Uuid,
    end: End,
    publisher: &Publisher,
) -> ServiceResult<()> {
    let (status, output, error) = match end {
        End::Succeeded(output) => (AgentRunStatus::Succeeded, Some(output), None),
        End::Failed(reason) => (AgentRunStatus::Failed, None, Some(reason)),
        End::Cancelled => (
            AgentRunStatus::Cancelled,
            None,
            Some("cancelled by a member".to_owned()),
        ),
        End::Released => {
            let txn = platform.tenant_tx(TenantId::new(run.tenant_id)).await?;
            agent_run::Entity::update_many()
                .col_expr(
                    agent_run::Column::LeaseOwner,
                    Expr::value(Option::<Uuid>::None),
                )
                .col_expr(
                    agent_run::Column::LeaseExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(agent_run::Column::Id.eq(run.id))
                .filter(agent_run::Column::LeaseOwner.eq(lease_owner))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            // Another worker takes the run at once; the sweep covers a failed enqueue.
            platform
                .jobs
                .run_agent(RunAgent {
                    tenant_id: run.tenant_id,
                    run_id: run.id,
                    request_id: run.request_id.clone(),
                })
                .await;
            info!("agent run released for another worker");
            return Ok(());
        }
    };
    let txn = platform.tenant_tx(TenantId::new(run.tenant_id)).await?;
    let finished = agent_run::Entity::update_many()
        .col_expr(agent_run::Column::Status, Expr::value(status))
        .col_expr(agent_run::Column::Output, Expr::value(output))
        .col_expr(agent_run::Column::Error, Expr::value(error))
        .col_expr(agent_run::Column::FinishedAt, Expr::value(Utc::now()))
        .col_expr(
            agent_run::Column::LeaseOwner,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            agent_run::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(agent_run::Column::Id.eq(run.id))
        .filter(agent_run::Column::LeaseOwner.eq(lease_owner))
        .exec_with_returning(&txn)
        .await?;
    let Some(finished) = finished.into_iter().next() else {
        txn.rollback().await?;
        warn!("lost the agent run's lease before storing its end");
        return Ok(());
    };
    // A cancelled run was ended by a member, who needs no notice of it.
    let event = match finished.status {
        AgentRunStatus::Succeeded => Some(EventType::AgentRunSucceeded),
        AgentRunStatus::Failed => Some(EventType::AgentRunFailed),
        _ => None,
    };
    let outbox = match event {
        Some(event) => {
            webhooks::record(&txn, run.tenant_id, event, run_event_data(&finished)).await?
        }
        None => Outbox::default(),
    };
    txn.commit().await?;
    outbox.dispatch(platform).await;
    publisher.publish(&RunEvent::finished(&finished)).await;
    info!(
        status = ?finished.status,
        steps = finished.steps,
        input_tokens = finished.input_tokens,
        output_tokens = finished.output_tokens,
        cost_micros = finished.cost_micros,
        "agent run finished"
    );
    Ok(())
}

/// The `data` of a run's webhook event.
fn run_event_data(run: &agent_run::Model) -> serde_json::Value {
    serde_json::json!({
        "agentRunId": run.id,
        "agentId": run.agent_id,
        "status": run.status,
        "output": run.output,
        "error": run.error,
        "stepsTaken": run.steps,
        "inputTokens": run.input_tokens,
        "outputTokens": run.output_tokens,
        "costMicros": run.cost_micros,
        "finishedAt": run.finished_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_calls_read_back() {
        let calls = vec![ToolCall {
            id: "c1".into(),
            name: "calculate".into(),
            arguments: json!({"a": 1}),
        }];
        let step = agent_run_step::Model {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            run_id: Uuid::nil(),
            step: 1,
            provider: "openai".into(),
            model: "m".into(),
            text: String::new(),
            tool_calls: calls_json(&calls),
            finish_reason: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_micros: None,
            usage_estimated: false,
            started_at: Utc::now(),
            finished_at: Utc::now(),
        };
        assert_eq!(calls_of(&step), calls);
    }
}
