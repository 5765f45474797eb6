//! Conversations: a thread of messages with one model, visible to its creator and to admins.

use chrono::Utc;
use entity::{Role, conversation, message};
use providers::ProviderKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select, Set,
};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use crate::{
    Platform, RequestContext, agents,
    audit::{self, Action, Target, TargetType},
    chat::provider_available,
    error::{ServiceError, ServiceResult},
    live::Change,
    pagination::{Order, Page, PageRequest, fetch_page, fetch_tenant_page},
    tenant_settings,
    validation::{self, MAX_NAME_CHARS},
};

pub struct CreateConversation {
    pub title: String,
    pub agent_id: Option<Uuid>,
    /// Defaults to the agent's provider; required without an agent.
    pub provider: Option<ProviderKind>,
    /// Defaults to the agent's model; required without an agent.
    pub model: Option<String>,
}

pub async fn create(
    platform: &Platform,
    ctx: &RequestContext,
    input: CreateConversation,
) -> ServiceResult<conversation::Model> {
    ctx.require(Role::Member)?;
    let title = validation::required_text("title", &input.title, MAX_NAME_CHARS)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let agent = match input.agent_id {
        Some(agent_id) => Some(
            agents::find(&txn, ctx, agent_id)
                .await?
                .ok_or_else(|| ServiceError::invalid("agentId", "no agent with this id"))?,
        ),
        None => None,
    };

    let settings = tenant_settings::for_tenant(&txn, ctx.tenant_id).await?;
    let provider = match (input.provider, &agent) {
        (Some(provider), _) => provider,
        (None, Some(agent)) => agent.provider.parse().map_err(|_| {
            ServiceError::internal(format!("agent {} has unknown provider", agent.id))
        })?,
        (None, None) => settings.default_provider.ok_or_else(|| {
            ServiceError::invalid(
                "provider",
                "is required when no agent is given and the tenant has no default provider",
            )
        })?,
    };
    if !provider_available(platform, provider) {
        return Err(ServiceError::invalid(
            "provider",
            format!("provider {provider} is not available on this platform"),
        ));
    }
    let model = match (input.model, &agent) {
        (Some(model), _) => validation::required_text("model", &model, MAX_NAME_CHARS)?,
        (None, Some(agent)) => agent.model.clone(),
        (None, None) => settings.default_model.clone().ok_or_else(|| {
            ServiceError::invalid(
                "model",
                "is required when no agent is given and the tenant has no default model",
            )
        })?,
    };
    settings.check_allowed(provider, &model, "provider", "model")?;

    let now = Utc::now();
    let conversation = conversation::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        user_id: Set(Some(ctx.user_id)),
        agent_id: Set(agent.map(|agent| agent.id)),
        title: Set(title),
        provider: Set(provider.as_str().to_owned()),
        model: Set(model),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let summary = json!({
        "title": conversation.title,
        "agentId": conversation.agent_id,
        "provider": conversation.provider,
        "model": conversation.model,
    });
    audit::record(
        &txn,
        ctx,
        Action::ConversationCreate,
        Target::new(TargetType::Conversation, conversation.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    platform.live.tenant(
        ctx.tenant(),
        Change::ConversationCreated {
            conversation_id: conversation.id,
            owner_id: conversation.user_id,
        },
    );
    info!(tenant.id = %ctx.tenant(), conversation.id = %conversation.id, "conversation created");
    Ok(conversation)
}

pub async fn rename(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
    title: &str,
) -> ServiceResult<conversation::Model> {
    ctx.require(Role::Member)?;
    let title = validation::required_text("title", title, MAX_NAME_CHARS)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let conversation = find_visible(&txn, ctx, id).await?;
    let previous_title = conversation.title.clone();
    let mut active: conversation::ActiveModel = conversation.into();
    active.title = Set(title);
    active.updated_at = Set(Utc::now());
    let conversation = active.update(&txn).await?;
    let summary = json!({ "title": conversation.title, "previousTitle": previous_title });
    audit::record(
        &txn,
        ctx,
        Action::ConversationRename,
        Target::new(TargetType::Conversation, conversation.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    Ok(conversation)
}

/// Deletes a conversation and its messages; usage records stay with the reference cleared.
pub async fn delete(platform: &Platform, ctx: &RequestContext, id: Uuid) -> ServiceResult<Uuid> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let conversation = find_visible(&txn, ctx, id).await?;
    conversation::Entity::delete_by_id(conversation.id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        Action::ConversationDelete,
        Target::new(TargetType::Conversation, conversation.id),
        json!({ "title": conversation.title }),
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), conversation.id = %id, "conversation deleted");
    Ok(id)
}

/// Returns a conversation the caller may see, or NOT_FOUND.
pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<conversation::Model> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let conversation = find_visible(&txn, ctx, id).await?;
    txn.commit().await?;
    Ok(conversation)
}

/// [`get`] inside a transaction of the caller's tenant.
pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<conversation::Model> {
    visible(ctx)
        .filter(conversation::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::not_found("conversation"))
}

pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    page: &PageRequest,
) -> ServiceResult<Page<conversation::Model>> {
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        visible(ctx),
        conversation::Column::Id,
        Order::NewestFirst,
        page,
        |c| c.id,
    )
    .await
}

/// Lists a conversation's messages, oldest first.
pub async fn messages(
    platform: &Platform,
    ctx: &RequestContext,
    conversation_id: Uuid,
    page: &PageRequest,
) -> ServiceResult<Page<message::Model>> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let conversation = find_visible(&txn, ctx, conversation_id).await?;
    let select = message::Entity::find()
        .filter(message::Column::TenantId.eq(ctx.tenant()))
        .filter(message::Column::ConversationId.eq(conversation.id));
    let page = fetch_page(
        platform,
        &txn,
        select,
        message::Column::Id,
        Order::OldestFirst,
        page,
        |m| m.id,
    )
    .await?;
    txn.commit().await?;
    Ok(page)
}

/// Conversations of the caller's tenant that the caller may see.
fn visible(ctx: &RequestContext) -> Select<conversation::Entity> {
    let select =
        conversation::Entity::find().filter(conversation::Column::TenantId.eq(ctx.tenant()));
    if ctx.sees_all_conversations() {
        select
    } else {
        select.filter(conversation::Column::UserId.eq(ctx.user_id))
    }
}
