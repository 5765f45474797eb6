//! The final write of a reply: message state and usage record in one transaction.

use chrono::{DateTime, Utc};
use entity::{FinishReason, MessageStatus, ResponseCacheLookup, message, usage_record};
use providers::{ProviderKind, Usage};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use uuid::Uuid;

use super::generation::EarlierSteps;
use serde_json::json;

use crate::{
    Platform, TenantId,
    error::ServiceResult,
    webhooks::{self, EventType},
};

/// Everything stored when a reply ends.
pub(crate) struct ClosedReply<'a> {
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub provider: ProviderKind,
    pub model: &'a str,
    pub content: &'a str,
    pub status: MessageStatus,
    pub finish_reason: FinishReason,
    /// Usage of the last model call, stored in its usage record.
    pub usage: Option<&'a Usage>,
    /// Cost of the last model call in micro-dollars, or `None` when the model's price is
    /// unknown.
    pub cost_micros: Option<i64>,
    pub estimated: bool,
    /// Usage and cost of the whole reply, every model call included, stored on the message.
    pub reply: EarlierSteps,
    pub error: Option<&'a str>,
    /// Outcome of the reply's cache lookup, when it made one and no earlier record of the
    /// reply carries it.
    pub response_cache: Option<ResponseCacheLookup>,
}

/// Stores the reply's final state and its usage record, unless the message has already
/// left the streaming state. Returns whether this call closed it, so that a reply closed
/// twice (by its generation and by the maintenance sweep) is billed once.
pub(crate) async fn close_message(
    platform: &Platform,
    reply: ClosedReply<'_>,
) -> ServiceResult<bool> {
    let now = Utc::now();
    let txn = platform.tenant_tx(TenantId::new(reply.tenant_id)).await?;
    let updated = message::Entity::update_many()
        .col_expr(message::Column::Content, Expr::value(reply.content))
        .col_expr(message::Column::Status, Expr::value(reply.status))
        .col_expr(
            message::Column::FinishReason,
            Expr::value(Some(reply.finish_reason)),
        )
        .col_expr(
            message::Column::InputTokens,
            Expr::value(reply.reply.usage.map(|u| u.input_tokens)),
        )
        .col_expr(
            message::Column::OutputTokens,
            Expr::value(reply.reply.usage.map(|u| u.output_tokens)),
        )
        .col_expr(
            message::Column::CostMicros,
            Expr::value(reply.reply.cost_micros),
        )
        .col_expr(
            message::Column::UsageEstimated,
            Expr::value(reply.reply.estimated),
        )
        .col_expr(message::Column::Error, Expr::value(reply.error))
        .col_expr(message::Column::CompletedAt, Expr::value(Some(now)))
        .filter(message::Column::Id.eq(reply.message_id))
        .filter(message::Column::Status.eq(MessageStatus::Streaming))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    if let Some(usage) = reply.usage {
        let call = CallUsage {
            tenant_id: reply.tenant_id,
            user_id: reply.user_id,
            agent_id: reply.agent_id,
            conversation_id: reply.conversation_id,
            message_id: reply.message_id,
            provider: reply.provider,
            model: reply.model,
            usage,
            cost_micros: reply.cost_micros,
            estimated: reply.estimated,
            response_cache: reply.response_cache,
        };
        usage_record(&call, now).insert(&txn).await?;
    }
    let completed = json!({
        "messageId": reply.message_id,
        "conversationId": reply.conversation_id,
        "agentId": reply.agent_id,
        "userId": reply.user_id,
        "status": reply.status,
        "finishReason": reply.finish_reason,
        "content": reply.content,
        "inputTokens": reply.reply.usage.map(|usage| usage.input_tokens),
        "outputTokens": reply.reply.usage.map(|usage| usage.output_tokens),
        "costMicros": reply.reply.cost_micros,
        "usageEstimated": reply.reply.estimated,
        "error": reply.error,
    });
    let outbox = webhooks::record(
        &txn,
        reply.tenant_id,
        EventType::MessageCompleted,
        completed,
    )
    .await?;
    txn.commit().await?;
    outbox.dispatch(platform).await;
    Ok(true)
}

/// The usage of one model call of a reply.
pub(crate) struct CallUsage<'a> {
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub provider: ProviderKind,
    pub model: &'a str,
    pub usage: &'a Usage,
    pub cost_micros: Option<i64>,
    pub estimated: bool,
    pub response_cache: Option<ResponseCacheLookup>,
}

/// Stores the usage record of a model call that asked for tools, before the reply's next
/// call, so that the call is billed even if the reply never finishes.
pub(crate) async fn record_call_usage(
    platform: &Platform,
    call: &CallUsage<'_>,
) -> ServiceResult<()> {
    let txn = platform.tenant_tx(TenantId::new(call.tenant_id)).await?;
    usage_record(call, Utc::now()).insert(&txn).await?;
    txn.commit().await?;
    Ok(())
}

fn usage_record(reply: &CallUsage<'_>, now: DateTime<Utc>) -> usage_record::ActiveModel {
    let usage = reply.usage;
    usage_record::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(reply.tenant_id),
        user_id: Set(reply.user_id),
        agent_id: Set(reply.agent_id),
        conversation_id: Set(Some(reply.conversation_id)),
        message_id: Set(Some(reply.message_id)),
        agent_run_id: Set(None),
        provider: Set(reply.provider.as_str().to_owned()),
        model: Set(reply.model.to_owned()),
        input_tokens: Set(usage.input_tokens),
        output_tokens: Set(usage.output_tokens),
        cached_input_tokens: Set(usage.cached_input_tokens.unwrap_or(0)),
        cost_micros: Set(reply.cost_micros.unwrap_or(0)),
        price_known: Set(reply.cost_micros.is_some()),
        estimated: Set(reply.estimated),
        response_cache: Set(reply.response_cache),
        created_at: Set(now),
        counted_at: Set(None),
    }
}
