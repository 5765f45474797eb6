//! The per-message Redis Stream of reply events: written by the generation, read by any
//! api process, kept for a while after the end so that late subscribers get the history.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use entity::{FinishReason, MessageStatus, message};
use futures_util::Stream;
use redis::{
    AsyncCommands,
    streams::{StreamId, StreamReadOptions, StreamReadReply},
};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use tracing::warn;
use uuid::Uuid;

use crate::{
    Platform, RequestContext, TenantId,
    error::{ServiceError, ServiceResult},
    redis_conn::Redis,
    subscription::{self, EventSender},
    tools::calls::{CallObserver, ToolCallEvent, ToolResultEvent},
};

/// How long one blocking read waits before the message's state is checked in the database.
pub(crate) const BLOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Entries read per round trip.
const READ_BATCH: usize = 1000;

/// The final state of a reply, as stored in the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageOutcome {
    pub content: String,
    pub status: MessageStatus,
    pub finish_reason: FinishReason,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_micros: Option<i64>,
    pub usage_estimated: bool,
    pub error: Option<String>,
}

impl MessageOutcome {
    fn from_message(message: &message::Model) -> Self {
        Self {
            content: message.content.clone(),
            status: message.status,
            finish_reason: message.finish_reason.unwrap_or(FinishReason::Other),
            input_tokens: message.input_tokens,
            output_tokens: message.output_tokens,
            cost_micros: message.cost_micros,
            usage_estimated: message.usage_estimated,
            error: message.error.clone(),
        }
    }
}

/// One event of a reply. `cursor` resumes a subscription right after this event.
#[derive(Debug, Clone)]
pub enum MessageEvent {
    Delta {
        cursor: String,
        text: String,
    },
    /// The model asked for a tool call of the reply's agent; the tool is about to run.
    ToolCall {
        cursor: String,
        call: ToolCallEvent,
    },
    /// A tool call ended.
    ToolResult {
        cursor: String,
        result: ToolResultEvent,
    },
    Done {
        cursor: String,
        outcome: MessageOutcome,
    },
}

pub fn stream_key(redis: &Redis, message_id: Uuid) -> String {
    redis.key(&["message-stream", &message_id.to_string()])
}

/// Appends a generation's events to its stream. Redis failures are logged once and do not
/// stop the generation: the database keeps the final text either way.
pub(crate) struct Publisher {
    redis: Redis,
    key: String,
    ttl: Duration,
    failed: AtomicBool,
}

impl Publisher {
    pub(crate) fn new(platform: &Platform, message_id: Uuid) -> Self {
        Self {
            redis: platform.redis.clone(),
            key: stream_key(&platform.redis, message_id),
            ttl: platform.settings.stream_ttl,
            failed: AtomicBool::new(false),
        }
    }

    pub(crate) async fn delta(&self, text: &str) {
        let result = async {
            let mut redis = self.redis.shared().await?;
            redis
                .xadd::<_, _, _, _, ()>(&self.key, "*", &[("kind", "delta"), ("text", text)])
                .await
        }
        .await;
        self.note(result);
    }

    /// Appends an entry of `kind` whose `data` field is `payload` as JSON.
    async fn json_entry(&self, kind: &str, payload: &impl Serialize) {
        let result = async {
            let payload = serde_json::to_string(payload).map_err(|error| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "encoding reply event",
                    error.to_string(),
                ))
            })?;
            let mut redis = self.redis.shared().await?;
            redis
                .xadd::<_, _, _, _, ()>(&self.key, "*", &[("kind", kind), ("data", &payload)])
                .await
        }
        .await;
        self.note(result);
    }

    pub(crate) async fn finish(&self, outcome: &MessageOutcome) {
        let result = async {
            let payload = serde_json::to_string(outcome).map_err(|error| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "encoding outcome",
                    error.to_string(),
                ))
            })?;
            let mut redis = self.redis.shared().await?;
            redis::pipe()
                .xadd(
                    &self.key,
                    "*",
                    &[("kind", "done"), ("outcome", payload.as_str())],
                )
                .ignore()
                .expire(&self.key, self.ttl.as_secs() as i64)
                .ignore()
                .query_async::<()>(&mut redis)
                .await
        }
        .await;
        self.note(result);
    }

    fn note(&self, result: redis::RedisResult<()>) {
        if let Err(error) = result
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            warn!(%error, key = %self.key, "writing reply events to Redis failed");
        }
    }
}

impl CallObserver for Publisher {
    async fn started(&self, event: ToolCallEvent) {
        self.json_entry("tool_call", &event).await;
    }

    async fn finished(&self, event: ToolResultEvent) {
        self.json_entry("tool_result", &event).await;
    }
}

/// Follows the reply of `message_id`: every event after `after` (from the start when
/// absent), then live events until the final one.
pub async fn subscribe(
    platform: &Platform,
    ctx: &RequestContext,
    message_id: Uuid,
    after: Option<String>,
) -> ServiceResult<impl Stream<Item = ServiceResult<MessageEvent>> + use<>> {
    let message = super::visible_message(platform, ctx, message_id).await?;
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
    tokio::spawn(async move {
        let key = stream_key(&platform.redis, message.id);
        if let Err(error) = follow(&platform, connection, &key, &message, start, &mut sender).await
        {
            sender.fail(error).await;
        }
    });
    Ok(events)
}

async fn follow(
    platform: &Platform,
    mut connection: redis::aio::MultiplexedConnection,
    key: &str,
    message: &message::Model,
    mut last_id: String,
    sender: &mut EventSender<MessageEvent>,
) -> ServiceResult<()> {
    // A reply that ended longer ago than the stream's time-to-live is served from the
    // database at once instead of after a blocking read times out.
    let stream_exists: bool = connection.exists(key).await?;
    if message.status != MessageStatus::Streaming && !stream_exists {
        let outcome = MessageOutcome::from_message(message);
        let done = MessageEvent::Done {
            cursor: last_id.clone(),
            outcome,
        };
        let _ = sender.send(done, &last_id).await;
        return Ok(());
    }
    let mut presence = Presence::new(platform, message.id);
    let block = presence.as_ref().map_or(BLOCK_TIMEOUT, |presence| {
        BLOCK_TIMEOUT.min(presence.renew_every())
    });
    loop {
        if let Some(presence) = &mut presence {
            presence.renew(&mut connection).await;
        }
        let entries = read_after(&mut connection, key, &last_id, Some(block)).await?;
        let mut read_any = false;
        for entry in entries {
            read_any = true;
            last_id = entry.id.clone();
            let Some(event) = decode(&entry) else {
                continue;
            };
            let done = matches!(event, MessageEvent::Done { .. });
            if sender.send(event, &entry.id).await.is_err() || done {
                return Ok(());
            }
        }
        if read_any || sender.is_closed() {
            if sender.is_closed() {
                return Ok(());
            }
            continue;
        }

        // Nothing arrived in a while: the stream may have expired or its writer died.
        let txn = platform.tenant_tx(TenantId::new(message.tenant_id)).await?;
        let message = message::Entity::find_by_id(message.id)
            .one(&txn)
            .await?
            .ok_or_else(|| ServiceError::not_found("message"))?;
        txn.commit().await?;
        if message.status != MessageStatus::Streaming {
            let outcome = MessageOutcome::from_message(&message);
            let done = MessageEvent::Done {
                cursor: last_id.clone(),
                outcome,
            };
            let _ = sender.send(done, &last_id).await;
            return Ok(());
        }
    }
}

/// Marks a reply as followed while a subscriber reads it, for a platform that stops
/// replies nobody follows (`GENERATION_WITHOUT_LISTENER=stop`).
struct Presence {
    key: String,
    grace: Duration,
    renewed: Option<Instant>,
}

impl Presence {
    /// `None` when replies go on without a subscriber, which needs no marking.
    fn new(platform: &Platform, message_id: Uuid) -> Option<Self> {
        let settings = &platform.settings.realtime;
        (!settings.generate_without_listener).then(|| Self {
            key: listener_key(&platform.redis, message_id),
            grace: settings.listener_grace,
            renewed: None,
        })
    }

    fn renew_every(&self) -> Duration {
        self.grace / 3
    }

    /// Renews the mark when a third of its lifetime has passed. A failure is not the
    /// subscriber's problem: at worst the reply is stopped, with what it had so far stored.
    async fn renew(&mut self, connection: &mut redis::aio::MultiplexedConnection) {
        if self
            .renewed
            .is_some_and(|renewed| renewed.elapsed() < self.renew_every())
        {
            return;
        }
        let millis = self.grace.as_millis().max(1) as u64;
        match connection.pset_ex::<_, _, ()>(&self.key, 1, millis).await {
            Ok(()) => self.renewed = Some(Instant::now()),
            Err(error) => warn!(%error, key = %self.key, "marking a reply as followed failed"),
        }
    }
}

/// The key that exists while someone follows the reply `message_id`.
pub(crate) fn listener_key(redis: &Redis, message_id: Uuid) -> String {
    redis.key(&["message-listener", &message_id.to_string()])
}

fn decode(entry: &StreamId) -> Option<MessageEvent> {
    let cursor = entry.id.clone();
    match entry.get::<String>("kind")?.as_str() {
        "delta" => Some(MessageEvent::Delta {
            cursor,
            text: entry.get("text")?,
        }),
        "tool_call" => {
            let call = serde_json::from_str(&entry.get::<String>("data")?).ok()?;
            Some(MessageEvent::ToolCall { cursor, call })
        }
        "tool_result" => {
            let result = serde_json::from_str(&entry.get::<String>("data")?).ok()?;
            Some(MessageEvent::ToolResult { cursor, result })
        }
        "done" => {
            let outcome = serde_json::from_str(&entry.get::<String>("outcome")?).ok()?;
            Some(MessageEvent::Done { cursor, outcome })
        }
        _ => None,
    }
}

/// Reads the entries of the stream `key` after the entry id `after`, up to a batch. With
/// `block`, waits that long for one to arrive; the connection must then be a blocking one.
pub(crate) async fn read_after(
    connection: &mut redis::aio::MultiplexedConnection,
    key: &str,
    after: &str,
    block: Option<Duration>,
) -> redis::RedisResult<Vec<StreamId>> {
    let mut options = StreamReadOptions::default().count(READ_BATCH);
    if let Some(block) = block {
        options = options.block(block.as_millis().max(1) as usize);
    }
    let reply: Option<StreamReadReply> =
        connection.xread_options(&[key], &[after], &options).await?;
    Ok(reply
        .into_iter()
        .flat_map(|reply| reply.keys)
        .flat_map(|key| key.ids)
        .collect())
}

/// Whether `cursor` has the shape of a Redis stream entry id (`<ms>-<seq>`).
pub(crate) fn is_stream_id(cursor: &str) -> bool {
    match cursor.split_once('-') {
        Some((millis, sequence)) => {
            millis.parse::<u64>().is_ok() && sequence.parse::<u64>().is_ok()
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_shape() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("abc"));
        assert!(!is_stream_id("1-x"));
    }
}
