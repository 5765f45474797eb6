//! Replies whose generating process died: a liveness key per running generation, and the
//! sweep that closes replies left streaming without one.

use std::time::Duration;

use chrono::Utc;
use entity::{FinishReason, MessageStatus, agent, conversation, message, usage_record};
use providers::{ProviderKind, Usage, pricing};
use redis::{AsyncCommands, streams::StreamRangeReply};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::task::AbortHandle;
use tracing::{info, warn};
use uuid::Uuid;

use super::{
    events::{self, MessageOutcome},
    generation::EarlierSteps,
    persist,
};
use crate::{
    Platform, TenantId,
    error::ServiceResult,
    jobs::CountUsage,
    live::Change,
    prices,
    tools::calls::{self, CallOwner},
};

/// Lifetime of a liveness key. The generation renews it every third of that.
const ALIVE_TTL: Duration = Duration::from_secs(30);
const ALIVE_RENEWAL: Duration = Duration::from_secs(10);
/// Replies examined per sweep.
const SWEEP_BATCH: u64 = 100;
const INTERRUPTED: &str = "generation was interrupted before it finished";

fn alive_key(platform: &Platform, message_id: Uuid) -> String {
    platform
        .redis
        .key(&["generation-alive", &message_id.to_string()])
}

/// Renews the generation's liveness key until dropped.
pub(crate) struct KeepAlive(AbortHandle);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts renewing the liveness key of `message_id` in the background.
pub(crate) fn keep_alive(platform: &Platform, message_id: Uuid) -> KeepAlive {
    let redis = platform.redis.clone();
    let key = alive_key(platform, message_id);
    let task = tokio::spawn(async move {
        loop {
            let renewed = async {
                let mut connection = redis.shared().await?;
                connection
                    .set_ex::<_, _, ()>(&key, 1, ALIVE_TTL.as_secs())
                    .await
            }
            .await;
            if let Err(error) = renewed {
                warn!(%error, key, "renewing a generation's liveness key failed");
            }
            tokio::time::sleep(ALIVE_RENEWAL).await;
        }
    });
    KeepAlive(task.abort_handle())
}

/// Closes replies that are still streaming after `min_age` and whose generation renews no
/// liveness key: their text is recovered from the reply's stream, their usage estimated,
/// and they end as INTERRUPTED. Returns the number of replies closed.
pub async fn close_abandoned(platform: &Platform, min_age: Duration) -> ServiceResult<u64> {
    let cutoff = Utc::now()
        - chrono::Duration::from_std(min_age).unwrap_or_else(|_| chrono::Duration::minutes(1));
    // Every tenant's replies: the sweep runs for the whole platform.
    let txn = platform.cross_tenant_tx().await?;
    let candidates = message::Entity::find()
        .filter(message::Column::Status.eq(MessageStatus::Streaming))
        .filter(message::Column::CreatedAt.lt(cutoff))
        .order_by_asc(message::Column::CreatedAt)
        .limit(SWEEP_BATCH)
        .all(&txn)
        .await?;
    txn.commit().await?;

    let mut closed = 0;
    for message in candidates {
        let mut redis = platform.redis.shared().await?;
        let alive: bool = redis.exists(alive_key(platform, message.id)).await?;
        if !alive && close_one(platform, &message).await? {
            closed += 1;
        }
    }
    if closed > 0 {
        info!(replies = closed, "closed replies whose generation stopped");
    }
    Ok(closed)
}

async fn close_one(platform: &Platform, message: &message::Model) -> ServiceResult<bool> {
    let tenant_id = TenantId::new(message.tenant_id);
    let txn = platform.tenant_tx(tenant_id).await?;
    let Some(conversation) = conversation::Entity::find_by_id(message.conversation_id)
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    let recovered = recovered_text(platform, message).await;
    let provider: Option<ProviderKind> = conversation.provider.parse().ok();
    let price = match provider {
        Some(provider) => prices::price_for(&txn, tenant_id, provider, &conversation.model).await?,
        None => None,
    };
    // A reply that called tools billed its earlier model calls already. The last one was
    // in flight only if every tool call had ended; its output is the text after them.
    let earlier = billed_calls(&txn, message).await?;
    let in_flight = if recovered.open_calls {
        None
    } else {
        let input_tokens = estimate_prompt(platform, &txn, &conversation, message).await?;
        Some(Usage {
            input_tokens,
            output_tokens: pricing::estimate_tokens(&recovered.last_call_text),
            cached_input_tokens: None,
            reasoning_tokens: None,
        })
    };
    txn.commit().await?;
    let cost_micros = price
        .zip(in_flight.as_ref())
        .map(|(effective, usage)| pricing::cost_micros(&effective.price, usage));
    let mut reply = earlier;
    reply.add(in_flight.as_ref(), cost_micros, true);
    let text = recovered.text;

    let closed = persist::close_message(
        platform,
        persist::ClosedReply {
            tenant_id: message.tenant_id,
            user_id: conversation.user_id,
            agent_id: conversation.agent_id,
            conversation_id: conversation.id,
            message_id: message.id,
            provider: provider.unwrap_or(ProviderKind::OpenAi),
            model: &conversation.model,
            content: &text,
            status: MessageStatus::Interrupted,
            finish_reason: FinishReason::Error,
            usage: in_flight.as_ref(),
            cost_micros,
            estimated: true,
            reply,
            error: Some(INTERRUPTED),
            // The lookup's outcome died with the process that made it.
            response_cache: None,
        },
    )
    .await?;
    if closed {
        // Tool calls the dead process was running may or may not have taken effect.
        let owner = CallOwner::Message(message.id);
        calls::abandon_started(platform, tenant_id, owner, INTERRUPTED).await?;
        let settled = in_flight.as_ref();
        super::budget::settle(platform, tenant_id, message.id, settled, cost_micros).await;
        let outcome = MessageOutcome {
            content: text,
            status: MessageStatus::Interrupted,
            finish_reason: FinishReason::Error,
            input_tokens: reply.usage.map(|usage| usage.input_tokens),
            output_tokens: reply.usage.map(|usage| usage.output_tokens),
            cost_micros: reply.cost_micros,
            usage_estimated: true,
            error: Some(INTERRUPTED.to_owned()),
        };
        events::Publisher::new(platform, message.id)
            .finish(&outcome)
            .await;
        let change = Change::MessageCompleted {
            message_id: message.id,
            conversation_id: conversation.id,
            owner_id: conversation.user_id,
            status: outcome.status,
        };
        platform.live.tenant(message.tenant_id, change);
        platform
            .jobs
            .count_usage(CountUsage {
                tenant_id: message.tenant_id,
                request_id: None,
            })
            .await;
    }
    Ok(closed)
}

/// The text and tool state of an abandoned reply, read from its stream.
struct Recovered {
    /// Every delta joined, or the stored text if the stream is gone.
    text: String,
    /// The text after the last tool event, which the last model call produced.
    last_call_text: String,
    /// Whether a tool call had started without its result, so that no model call was in
    /// flight.
    open_calls: bool,
}

async fn recovered_text(platform: &Platform, message: &message::Model) -> Recovered {
    let key = events::stream_key(&platform.redis, message.id);
    let range: redis::RedisResult<StreamRangeReply> = async {
        let mut connection = platform.redis.shared().await?;
        connection.xrange_all(&key).await
    }
    .await;
    let entries = match range {
        Ok(range) if !range.ids.is_empty() => range.ids,
        Ok(_) => Vec::new(),
        Err(error) => {
            warn!(%error, message.id = %message.id, "reading an abandoned reply's stream failed");
            Vec::new()
        }
    };
    if entries.is_empty() {
        return Recovered {
            text: message.content.clone(),
            last_call_text: message.content.clone(),
            open_calls: false,
        };
    }
    let mut recovered = Recovered {
        text: String::new(),
        last_call_text: String::new(),
        open_calls: false,
    };
    let mut open = 0_i64;
    for entry in &entries {
        match entry.get::<String>("kind").as_deref() {
            Some("delta") => {
                let delta: String = entry.get("text").unwrap_or_default();
                recovered.text.push_str(&delta);
                recovered.last_call_text.push_str(&delta);
            }
            Some("tool_call") => {
                open += 1;
                recovered.last_call_text.clear();
            }
            Some("tool_result") => {
                open -= 1;
                recovered.last_call_text.clear();
            }
            _ => {}
        }
    }
    recovered.open_calls = open > 0;
    recovered
}

/// Sums the usage records stored for the reply's earlier model calls.
async fn billed_calls<C: ConnectionTrait>(
    db: &C,
    message: &message::Model,
) -> ServiceResult<EarlierSteps> {
    let records = usage_record::Entity::find()
        .filter(usage_record::Column::MessageId.eq(message.id))
        .all(db)
        .await?;
    let mut billed = EarlierSteps::default();
    for record in records {
        let usage = Usage {
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            cached_input_tokens: Some(record.cached_input_tokens),
            reasoning_tokens: None,
        };
        let cost = record.price_known.then_some(record.cost_micros);
        billed.add(Some(&usage), cost, record.estimated);
    }
    Ok(billed)
}

/// Estimates the prompt the provider received: the agent's instructions and the messages
/// that preceded the reply, within the context window.
async fn estimate_prompt<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    conversation: &conversation::Model,
    reply: &message::Model,
) -> ServiceResult<i64> {
    let history = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation.id))
        .filter(message::Column::Id.lt(reply.id))
        .order_by_desc(message::Column::Id)
        .limit(platform.settings.context_messages)
        .all(db)
        .await?;
    let instructions = match conversation.agent_id {
        Some(agent_id) => agent::Entity::find_by_id(agent_id)
            .one(db)
            .await?
            .map(|agent| pricing::estimate_tokens(&agent.instructions))
            .unwrap_or(0),
        None => 0,
    };
    let messages: i64 = history
        .iter()
        .map(|message| pricing::estimate_tokens(&message.content))
        .sum();
    Ok(instructions + messages)
}
