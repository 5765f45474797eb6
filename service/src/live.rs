//! Live updates of a tenant: tasks, agent runs, conversations and messages changing, and
//! the providers' health, for the `tenantEvents` subscription.
//!
//! Changes are appended, after their transaction commits, to a Redis Stream per tenant.
//! Provider health belongs to no tenant and goes to one shared stream. Every api replica
//! thus serves every subscriber, and a subscriber that reconnects resumes from its cursor. A background task per process writes them in order, in pipelines, so that a
//! change never waits for Redis. They are notifications, not a ledger: a change made while
//! Redis is unreachable is not announced, and the streams keep the last
//! [`KEPT_PER_STREAM`] events for `STREAM_TTL_SECONDS` after the last one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{AgentRunStatus, MessageStatus, Role, provider_health::ProviderStatus};
use futures_util::Stream;
use redis::{
    AsyncCommands,
    streams::{StreamId, StreamMaxlen, StreamReadOptions, StreamReadReply},
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use crate::{
    Platform, RequestContext,
    chat::events::is_stream_id,
    error::{ServiceError, ServiceResult},
    redis_conn::Redis,
    subscription::{self, EventSender},
};

/// Events kept per stream; older ones are trimmed.
pub const KEPT_PER_STREAM: usize = 1000;
/// Changes waiting for the background writer; beyond this they are dropped with a warning.
const QUEUE: usize = 10_000;
/// Changes written in one pipeline.
const BATCH: usize = 256;
/// How long one blocking read waits before checking that the subscriber is still there.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    TaskCreated {
        task_id: Uuid,
    },
    TaskUpdated {
        task_id: Uuid,
    },
    TaskDeleted {
        task_id: Uuid,
    },
    /// An agent run was queued, started, or ended. `agent_id` is `None` once the agent
    /// has been deleted.
    AgentRunChanged {
        run_id: Uuid,
        agent_id: Option<Uuid>,
        status: AgentRunStatus,
    },
    /// `owner_id` is the member the conversation belongs to, if they are still a user.
    ConversationCreated {
        conversation_id: Uuid,
        owner_id: Option<Uuid>,
    },
    MessageCreated {
        message_id: Uuid,
        conversation_id: Uuid,
        owner_id: Option<Uuid>,
    },
    /// A reply stopped streaming: completed, stopped, failed or interrupted.
    MessageCompleted {
        message_id: Uuid,
        conversation_id: Uuid,
        owner_id: Option<Uuid>,
        status: MessageStatus,
    },
    /// `provider` is the provider's name, such as `openai`.
    ProviderHealthChanged {
        provider: String,
        status: ProviderStatus,
    },
}

/// The kind of a [`Change`], by which subscribers filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    TaskCreated,
    TaskUpdated,
    TaskDeleted,
    AgentRunChanged,
    ConversationCreated,
    MessageCreated,
    MessageCompleted,
    ProviderHealthChanged,
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Self::TaskCreated { .. } => ChangeKind::TaskCreated,
            Self::TaskUpdated { .. } => ChangeKind::TaskUpdated,
            Self::TaskDeleted { .. } => ChangeKind::TaskDeleted,
            Self::AgentRunChanged { .. } => ChangeKind::AgentRunChanged,
            Self::ConversationCreated { .. } => ChangeKind::ConversationCreated,
            Self::MessageCreated { .. } => ChangeKind::MessageCreated,
            Self::MessageCompleted { .. } => ChangeKind::MessageCompleted,
            Self::ProviderHealthChanged { .. } => ChangeKind::ProviderHealthChanged,
        }
    }

    /// Returns whether a member with `ctx` may read what changed: conversations and their
    /// messages are their owner's unless the role reads every conversation, and provider
    /// health needs the member role.
    pub fn visible_to(&self, ctx: &RequestContext) -> bool {
        match self {
            Self::ConversationCreated { owner_id, .. }
            | Self::MessageCreated { owner_id, .. }
            | Self::MessageCompleted { owner_id, .. } => {
                *owner_id == Some(ctx.user_id) || ctx.sees_all_conversations()
            }
            Self::ProviderHealthChanged { .. } => ctx.require(Role::Member).is_ok(),
            Self::TaskCreated { .. }
            | Self::TaskUpdated { .. }
            | Self::TaskDeleted { .. }
            | Self::AgentRunChanged { .. } => true,
        }
    }
}

/// A change as stored and delivered, with when it happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: Change,
}

/// An update with the cursor that resumes a subscription right after it.
#[derive(Debug, Clone)]
pub struct CursorUpdate {
    pub cursor: String,
    pub update: Update,
}

/// The sending half of this process's background writer. Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    queue: mpsc::Sender<(Option<Uuid>, Update)>,
    full: Arc<AtomicBool>,
}

impl Announcer {
    /// Starts the background writer on the current runtime.
    pub(crate) fn start(redis: Redis, ttl: Duration) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_updates(redis, ttl, receiver));
        Self {
            queue,
            full: Arc::default(),
        }
    }

    /// Announces `change` of `tenant_id`'s data. Never waits.
    pub fn tenant(&self, tenant_id: Uuid, change: Change) {
        self.send(Some(tenant_id), change);
    }

    /// Announces a change that concerns every tenant, such as a provider's health.
    pub fn everyone(&self, change: Change) {
        self.send(None, change);
    }

    fn send(&self, tenant_id: Option<Uuid>, change: Change) {
        let update = Update {
            at: Utc::now(),
            change,
        };
        match self.queue.try_send((tenant_id, update)) {
            Ok(()) => self.full.store(false, Ordering::Relaxed),
            Err(_) => {
                if !self.full.swap(true, Ordering::Relaxed) {
                    warn!("live updates are not reaching Redis fast enough; dropping some");
                }
            }
        }
    }
}

fn tenant_key(redis: &Redis, tenant_id: Uuid) -> String {
    redis.key(&["live", &tenant_id.to_string()])
}

fn shared_key(redis: &Redis) -> String {
    redis.key(&["live", "everyone"])
}

/// Writes queued updates in order, as many as are waiting in one pipeline.
async fn write_updates(
    redis: Redis,
    ttl: Duration,
    mut receiver: mpsc::Receiver<(Option<Uuid>, Update)>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut failing = false;
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (tenant_id, update) in batch.drain(..) {
            let key = match tenant_id {
                Some(tenant_id) => tenant_key(&redis, tenant_id),
                None => shared_key(&redis),
            };
            let Ok(payload) = serde_json::to_string(&update) else {
                continue;
            };
            pipe.xadd_maxlen(
                &key,
                StreamMaxlen::Approx(KEPT_PER_STREAM),
                "*",
                &[("update", payload)],
            )
            .ignore()
            .expire(&key, ttl.as_secs() as i64)
            .ignore();
        }
        let written = async {
            let mut connection = redis.shared().await?;
            pipe.query_async::<()>(&mut connection).await
        }
        .await;
        match written {
            Ok(()) => failing = false,
            Err(error) => {
                if !failing {
                    warn!(%error, "writing live updates to Redis failed");
                }
                failing = true;
            }
        }
    }
}

/// Follows the updates `ctx` may see: those after `after` when given (a cursor of an
/// earlier update), otherwise those from now on; only those of `kinds` when given.
pub async fn subscribe(
    platform: &Platform,
    ctx: &RequestContext,
    after: Option<String>,
    kinds: Option<Vec<ChangeKind>>,
) -> ServiceResult<impl Stream<Item = ServiceResult<CursorUpdate>> + use<>> {
    let keys = [
        tenant_key(&platform.redis, ctx.tenant()),
        shared_key(&platform.redis),
    ];
    let mut connection = platform.redis.blocking_connection().await?;
    let positions = match after {
        Some(cursor) => {
            let positions = parse_cursor(&cursor)
                .ok_or_else(|| ServiceError::invalid("after", "is not a cursor of tenantEvents"))?;
            for (key, position) in keys.iter().zip(&positions) {
                if trimmed_after(&mut connection, key, position).await? {
                    return Err(ServiceError::invalid(
                        "after",
                        format!(
                            "is older than the {KEPT_PER_STREAM} changes kept, so some changes \
                             after it are gone: reload what you show and subscribe without after"
                        ),
                    ));
                }
            }
            positions
        }
        None => [
            last_id(&mut connection, &keys[0]).await?,
            last_id(&mut connection, &keys[1]).await?,
        ],
    };
    let (mut sender, updates) = subscription::buffer(platform, &format_cursor(&positions));
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let follow = Follow {
            keys,
            positions,
            ctx,
            kinds,
        };
        if let Err(error) = follow.run(connection, &mut sender).await {
            sender.fail(error).await;
        }
    });
    Ok(updates)
}

struct Follow {
    keys: [String; 2],
    /// The last entry read from each stream.
    positions: [String; 2],
    ctx: RequestContext,
    kinds: Option<Vec<ChangeKind>>,
}

impl Follow {
    async fn run(
        mut self,
        mut connection: redis::aio::MultiplexedConnection,
        sender: &mut EventSender<CursorUpdate>,
    ) -> ServiceResult<()> {
        let options = StreamReadOptions::default()
            .count(BATCH)
            .block(BLOCK_TIMEOUT.as_millis() as usize);
        loop {
            let reply: Option<StreamReadReply> = connection
                .xread_options(&self.keys, &self.positions, &options)
                .await?;
            let mut entries: Vec<(usize, StreamId)> = Vec::new();
            for stream in reply.into_iter().flat_map(|reply| reply.keys) {
                let index = usize::from(stream.key != self.keys[0]);
                entries.extend(stream.ids.into_iter().map(|entry| (index, entry)));
            }
            // Entry ids start with their time in milliseconds, which orders the two streams.
            entries.sort_by(|a, b| compare_ids(&a.1.id, &b.1.id));
            for (index, entry) in entries {
                self.positions[index].clone_from(&entry.id);
                let Some(update) = entry
                    .get::<String>("update")
                    .and_then(|payload| serde_json::from_str::<Update>(&payload).ok())
                else {
                    continue;
                };
                if !self.is_selected(&update.change) {
                    continue;
                }
                let cursor = format_cursor(&self.positions);
                let update = CursorUpdate {
                    cursor: cursor.clone(),
                    update,
                };
                if sender.send(update, &cursor).await.is_err() {
                    return Ok(());
                }
            }
            if sender.is_closed() {
                return Ok(());
            }
        }
    }

    fn is_selected(&self, change: &Change) -> bool {
        change.visible_to(&self.ctx)
            && self
                .kinds
                .as_ref()
                .is_none_or(|kinds| kinds.contains(&change.kind()))
    }
}

/// Returns whether entries after `position` were trimmed from the stream `key`: the
/// stream is full, and its oldest entry is newer than `position`.
async fn trimmed_after(
    connection: &mut redis::aio::MultiplexedConnection,
    key: &str,
    position: &str,
) -> ServiceResult<bool> {
    let length: usize = connection.xlen(key).await?;
    if length < KEPT_PER_STREAM {
        return Ok(false);
    }
    let oldest: Vec<StreamId> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async::<redis::streams::StreamRangeReply>(connection)
        .await?
        .ids;
    Ok(oldest
        .first()
        .is_some_and(|oldest| compare_ids(&oldest.id, position).is_gt()))
}

/// Returns the id of the stream's newest entry, or `0-0` when it has none.
async fn last_id(
    connection: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> ServiceResult<String> {
    let newest: Vec<StreamId> = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async::<redis::streams::StreamRangeReply>(connection)
        .await?
        .ids;
    Ok(newest
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |entry| entry.id))
}

fn format_cursor(positions: &[String; 2]) -> String {
    format!("{},{}", positions[0], positions[1])
}

fn parse_cursor(cursor: &str) -> Option<[String; 2]> {
    let (tenant, shared) = cursor.split_once(',')?;
    (is_stream_id(tenant) && is_stream_id(shared)).then(|| [tenant.to_owned(), shared.to_owned()])
}

fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |id: &str| {
        let (millis, sequence) = id.split_once('-').unwrap_or((id, "0"));
        (
            millis.parse::<u64>().unwrap_or(0),
            sequence.parse::<u64>().unwrap_or(0),
        )
    };
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_hold_both_positions() {
        let positions = ["1700000000000-0".to_owned(), "0-0".to_owned()];
        let cursor = format_cursor(&positions);
        assert_eq!(cursor, "1700000000000-0,0-0");
        assert_eq!(parse_cursor(&cursor), Some(positions));
        assert_eq!(parse_cursor("1700000000000-0"), None);
        assert_eq!(parse_cursor("a-b,0-0"), None);
    }

    #[test]
    fn ids_compare_by_time_then_sequence() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_ids("9-0", "10-0"), Less);
        assert_eq!(compare_ids("10-2", "10-10"), Less);
        assert_eq!(compare_ids("10-1", "10-1"), Equal);
    }

    #[test]
    fn updates_serialize_with_their_kind() {
        let update = Update {
            at: DateTime::from_timestamp(0, 0).unwrap(),
            change: Change::TaskDeleted {
                task_id: Uuid::nil(),
            },
        };
        let json = serde_json::to_value(&update).unwrap();
        assert_eq!(json["kind"], "task_deleted");
        assert_eq!(json["task_id"], Uuid::nil().to_string());
        let back: Update = serde_json::from_value(json).unwrap();
        assert_eq!(back.change, update.change);
    }
}
