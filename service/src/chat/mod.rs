//! Chat: storing a user message, generating the reply in the background, and stopping it.

pub(crate) mod budget;
pub mod events;
mod fallback;
pub(crate) mod generation;
mod persist;
pub mod recovery;
pub mod registry;
mod response_cache;
mod window;

use std::time::Duration;

use chrono::Utc;
use entity::{MessageRole, MessageStatus, Role, audit_log, message};
use providers::{
    Anthropic, ChatMessage, ChatProvider, ChatRequest, Gemini, Groq, Ollama, OpenAi, ProviderKind,
};
use redis::AsyncCommands;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, sea_query::CommonTableExpression,
};
use serde_json::json;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, TenantId, agents,
    audit::{self, Action, Target, TargetType},
    conversations,
    credentials::{self, EndpointOwner},
    error::{ServiceError, ServiceResult},
    live::Change,
    quota,
    tools::{self, ToolSet},
    validation::MAX_MESSAGE_CHARS,
};

pub use events::{MessageEvent, MessageOutcome, subscribe};
use fallback::Fallback;
use generation::GenerationTools;

/// The stored user message and the assistant message whose reply is being generated.
pub struct SentMessage {
    pub user_message: message::Model,
    pub assistant_message: message::Model,
    /// The room the per-minute limits have left after this message's reply was admitted.
    pub rate: crate::quota::RateStatus,
}

/// Whether this platform has an adapter for `kind`.
pub fn provider_available(_platform: &Platform, kind: ProviderKind) -> bool {
    ProviderKind::ALL.contains(&kind)
}

/// An adapter and whose key it sends.
pub struct ResolvedProvider {
    pub adapter: Box<dyn ChatProvider>,
    pub owner: EndpointOwner,
}

/// Builds the adapter for `kind` with the tenant's own credential when it stored one, and
/// with the platform's key otherwise.
/// `db` is a transaction of the tenant's.
pub async fn provider_for<C: ConnectionTrait>(
    platform: &Platform,
    db: &C,
    tenant_id: TenantId,
    kind: ProviderKind,
) -> ServiceResult<ResolvedProvider> {
    let endpoint = credentials::endpoint_for(platform, db, tenant_id, kind).await?;
    let owner = endpoint.owner;
    Ok(ResolvedProvider {
        adapter: adapter(kind, endpoint),
        owner,
    })
}

/// Builds the adapter for `kind` that sends its requests to `endpoint`.
pub(crate) fn adapter(
    kind: ProviderKind,
    endpoint: credentials::Endpoint,
) -> Box<dyn ChatProvider> {
    let (client, base_url, key) = (endpoint.client, endpoint.base_url, endpoint.api_key);
    match kind {
        ProviderKind::OpenAi => Box::new(OpenAi::new(client, base_url, key)),
        ProviderKind::Anthropic => Box::new(Anthropic::new(client, base_url, key)),
        ProviderKind::Gemini => Box::new(Gemini::new(client, base_url, key)),
        ProviderKind::Groq => Box::new(Groq::new(client, base_url, key)),
        // Ollama needs no key; one is sent only when configured, for proxies in front.
        ProviderKind::Ollama => {
            let key = (!key.expose().is_empty()).then_some(key);
            Box::new(Ollama::new(client, base_url, key))
        }
    }
}

/// Stores the user's message, creates the assistant message in state `streaming`, and
/// starts generating the reply in this process. Returns without waiting for the reply.
/// `cache` turns the response cache on (`true`) or off (`false`) for this reply; `None`
/// follows the agent's `response_cache_ttl_seconds`.
pub async fn send_message(
    platform: &Platform,
    ctx: &RequestContext,
    conversation_id: Uuid,
    content: &str,
    cache: Option<bool>,
) -> ServiceResult<SentMessage> {
    ctx.require(Role::Member)?;
    if platform.generations.is_draining() {
        return Err(ServiceError::Unavailable(
            "this api instance is shutting down; send the message again".into(),
        ));
    }
    if content.trim().is_empty() {
        return Err(ServiceError::invalid("content", "must not be empty"));
    }
    crate::validation::check_length("content", content, MAX_MESSAGE_CHARS)?;
    // One transaction reads what the reply needs and stores the two messages.
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let conversation = conversations::find_visible(&txn, ctx, conversation_id).await?;
    let provider_kind: ProviderKind = conversation.provider.parse().map_err(|_| {
        ServiceError::internal(format!(
            "conversation {} has unknown provider",
            conversation.id
        ))
    })?;
    let provider = provider_for(platform, &txn, ctx.tenant_id, provider_kind).await?;
    let agent = match conversation.agent_id {
        Some(agent_id) => agents::find(&txn, ctx, agent_id).await?,
        None => None,
    };

    // The new message counts among the context window, so read one fewer from history.
    let context_messages = agent
        .as_ref()
        .and_then(|agent| agent.context_messages)
        .and_then(|count| u64::try_from(count).ok())
        .unwrap_or(platform.settings.context_messages);
    let history_limit = context_messages.saturating_sub(1);
    let mut history = message::Entity::find()
        .filter(message::Column::TenantId.eq(ctx.tenant()))
        .filter(message::Column::ConversationId.eq(conversation.id))
        .order_by_desc(message::Column::Id)
        .limit(history_limit)
        .all(&txn)
        .await?;
    if history
        .iter()
        .any(|message| message.status == MessageStatus::Streaming)
    {
        return Err(ServiceError::invalid(
            "conversationId",
            "a reply is still being generated; stop it or wait for it to finish",
        ));
    }
    history.reverse();

    let mut messages: Vec<ChatMessage> = history
        .iter()
        .filter(|message| !message.content.is_empty())
        .map(|message| match message.role {
            MessageRole::User => ChatMessage::user(message.content.clone()),
            MessageRole::Assistant => ChatMessage::assistant(message.content.clone()),
            MessageRole::System => ChatMessage::system(message.content.clone()),
        })
        .collect();
    messages.push(ChatMessage::user(content));
    // An agent with tools replies through the same tool loop as its runs.
    let tools = match agent.as_ref() {
        Some(agent) if !tools::names(&agent.tools).is_empty() => Some(GenerationTools {
            set: ToolSet::load(&txn, ctx, &tools::names(&agent.tools)).await?,
            ctx: ctx.clone(),
            max_steps: agent.max_steps,
        }),
        _ => None,
    };
    let system = agent.as_ref().map(|agent| agent.instructions.clone());
    let max_tokens = agent
        .as_ref()
        .and_then(|agent| agent.max_tokens)
        .map(|t| t.max(1) as u32);
    // The reply's maximum is kept free in the model's context.
    let context_tokens = agent
        .as_ref()
        .and_then(|agent| agent.context_window_tokens)
        .map_or(platform.settings.context_window_tokens as i64, i64::from);
    let reply_tokens = max_tokens.map_or(budget::DEFAULT_RESERVED_OUTPUT_TOKENS, i64::from);
    let dropped = window::trim_to_fit(
        system.as_deref(),
        &mut messages,
        context_tokens - reply_tokens,
    );
    if dropped > 0 {
        debug!(
            messages.dropped = dropped,
            "trimmed the context window to fit the model's context"
        );
    }
    let request = ChatRequest {
        model: conversation.model.clone(),
        system,
        messages,
        temperature: agent
            .as_ref()
            .and_then(|agent| agent.temperature)
            .map(|t| t as f32),
        max_tokens,
        stop: Vec::new(),
        tools: tools
            .as_ref()
            .map(|tools| tools.set.definitions())
            .unwrap_or_default(),
    };
    let response_cache = response_cache::ttl_for(platform, agent.as_ref(), cache)
        .map(|ttl| response_cache::slot(platform, ctx.tenant_id, provider_kind, &request, ttl));
    // The cache is read first, because a reply from it takes no tokens from the budgets.
    let cached_reply = match &response_cache {
        Some(slot) => response_cache::lookup(platform, slot).await,
        None => None,
    };
    let demand = match cached_reply {
        Some(_) => budget::Demand::Cached(&request),
        None => budget::Demand::Call(&request),
    };

    // Messages are ordered by id, so the question's id is made first. The reply's budget
    // is reserved before anything is stored, so a request over a limit leaves no message.
    let user_message_id = Uuid::now_v7();
    let assistant_id = Uuid::now_v7();
    let rate = budget::reserve_for(
        platform,
        &txn,
        ctx.tenant_id,
        ctx.key_payer(),
        provider_kind,
        demand,
        assistant_id,
    )
    .await?;

    let now = Utc::now();
    let user_message = message::Model {
        id: user_message_id,
        tenant_id: ctx.tenant(),
        conversation_id: conversation.id,
        role: MessageRole::User,
        content: content.to_owned(),
        status: MessageStatus::Completed,
        finish_reason: None,
        input_tokens: None,
        output_tokens: None,
        cost_micros: None,
        usage_estimated: false,
        error: None,
        created_at: now,
        completed_at: Some(now),
    };
    let assistant_message = message::Model {
        id: assistant_id,
        role: MessageRole::Assistant,
        content: String::new(),
        status: MessageStatus::Streaming,
        completed_at: None,
        ..user_message.clone()
    };
    let stored = async {
        store_messages(&txn, ctx, &user_message, &assistant_message).await?;
        txn.commit().await
    };
    if let Err(error) = stored.await {
        quota::settle_or_log(platform, ctx.tenant_id, assistant_id, 0, 0).await;
        return Err(error.into());
    }
    for message_id in [user_message.id, assistant_message.id] {
        let change = Change::MessageCreated {
            message_id,
            conversation_id: conversation.id,
            owner_id: conversation.user_id,
        };
        platform.live.tenant(ctx.tenant(), change);
    }

    let fallback = agent.as_ref().and_then(Fallback::of_agent);
    generation::start(
        platform.clone(),
        generation::Generation {
            request_id: ctx.request_id.clone(),
            tenant_id: ctx.tenant(),
            user_id: ctx.user_id,
            agent_id: agent.map(|agent| agent.id),
            conversation_id: conversation.id,
            owner_id: conversation.user_id,
            message_id: assistant_message.id,
            provider_kind,
            request,
            fallback,
            tools,
            response_cache,
            cached_reply,
        },
        provider,
    );
    Ok(SentMessage {
        user_message,
        assistant_message,
        rate,
    })
}

/// Asks the generation of `message_id` to stop, wherever it runs, and returns the message.
/// The text generated so far and its usage are kept.
pub async fn stop_generation(
    platform: &Platform,
    ctx: &RequestContext,
    message_id: Uuid,
) -> ServiceResult<message::Model> {
    ctx.require(Role::Member)?;
    let message = visible_message(platform, ctx, message_id).await?;
    if message.status != MessageStatus::Streaming {
        return Ok(message);
    }

    // The row is written before the stop is sent, so no stop goes unrecorded. The
    // generation task writes the message's final state itself, outside this request.
    let summary = json!({ "conversationId": message.conversation_id });
    let target = Target::new(TargetType::Message, message_id);
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    audit::record(&txn, ctx, Action::GenerationStop, target, summary).await?;
    txn.commit().await?;
    // Waiting briefly for the final state lets the caller receive it in the response.
    if let Some(handle) = platform.generations.get(message_id) {
        handle.stop.cancel();
        let _ = tokio::time::timeout(STOP_WAIT, handle.finished.cancelled()).await;
        info!(tenant.id = %ctx.tenant(), message.id = %message_id, "generation stop requested");
        return visible_message(platform, ctx, message_id).await;
    }
    let mut redis = platform.redis.shared().await?;
    let receivers: i64 = redis
        .publish(registry::stop_channel(platform), message_id.to_string())
        .await?;
    if receivers == 0 {
        warn!(message.id = %message_id, "no api process received the stop request");
    }
    info!(tenant.id = %ctx.tenant(), message.id = %message_id, "generation stop requested");
    // Another process generates the reply and stores its end; read until it has.
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    loop {
        let message = visible_message(platform, ctx, message_id).await?;
        if message.status != MessageStatus::Streaming || tokio::time::Instant::now() >= deadline {
            return Ok(message);
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// How long `stop_generation` waits for the stopped reply's final state.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How often it reads the state of a reply that another process generates.
const STOP_POLL: Duration = Duration::from_millis(25);

/// Inserts the user message, the assistant message and the audit row of the send in one
/// statement: `WITH inserted_messages AS (INSERT INTO messages ...) INSERT INTO audit_logs
/// ...`. It is atomic without a transaction's extra round trips, because PostgreSQL runs a
/// data-modifying WITH query exactly once, even when the main statement does not read it
/// (manual, "Data-Modifying Statements in WITH"), and the statement succeeds or fails as a
/// whole. The summary contains ids, never the content.
async fn store_messages<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    user_message: &message::Model,
    assistant_message: &message::Model,
) -> Result<(), DbErr> {
    let messages = message::Entity::insert_many([
        message::ActiveModel::from(user_message.clone()),
        message::ActiveModel::from(assistant_message.clone()),
    ])
    .into_query();
    let summary = json!({
        "userMessageId": user_message.id,
        "assistantMessageId": assistant_message.id,
    });
    let target = Target::new(TargetType::Conversation, user_message.conversation_id);
    let entry = audit::entry(ctx, Action::MessageSend, target, summary);

    let mut statement = audit_log::Entity::insert(entry).into_query();
    statement.with_cte(
        CommonTableExpression::new()
            .query(messages)
            .table_name("inserted_messages")
            .to_owned(),
    );
    db.execute_raw(db.get_database_backend().build(&statement))
        .await?;
    Ok(())
}

/// Returns a message whose conversation the caller may see, or NOT_FOUND.
pub async fn visible_message(
    platform: &Platform,
    ctx: &RequestContext,
    message_id: Uuid,
) -> ServiceResult<message::Model> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let message = message::Entity::find_by_id(message_id)
        .filter(message::Column::TenantId.eq(ctx.tenant()))
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::not_found("message"))?;
    conversations::find_visible(&txn, ctx, message.conversation_id)
        .await
        .map_err(|error| match error {
            ServiceError::NotFound { .. } => ServiceError::not_found("message"),
            other => other,
        })?;
    txn.commit().await?;
    Ok(message)
}
