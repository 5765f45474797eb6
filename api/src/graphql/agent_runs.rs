//! Agent runs: executing an agent in the background, cancelling a run, reading runs with
//! their steps and tool executions, and following a run's events.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription,
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::{agent_run, agent_run_step, tool_execution};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use service::agent_runs::{self, CursorEvent, RunEvent, RunFilter, stats};
use uuid::Uuid;

use super::{
    agents::Provider,
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    conversations::FinishReason,
    error::{GqlResult, bad_input, to_graphql_error},
    loaders::{ByRun, RunStepsLoader, ToolExecutionsLoader},
    scalars::BigInt,
};

/// State of an agent run.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AgentRunStatus {
    /// Waiting for a worker.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<entity::AgentRunStatus> for AgentRunStatus {
    fn from(status: entity::AgentRunStatus) -> Self {
        match status {
            entity::AgentRunStatus::Queued => AgentRunStatus::Queued,
            entity::AgentRunStatus::Running => AgentRunStatus::Running,
            entity::AgentRunStatus::Succeeded => AgentRunStatus::Succeeded,
            entity::AgentRunStatus::Failed => AgentRunStatus::Failed,
            entity::AgentRunStatus::Cancelled => AgentRunStatus::Cancelled,
        }
    }
}

impl From<AgentRunStatus> for entity::AgentRunStatus {
    fn from(status: AgentRunStatus) -> Self {
        match status {
            AgentRunStatus::Queued => entity::AgentRunStatus::Queued,
            AgentRunStatus::Running => entity::AgentRunStatus::Running,
            AgentRunStatus::Succeeded => entity::AgentRunStatus::Succeeded,
            AgentRunStatus::Failed => entity::AgentRunStatus::Failed,
            AgentRunStatus::Cancelled => entity::AgentRunStatus::Cancelled,
        }
    }
}

/// Outcome of one tool call.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ToolExecutionStatus {
    /// The tool is running.
    Started,
    Succeeded,
    /// The tool failed, or its arguments were rejected before it ran.
    Failed,
    /// The worker running the call stopped before recording its outcome; the call was not
    /// run again.
    Unknown,
}

impl From<entity::ToolExecutionStatus> for ToolExecutionStatus {
    fn from(status: entity::ToolExecutionStatus) -> Self {
        match status {
            entity::ToolExecutionStatus::Started => ToolExecutionStatus::Started,
            entity::ToolExecutionStatus::Succeeded => ToolExecutionStatus::Succeeded,
            entity::ToolExecutionStatus::Failed => ToolExecutionStatus::Failed,
            entity::ToolExecutionStatus::Unknown => ToolExecutionStatus::Unknown,
        }
    }
}

/// One background execution of an agent on a prompt. Runs are visible to every member of
/// the tenant.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct AgentRun {
    pub id: ID,
    /// The agent, or null once it was deleted.
    pub agent_id: Option<ID>,
    pub prompt: String,
    pub status: AgentRunStatus,
    pub provider: Provider,
    pub model: String,
    /// Names of the tools the run may call, as the agent listed them when the run was
    /// created.
    pub tools: Vec<String>,
    pub max_steps: i32,
    pub timeout_seconds: i32,
    /// The final output, once the run succeeded.
    pub output: Option<String>,
    /// The reason the run failed or was cancelled.
    pub error: Option<String>,
    /// Model calls made so far.
    pub steps_taken: i32,
    pub input_tokens: BigInt,
    pub output_tokens: BigInt,
    /// Cost of the run's model calls in micro-dollars, without calls to models whose price
    /// is unknown.
    pub cost_micros: BigInt,
    /// Times a worker took the run; more than one means it was resumed after a worker
    /// stopped.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Milliseconds from the first start to the end, once the run has ended.
    pub duration_ms: Option<BigInt>,
    #[graphql(skip)]
    pub run_id: Uuid,
}

impl From<agent_run::Model> for AgentRun {
    fn from(run: agent_run::Model) -> Self {
        let duration_ms = run
            .started_at
            .zip(run.finished_at)
            .map(|(started, finished)| BigInt((finished - started).num_milliseconds()));
        Self {
            id: run.id.into(),
            run_id: run.id,
            agent_id: run.agent_id.map(Into::into),
            provider: Provider::from_stored(&run.provider),
            tools: service::tools::names(&run.tools),
            prompt: run.prompt,
            status: run.status.into(),
            model: run.model,
            max_steps: run.max_steps,
            timeout_seconds: run.timeout_seconds,
            output: run.output,
            error: run.error,
            steps_taken: run.steps,
            input_tokens: BigInt(run.input_tokens),
            output_tokens: BigInt(run.output_tokens),
            cost_micros: BigInt(run.cost_micros),
            attempts: run.attempts,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            duration_ms,
        }
    }
}

#[ComplexObject]
impl AgentRun {
    /// The run's completed model calls, in order.
    async fn steps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AgentRunStep>> {
        let loader = ctx.data_unchecked::<DataLoader<RunStepsLoader>>();
        let steps = loader.load_one(self.run_id).await?.unwrap_or_default();
        Ok(steps.into_iter().map(AgentRunStep::from).collect())
    }

    /// The run's tool calls, by step and in the order the model listed them.
    async fn tool_executions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ToolExecution>> {
        let loader = ctx.data_unchecked::<DataLoader<ToolExecutionsLoader>>();
        let executions = loader
            .load_one(ByRun(self.run_id))
            .await?
            .unwrap_or_default();
        Ok(executions.into_iter().map(ToolExecution::from).collect())
    }
}

/// A tool call the model asked for.
#[derive(SimpleObject, Clone)]
pub struct ToolCallRequest {
    /// The call's id, unique within its step.
    pub id: String,
    pub name: String,
    pub arguments: Json<Value>,
}

/// One completed model call of a run.
#[derive(SimpleObject, Clone)]
pub struct AgentRunStep {
    /// Position in the run, starting at 1.
    pub step: i32,
    pub provider: Provider,
    pub model: String,
    /// Text the model produced.
    pub text: String,
    /// Tool calls the model asked for; none in the final step.
    pub tool_calls: Vec<ToolCallRequest>,
    pub finish_reason: Option<FinishReason>,
    pub input_tokens: BigInt,
    pub output_tokens: BigInt,
    /// Cost in micro-dollars, or null when the model's price is unknown.
    pub cost_micros: Option<BigInt>,
    /// True when the token counts were estimated because the provider sent none.
    pub usage_estimated: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl From<agent_run_step::Model> for AgentRunStep {
    fn from(step: agent_run_step::Model) -> Self {
        let tool_calls = step
            .tool_calls
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|call| ToolCallRequest {
                        id: call["id"].as_str().unwrap_or_default().to_owned(),
                        name: call["name"].as_str().unwrap_or_default().to_owned(),
                        arguments: Json(call["arguments"].clone()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            step: step.step,
            provider: Provider::from_stored(&step.provider),
            model: step.model,
            text: step.text,
            tool_calls,
            finish_reason: step.finish_reason.map(Into::into),
            input_tokens: BigInt(step.input_tokens),
            output_tokens: BigInt(step.output_tokens),
            cost_micros: step.cost_micros.map(BigInt),
            usage_estimated: step.usage_estimated,
            started_at: step.started_at,
            finished_at: step.finished_at,
        }
    }
}

/// One tool call of an agent run or of a chat reply: what was asked, and how it ended.
#[derive(SimpleObject, Clone)]
pub struct ToolExecution {
    pub id: ID,
    pub step: i32,
    pub call_id: String,
    pub tool_name: String,
    /// The tenant tool called, or null for a built-in tool or a deleted one.
    pub tool_id: Option<ID>,
    pub arguments: Json<Value>,
    pub status: ToolExecutionStatus,
    /// The tool's output, as the model read it.
    pub result: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<BigInt>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<tool_execution::Model> for ToolExecution {
    fn from(execution: tool_execution::Model) -> Self {
        Self {
            id: execution.id.into(),
            step: execution.step,
            call_id: execution.call_id,
            tool_name: execution.tool_name,
            tool_id: execution.tool_id.map(Into::into),
            arguments: Json(execution.arguments),
            status: execution.status.into(),
            result: execution.result,
            error: execution.error,
            duration_ms: execution.duration_ms.map(BigInt),
            started_at: execution.started_at,
            finished_at: execution.finished_at,
        }
    }
}

/// Kind of a run event.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AgentRunEventKind {
    /// The run was queued, or a worker started or resumed it.
    Status,
    /// Text from the model.
    Text,
    /// The model asked for a tool call, which is about to run.
    ToolCall,
    /// A tool call ended.
    ToolResult,
    /// The run ended; always the last event.
    Finished,
}

/// One event of a run. The fields that apply to the event's kind are set.
#[derive(SimpleObject)]
pub struct AgentRunEvent {
    /// Pass as `after` to resume the stream right after this event.
    pub cursor: String,
    pub kind: AgentRunEventKind,
    /// The run's state, for STATUS and FINISHED events.
    pub status: Option<AgentRunStatus>,
    /// The step, for TEXT, TOOL_CALL and TOOL_RESULT events.
    pub step: Option<i32>,
    /// New model text, for TEXT events.
    pub text: Option<String>,
    /// The call, for TOOL_CALL and TOOL_RESULT events.
    pub call_id: Option<String>,
    pub tool_name: Option<String>,
    /// The call's arguments, for TOOL_CALL events.
    pub arguments: Option<Json<Value>>,
    /// The call's outcome, for TOOL_RESULT events.
    pub tool_status: Option<ToolExecutionStatus>,
    /// The tool's result, for TOOL_RESULT events, or the run's output, for FINISHED events
    /// of a run that succeeded.
    pub output: Option<String>,
    /// The reason a tool call or the run failed.
    pub error: Option<String>,
}

impl AgentRunEvent {
    fn empty(cursor: String, kind: AgentRunEventKind) -> Self {
        Self {
            cursor,
            kind,
            status: None,
            step: None,
            text: None,
            call_id: None,
            tool_name: None,
            arguments: None,
            tool_status: None,
            output: None,
            error: None,
        }
    }
}

impl From<CursorEvent> for AgentRunEvent {
    fn from(CursorEvent { cursor, event }: CursorEvent) -> Self {
        match event {
            RunEvent::Status { status } => Self {
                status: Some(status.into()),
                ..Self::empty(cursor, AgentRunEventKind::Status)
            },
            RunEvent::Text { step, text } => Self {
                step: Some(step),
                text: Some(text),
                ..Self::empty(cursor, AgentRunEventKind::Text)
            },
            RunEvent::ToolCall(call) => Self {
                step: Some(call.step),
                call_id: Some(call.call_id),
                tool_name: Some(call.name),
                arguments: Some(Json(call.arguments)),
                ..Self::empty(cursor, AgentRunEventKind::ToolCall)
            },
            RunEvent::ToolResult(result) => Self {
                step: Some(result.step),
                call_id: Some(result.call_id),
                tool_name: Some(result.name),
                tool_status: Some(result.status.into()),
                output: result.result,
                error: result.error,
                ..Self::empty(cursor, AgentRunEventKind::ToolResult)
            },
            RunEvent::Finished {
                status,
                output,
                error,
            } => Self {
                status: Some(status.into()),
                output,
                error,
                ..Self::empty(cursor, AgentRunEventKind::Finished)
            },
        }
    }
}

/// Tool calls of one tool in an agent's runs.
#[derive(SimpleObject, Clone)]
pub struct ToolCallStats {
    pub tool_name: String,
    pub calls: BigInt,
    pub succeeded: BigInt,
    pub failed: BigInt,
    /// Calls whose worker died before recording an outcome.
    pub unknown: BigInt,
}

/// Statistics of an agent's runs created in a period.
#[derive(SimpleObject, Clone)]
pub struct AgentStats {
    pub agent_id: ID,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub runs: BigInt,
    pub succeeded: BigInt,
    pub failed: BigInt,
    pub cancelled: BigInt,
    /// Runs still queued or running.
    pub unfinished: BigInt,
    /// Share of the finished runs that succeeded, from 0 to 1; null when none finished.
    /// Cancelled runs count as not successful.
    pub success_rate: Option<f64>,
    /// Median duration of the finished runs, from first start to end, in milliseconds.
    pub p50_duration_ms: Option<BigInt>,
    /// 95th percentile of the same durations.
    pub p95_duration_ms: Option<BigInt>,
    pub input_tokens: BigInt,
    pub output_tokens: BigInt,
    pub cost_micros: BigInt,
    /// Calls per tool, most called first.
    pub tool_calls: Vec<ToolCallStats>,
}

impl From<stats::AgentStats> for AgentStats {
    fn from(stats: stats::AgentStats) -> Self {
        let totals = &stats.totals;
        // Whole milliseconds, cut like `AgentRun.durationMs`.
        let milliseconds = |value: Option<f64>| value.map(|ms| BigInt(ms.floor() as i64));
        Self {
            agent_id: stats.agent_id.into(),
            from: stats.from,
            to: stats.to,
            runs: BigInt(totals.runs),
            succeeded: BigInt(totals.succeeded),
            failed: BigInt(totals.failed),
            cancelled: BigInt(totals.cancelled),
            unfinished: BigInt(totals.unfinished),
            success_rate: totals.success_rate(),
            p50_duration_ms: milliseconds(totals.p50_duration_ms),
            p95_duration_ms: milliseconds(totals.p95_duration_ms),
            input_tokens: BigInt(totals.input_tokens),
            output_tokens: BigInt(totals.output_tokens),
            cost_micros: BigInt(totals.cost_micros),
            tool_calls: stats
                .tool_calls
                .into_iter()
                .map(|tool| ToolCallStats {
                    tool_name: tool.tool_name,
                    calls: BigInt(tool.calls),
                    succeeded: BigInt(tool.succeeded),
                    failed: BigInt(tool.failed),
                    unknown: BigInt(tool.unknown),
                })
                .collect(),
        }
    }
}

#[derive(InputObject)]
pub struct ExecuteAgentInput {
    pub agent_id: ID,
    /// The task for the agent, up to 100,000 characters.
    pub prompt: String,
}

#[derive(InputObject)]
pub struct CancelAgentRunInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct AgentRunPayload {
    pub agent_run: AgentRun,
}

#[derive(Default)]
pub struct AgentRunQuery;

#[Object]
impl AgentRunQuery {
    /// One agent run of the caller's tenant.
    async fn agent_run(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AgentRun> {
        let id = parse_id("id", &id)?;
        Ok(agent_runs::get(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }

    /// Statistics of the agent's runs created from `from` (30 days before `to` when absent)
    /// up to `to` (now when absent).
    async fn agent_stats(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<AgentStats> {
        let agent_id = parse_id("agentId", &agent_id)?;
        if let (Some(from), None) = (from, to)
            && from >= Utc::now()
        {
            return Err(bad_input("from", "must be in the past when to is absent"));
        }
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - chrono::Duration::days(30));
        let stats = stats::for_agent(platform(ctx), caller(ctx)?, agent_id, from, to)
            .await
            .gql()?;
        Ok(stats.into())
    }

    /// The tenant's agent runs, newest first, optionally of one agent or in one state.
    async fn agent_runs(
        &self,
        ctx: &Context<'_>,
        agent_id: Option<ID>,
        status: Option<AgentRunStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<AgentRun>> {
        let filter = RunFilter {
            agent_id: agent_id.map(|id| parse_id("agentId", &id)).transpose()?,
            status: status.map(Into::into),
        };
        let page = agent_runs::list(
            platform(ctx),
            caller(ctx)?,
            &filter,
            &page_request(first, after),
        )
        .await
        .gql()?;
        Ok(to_connection(page, AgentRun::from))
    }
}

#[derive(Default)]
pub struct AgentRunMutation;

#[Object]
impl AgentRunMutation {
    /// Queues a run of the agent on the prompt and returns it at once, in state QUEUED. A
    /// worker runs it; follow it with `agentRunEvents(runId: ...)`. Needs the member role.
    async fn execute_agent(
        &self,
        ctx: &Context<'_>,
        input: ExecuteAgentInput,
    ) -> async_graphql::Result<AgentRunPayload> {
        let agent_id = parse_id("agentId", &input.agent_id)?;
        let run = agent_runs::execute(platform(ctx), caller(ctx)?, agent_id, &input.prompt)
            .await
            .gql()?;
        Ok(AgentRunPayload {
            agent_run: run.into(),
        })
    }

    /// Cancels a run: a queued run ends at once, a running one stops between steps or
    /// inside its current model call, keeping what it did so far. Waits up to 5 seconds for
    /// the run to end and returns it. Needs the member role.
    async fn cancel_agent_run(
        &self,
        ctx: &Context<'_>,
        input: CancelAgentRunInput,
    ) -> async_graphql::Result<AgentRunPayload> {
        let id = parse_id("id", &input.id)?;
        let run = agent_runs::cancel(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(AgentRunPayload {
            agent_run: run.into(),
        })
    }
}

#[derive(Default)]
pub struct AgentRunSubscription;

#[Subscription]
impl AgentRunSubscription {
    /// Streams a run's events from its creation to its end: status changes, model text,
    /// tool calls and results, then one FINISHED event. A subscriber that starts late
    /// receives the events it missed first; `after` resumes from an event's cursor.
    async fn agent_run_events(
        &self,
        ctx: &Context<'_>,
        run_id: ID,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AgentRunEvent>> + use<>>
    {
        let run_id = parse_id("runId", &run_id)?;
        let events = agent_runs::subscribe(platform(ctx), caller(ctx)?, run_id, after)
            .await
            .gql()?;
        Ok(events.map(|event| event.map(AgentRunEvent::from).map_err(to_graphql_error)))
    }
}
