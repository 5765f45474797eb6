//! Replies whose generating process died: a liveness key per running generation, and the
//! sweep that closes replies left streaming without one.

use std::time::Duration;

use chrono::Utc;
use entity::{FinishReason, MessageStatus, agent, conversation, message};
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
    let text = recovered_text(platform, message).await;
    let input_tokens = estimate_prompt(platform, &txn, &conversation, message).await?;
    let usage = Usage {
        input_tokens,
        output_tokens: pricing::estimate_tokens(&text),
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    let provider: Option<ProviderKind> = conversation.provider.parse().ok();
    let price = match provider {
        Some(provider) => prices::price_for(&txn, tenant_id, provider, &conversation.model).await?,
        None => None,
    };
    txn.commit().await?;
    let cost_micros = price.map(|effective| pricing::cost_micros(&effective.price, &usage));

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
            usage: Some(&usage),
            cost_micros,
            estimated: true,
            reply: EarlierSteps {
                usage: Some(usage),
                cost_micros,
                estimated: true,
            },
            error: Some(INTERRUPTED),
        },
    )
    .await?;
    if closed {
        // Tool calls the dead process was running may or may not have taken effect.
        let owner = CallOwner::Message(message.id);
        calls::abandon_started(platform, tenant_id, owner, INTERRUPTED).await?;
        super::budget::settle(platform, tenant_id, message.id, Some(&usage), cost_micros).await;
        let outcome = MessageOutcome {
            content: text,
            status: MessageStatus::Interrupted,
            finish_reason: FinishReason::Error,
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
            cost_micros,
            usage_estimated: true,
            error: Some(INTERRUPTED.to_owned()),
        };
        events::Publisher::new(platform, message.id)
            .finish(&outcome)
            .await;
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

/// Joins the deltas kept in the reply's stream, or the stored text if the stream is gone.
async fn recovered_text(platform: &Platform, message: &message::Model) -> String {
    let key = events::stream_key(&platform.redis, message.id);
    let range: redis::RedisResult<StreamRangeReply> = async {
        let mut connection = platform.redis.shared().await?;
        connection.xrange_all(&key).await
    }
    .await;
    match range {
        Ok(range) if !range.ids.is_empty() => range
            .ids
            .iter()
            .filter(|entry| entry.get::<String>("kind").as_deref() == Some("delta"))
            .filter_map(|entry| entry.get::<String>("text"))
            .collect(),
        Ok(_) => message.content.clone(),
        Err(error) => {
            warn!(%error, message.id = %message.id, "reading an abandoned reply's stream failed");
            message.content.clone()
        }
    }
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
