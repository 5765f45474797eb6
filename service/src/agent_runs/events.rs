//! The per-run Redis Stream of run events: written by the worker running the run, read by
//! any api process, kept for a while after the run ends so that late subscribers get the
//! whole history.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use entity::{AgentRunStatus, agent_run};
use futures_util::Stream;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tracing::warn;
use uuid::Uuid;

use crate::{
    Platform, RequestContext,
    chat::events::{BLOCK_TIMEOUT, is_stream_id, read_after},
    error::{ServiceError, ServiceResult},
    live::{Announcer, Change},
    redis_conn::Redis,
    subscription::{self, EventSender},
    tools::calls::{CallObserver, ToolCallEvent, ToolResultEvent},
};

/// An event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run entered a state: queued when created, running each time a worker takes it.
    Status { status: AgentRunStatus },
    /// Text the model produced in `step`.
    Text { step: i32, text: String },
    /// The model asked for a tool call; the tool is about to run.
    ToolCall(ToolCallEvent),
    /// A tool call ended.
    ToolResult(ToolResultEvent),
    /// The run ended; always the last event.
    Finished {
        status: AgentRunStatus,
        output: Option<String>,
        error: Option<String>,
    },
}

impl RunEvent {
    pub(crate) fn finished(run: &agent_run::Model) -> Self {
        RunEvent::Finished {
            status: run.status,
            output: run.output.clone(),
            error: run.error.clone(),
        }
    }
}

/// An event with the cursor that resumes a subscription right after it.
#[derive(Debug, Clone)]
pub struct CursorEvent {
    pub cursor: String,
    pub event: RunEvent,
}

pub fn stream_key(redis: &Redis, run_id: Uuid) -> String {
    redis.key(&["agent-run-stream", &run_id.to_string()])
}

/// Appends a run's events to its stream, and announces its changes of state to the
/// tenant's live updates. Redis failures are logged once and do not stop the run: the
/// database keeps its steps and final state either way.
pub(crate) struct Publisher {
    redis: Redis,
    key: String,
    ttl: Duration,
    failed: AtomicBool,
    live: Announcer,
    tenant_id: Uuid,
    run_id: Uuid,
    agent_id: Option<Uuid>,
}

impl Publisher {
    pub(crate) fn new(platform: &Platform, run: &agent_run::Model) -> Self {
        Self {
            redis: platform.redis.clone(),
            key: stream_key(&platform.redis, run.id),
            ttl: platform.settings.stream_ttl,
            failed: AtomicBool::new(false),
            live: platform.live.clone(),
            tenant_id: run.tenant_id,
            run_id: run.id,
            agent_id: run.agent_id,
        }
    }

    pub(crate) async fn publish(&self, event: &RunEvent) {
        let status = match event {
            RunEvent::Status { status } => Some(*status),
            RunEvent::Finished { status, .. } => Some(*status),
            _ => None,
        };
        if let Some(status) = status {
            let change = Change::AgentRunChanged {
                run_id: self.run_id,
                agent_id: self.agent_id,
                status,
            };
            self.live.tenant(self.tenant_id, change);
        }
        let result = async {
            let payload = serde_json::to_string(event).map_err(|error| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "encoding run event",
                    error.to_string(),
                ))
            })?;
            let mut redis = self.redis.shared().await?;
            let mut pipe = redis::pipe();
            pipe.xadd(&self.key, "*", &[("event", payload.as_str())])
                .ignore();
            // The stream outlives the run by the time-to-live; until then it has none.
            if matches!(event, RunEvent::Finished { .. }) {
                pipe.expire(&self.key, self.ttl.as_secs() as i64).ignore();
            }
            pipe.query_async::<()>(&mut redis).await
        }
        .await;
        if let Err(error) = result
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            warn!(%error, key = %self.key, "writing run events to Redis failed");
        }
    }
}

impl CallObserver for Publisher {
    async fn started(&self, event: ToolCallEvent) {
        self.publish(&RunEvent::ToolCall(event)).await;
    }

    async fn finished(&self, event: ToolResultEvent) {
        self.publish(&RunEvent::ToolResult(event)).await;
    }
}

/// Follows the run `run_id`: every event after `after` (from the start when absent), then
/// live events until the run finishes.
pub async fn subscribe(
    platform: &Platform,
    ctx: &RequestContext,
    run_id: Uuid,
    after: Option<String>,
) -> ServiceResult<impl Stream<Item = ServiceResult<CursorEvent>> + use<>> {
    let run = super::get(platform, ctx, run_id).await?;
    let start = match after {
        Some(cursor) if is_stream_id(&cursor) => cursor,
        Some(_) => {
            return Err(ServiceError::invalid(
                "after",
                "is not a cursor of this stream",
            ));
        }
        None => "0-0".to_owned(),
    };
    let connection = platform.redis.blocking_connection().await?;

    let (mut sender, events) = subscription::buffer(platform, &start);
    let platform = platform.clone();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let key = stream_key(&platform.redis, run.id);
        if let Err(error) = follow(&platform, &ctx, connection, &key, run, start, &mut sender).await
        {
            sender.fail(error).await;
        }
    });
    Ok(events)
}

async fn follow(
    platform: &Platform,
    ctx: &RequestContext,
    mut connection: redis::aio::MultiplexedConnection,
    key: &str,
    run: agent_run::Model,
    mut last_id: String,
    sender: &mut EventSender<CursorEvent>,
) -> ServiceResult<()> {
    // A run that ended longer ago than the stream's time-to-live is served from the
    // database at once.
    let stream_exists: bool = connection.exists(key).await?;
    if run.status.is_finished() && !stream_exists {
        let event = CursorEvent {
            cursor: last_id.clone(),
            event: RunEvent::finished(&run),
        };
        let _ = sender.send(event, &last_id).await;
        return Ok(());
    }
    // A run that has ended adds nothing to its stream, so reading it to the end is enough.
    let mut ended = run.status.is_finished();
    loop {
        let block = (!ended).then_some(BLOCK_TIMEOUT);
        let entries = read_after(&mut connection, key, &last_id, block).await?;
        let mut read_any = false;
        for entry in entries {
            read_any = true;
            last_id = entry.id.clone();
            let Some(event) = entry
                .get::<String>("event")
                .and_then(|payload| serde_json::from_str::<RunEvent>(&payload).ok())
            else {
                continue;
            };
            let done = matches!(event, RunEvent::Finished { .. });
            let event = CursorEvent {
                cursor: entry.id.clone(),
                event,
            };
            if sender.send(event, &entry.id).await.is_err() || done {
                return Ok(());
            }
        }
        if sender.is_closed() || (ended && !read_any) {
            return Ok(());
        }
        if read_any {
            continue;
        }

        // Nothing arrived in a while: the run may have ended, and its stream expired.
        let run = super::get(platform, ctx, run.id).await?;
        if run.status.is_finished() {
            if !connection.exists::<_, bool>(key).await? {
                let event = CursorEvent {
                    cursor: last_id.clone(),
                    event: RunEvent::finished(&run),
                };
                let _ = sender.send(event, &last_id).await;
                return Ok(());
            }
            ended = true;
        }
    }
}
