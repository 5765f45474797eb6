//! Agents: named model configurations with instructions, shared by a tenant's members.

use chrono::Utc;
use entity::{Role, agent};
use providers::ProviderKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use crate::{
    Platform, RequestContext,
    audit::{self, Action, Target, TargetType},
    chat::provider_available,
    config::MAX_RESPONSE_CACHE_TTL_SECONDS,
    error::{ServiceError, ServiceResult},
    pagination::{Order, Page, PageRequest, fetch_tenant_page},
    plans, tenant_settings, tools,
    validation::{self, MAX_NAME_CHARS, MAX_TEXT_CHARS},
};

pub struct CreateAgent {
    pub name: String,
    pub description: Option<String>,
    pub instructions: String,
    pub provider: ProviderKind,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    /// Provider called when the primary one fails to open its stream. It is set together
    /// with `fallback_model`.
    pub fallback_provider: Option<ProviderKind>,
    pub fallback_model: Option<String>,
    /// Names of the built-in and tenant tools the agent may call.
    pub tools: Vec<String>,
    /// Model calls a run may make; [`DEFAULT_MAX_STEPS`] when `None`.
    pub max_steps: Option<i32>,
    /// Seconds a run may take; [`DEFAULT_RUN_TIMEOUT_SECONDS`] when `None`.
    pub run_timeout_seconds: Option<i32>,
    /// Newest messages a reply sends, counting the new one; the platform's setting when
    /// `None`.
    pub context_messages: Option<i32>,
    /// Tokens the model's context holds; the platform's setting when `None`.
    pub context_window_tokens: Option<i32>,
    /// Seconds a completed reply stays in the response cache; `None` caches replies only
    /// for messages sent with `cache: true`.
    pub response_cache_ttl_seconds: Option<i32>,
}

/// Model calls an agent run may make unless the agent sets its own limit.
pub const DEFAULT_MAX_STEPS: i32 = 8;
/// Highest step limit an agent may set.
pub const MAX_STEPS_LIMIT: i32 = 100;
/// Seconds an agent run may take unless the agent sets its own limit.
pub const DEFAULT_RUN_TIMEOUT_SECONDS: i32 = 600;
/// Highest run time limit an agent may set: one day.
pub const RUN_TIMEOUT_LIMIT_SECONDS: i32 = 86_400;

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Default)]
pub struct UpdateAgent {
    pub name: Option<String>,
    pub description: Option<String>,
    pub instructions: Option<String>,
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    /// `Some(None)` removes the fallback provider; the fallback model must then be removed too.
    pub fallback_provider: Option<Option<ProviderKind>>,
    pub fallback_model: Option<Option<String>>,
    pub tools: Option<Vec<String>>,
    pub max_steps: Option<i32>,
    pub run_timeout_seconds: Option<i32>,
    /// `Some(None)` returns to the platform's setting.
    pub context_messages: Option<Option<i32>>,
    /// `Some(None)` returns to the platform's setting.
    pub context_window_tokens: Option<Option<i32>>,
    /// `Some(None)` turns the response cache off for the agent's replies.
    pub response_cache_ttl_seconds: Option<Option<i32>>,
}

pub async fn create(
    platform: &Platform,
    ctx: &RequestContext,
    input: CreateAgent,
) -> ServiceResult<agent::Model> {
    ctx.require(Role::Member)?;
    let name = validation::required_text("name", &input.name, MAX_NAME_CHARS)?;
    let description =
        validation::optional_text("description", input.description.as_deref(), MAX_TEXT_CHARS)?;
    let instructions =
        validation::required_text("instructions", &input.instructions, MAX_TEXT_CHARS)?;
    check_provider(platform, "provider", input.provider)?;
    let model = validation::required_text("model", &input.model, MAX_NAME_CHARS)?;
    let temperature = validation::temperature("temperature", input.temperature)?;
    let max_tokens = check_max_tokens(input.max_tokens)?;
    let (fallback_provider, fallback_model) = check_fallback(
        platform,
        input.fallback_provider,
        input.fallback_model.as_deref(),
    )?;

    let max_steps = check_max_steps(input.max_steps.unwrap_or(DEFAULT_MAX_STEPS))?;
    let context_messages = check_context_messages(input.context_messages)?;
    let context_window_tokens = check_context_window(input.context_window_tokens)?;
    let response_cache_ttl_seconds = check_response_cache_ttl(input.response_cache_ttl_seconds)?;
    let run_timeout_seconds = check_run_timeout(
        input
            .run_timeout_seconds
            .unwrap_or(DEFAULT_RUN_TIMEOUT_SECONDS),
    )?;

    let now = Utc::now();
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let tools = tools::check_agent_tools(&txn, ctx, "tools", &input.tools).await?;
    let tenant = plans::lock_limits(&txn, ctx.tenant_id).await?;
    let agents = agent::Entity::find()
        .filter(agent::Column::TenantId.eq(ctx.tenant()))
        .count(&txn)
        .await?;
    plans::check_count(&tenant, "agents", agents, |limits| limits.max_agents)?;
    let agent = agent::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        name: Set(name),
        description: Set(description),
        instructions: Set(instructions),
        provider: Set(input.provider.as_str().to_owned()),
        model: Set(model),
        temperature: Set(temperature),
        max_tokens: Set(max_tokens),
        fallback_provider: Set(fallback_provider),
        fallback_model: Set(fallback_model),
        tools: Set(serde_json::json!(tools)),
        max_steps: Set(max_steps),
        run_timeout_seconds: Set(run_timeout_seconds),
        context_messages: Set(context_messages),
        context_window_tokens: Set(context_window_tokens),
        response_cache_ttl_seconds: Set(response_cache_ttl_seconds),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    check_allowed(&txn, ctx, &agent).await?;
    let summary = json!({ "name": agent.name, "provider": agent.provider, "model": agent.model });
    audit::record(
        &txn,
        ctx,
        Action::AgentCreate,
        Target::new(TargetType::Agent, agent.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), agent.id = %agent.id, "agent created");
    Ok(agent)
}

pub async fn update(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
    input: UpdateAgent,
) -> ServiceResult<agent::Model> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let agent = find(&txn, ctx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("agent"))?;
    let fallback = match (input.fallback_provider, input.fallback_model) {
        (None, None) => None,
        (provider, model) => Some(merge_fallback(&agent, provider, model)?),
    };
    let before = agent.clone();
    let mut active: agent::ActiveModel = agent.into();
    if let Some(name) = input.name {
        active.name = Set(validation::required_text("name", &name, MAX_NAME_CHARS)?);
    }
    if let Some(description) = input.description {
        active.description = Set(validation::optional_text(
            "description",
            Some(&description),
            MAX_TEXT_CHARS,
        )?);
    }
    if let Some(instructions) = input.instructions {
        active.instructions = Set(validation::required_text(
            "instructions",
            &instructions,
            MAX_TEXT_CHARS,
        )?);
    }
    if let Some(provider) = input.provider {
        check_provider(platform, "provider", provider)?;
        active.provider = Set(provider.as_str().to_owned());
    }
    if let Some(model) = input.model {
        active.model = Set(validation::required_text("model", &model, MAX_NAME_CHARS)?);
    }
    if input.temperature.is_some() {
        active.temperature = Set(validation::temperature("temperature", input.temperature)?);
    }
    if input.max_tokens.is_some() {
        active.max_tokens = Set(check_max_tokens(input.max_tokens)?);
    }
    if let Some((provider, model)) = fallback {
        let (provider, model) = check_fallback(platform, provider, model.as_deref())?;
        active.fallback_provider = Set(provider);
        active.fallback_model = Set(model);
    }
    if let Some(names) = &input.tools {
        let names = tools::check_agent_tools(&txn, ctx, "tools", names).await?;
        active.tools = Set(serde_json::json!(names));
    }
    if let Some(max_steps) = input.max_steps {
        active.max_steps = Set(check_max_steps(max_steps)?);
    }
    if let Some(seconds) = input.run_timeout_seconds {
        active.run_timeout_seconds = Set(check_run_timeout(seconds)?);
    }
    if let Some(count) = input.context_messages {
        active.context_messages = Set(check_context_messages(count)?);
    }
    if let Some(tokens) = input.context_window_tokens {
        active.context_window_tokens = Set(check_context_window(tokens)?);
    }
    if let Some(seconds) = input.response_cache_ttl_seconds {
        active.response_cache_ttl_seconds = Set(check_response_cache_ttl(seconds)?);
    }
    active.updated_at = Set(Utc::now());

    let fields = audit::changed_fields(&before, &active);
    let agent = active.update(&txn).await?;
    // Checked on the agent as updated, so that a change of either field is covered; an
    // error drops the transaction and with it the update.
    check_allowed(&txn, ctx, &agent).await?;
    let summary = json!({ "name": agent.name, "fields": fields });
    audit::record(
        &txn,
        ctx,
        Action::AgentUpdate,
        Target::new(TargetType::Agent, agent.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    Ok(agent)
}

/// Deletes an agent. Its conversations and usage records stay, with the reference cleared.
pub async fn delete(platform: &Platform, ctx: &RequestContext, id: Uuid) -> ServiceResult<Uuid> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let deleted = agent::Entity::delete_many()
        .filter(agent::Column::Id.eq(id))
        .filter(agent::Column::TenantId.eq(ctx.tenant()))
        .exec_with_returning(&txn)
        .await?;
    let Some(agent) = deleted.into_iter().next() else {
        return Err(ServiceError::not_found("agent"));
    };
    audit::record(
        &txn,
        ctx,
        Action::AgentDelete,
        Target::new(TargetType::Agent, id),
        json!({ "name": agent.name }),
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), agent.id = %id, "agent deleted");
    Ok(id)
}

pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<agent::Model> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let agent = find(&txn, ctx, id).await?;
    txn.commit().await?;
    agent.ok_or_else(|| ServiceError::not_found("agent"))
}

/// Returns the agent when it exists in the caller's tenant.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<Option<agent::Model>> {
    Ok(agent::Entity::find_by_id(id)
        .filter(agent::Column::TenantId.eq(ctx.tenant()))
        .one(db)
        .await?)
}

pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    page: &PageRequest,
) -> ServiceResult<Page<agent::Model>> {
    let select = agent::Entity::find().filter(agent::Column::TenantId.eq(ctx.tenant()));
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        select,
        agent::Column::Id,
        Order::NewestFirst,
        page,
        |a| a.id,
    )
    .await
}

fn check_provider(platform: &Platform, field: &str, provider: ProviderKind) -> ServiceResult<()> {
    if provider_available(platform, provider) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            format!("provider {provider} is not available on this platform"),
        ))
    }
}

/// Combines the stored fallback with the requested changes, so that either field can change
/// alone while the other keeps its stored value.
fn merge_fallback(
    agent: &agent::Model,
    provider: Option<Option<ProviderKind>>,
    model: Option<Option<String>>,
) -> ServiceResult<(Option<ProviderKind>, Option<String>)> {
    let provider = match provider {
        Some(change) => change,
        None => agent
            .fallback_provider
            .as_deref()
            .map(|name| {
                name.parse::<ProviderKind>().map_err(|_| {
                    ServiceError::internal(format!(
                        "agent {} has unknown fallback provider {name}",
                        agent.id
                    ))
                })
            })
            .transpose()?,
    };
    let model = model.unwrap_or_else(|| agent.fallback_model.clone());
    Ok((provider, model))
}

/// Checks that the fallback provider and model are both set or both absent, and returns
/// them in their stored form.
fn check_fallback(
    platform: &Platform,
    provider: Option<ProviderKind>,
    model: Option<&str>,
) -> ServiceResult<(Option<String>, Option<String>)> {
    let model = validation::optional_text("fallbackModel", model, MAX_NAME_CHARS)?;
    match (provider, model) {
        (Some(provider), Some(model)) => {
            check_provider(platform, "fallbackProvider", provider)?;
            Ok((Some(provider.as_str().to_owned()), Some(model)))
        }
        (None, None) => Ok((None, None)),
        (Some(_), None) => Err(ServiceError::invalid(
            "fallbackModel",
            "must be set when fallbackProvider is set",
        )),
        (None, Some(_)) => Err(ServiceError::invalid(
            "fallbackProvider",
            "must be set when fallbackModel is set",
        )),
    }
}

fn check_max_steps(steps: i32) -> ServiceResult<i32> {
    if (1..=MAX_STEPS_LIMIT).contains(&steps) {
        Ok(steps)
    } else {
        Err(ServiceError::invalid(
            "maxSteps",
            format!("must be between 1 and {MAX_STEPS_LIMIT} (got {steps})"),
        ))
    }
}

fn check_run_timeout(seconds: i32) -> ServiceResult<i32> {
    if (1..=RUN_TIMEOUT_LIMIT_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(ServiceError::invalid(
            "runTimeoutSeconds",
            format!("must be between 1 and {RUN_TIMEOUT_LIMIT_SECONDS} (got {seconds})"),
        ))
    }
}

/// Largest number of messages an agent may send per reply.
pub const MAX_CONTEXT_MESSAGES: i32 = 200;
/// Smallest and largest model context an agent may state, in tokens.
pub const CONTEXT_WINDOW_RANGE: std::ops::RangeInclusive<i32> = 256..=10_000_000;

fn check_context_messages(count: Option<i32>) -> ServiceResult<Option<i32>> {
    match count {
        Some(count) if !(1..=MAX_CONTEXT_MESSAGES).contains(&count) => Err(ServiceError::invalid(
            "contextMessages",
            format!("must be between 1 and {MAX_CONTEXT_MESSAGES} (got {count})"),
        )),
        other => Ok(other),
    }
}

fn check_context_window(tokens: Option<i32>) -> ServiceResult<Option<i32>> {
    match tokens {
        Some(tokens) if !CONTEXT_WINDOW_RANGE.contains(&tokens) => Err(ServiceError::invalid(
            "contextWindowTokens",
            format!(
                "must be between {} and {} (got {tokens})",
                CONTEXT_WINDOW_RANGE.start(),
                CONTEXT_WINDOW_RANGE.end()
            ),
        )),
        other => Ok(other),
    }
}

fn check_response_cache_ttl(seconds: Option<i32>) -> ServiceResult<Option<i32>> {
    let maximum = MAX_RESPONSE_CACHE_TTL_SECONDS;
    match seconds {
        Some(value) if !(1..=maximum).contains(&u64::try_from(value).unwrap_or(0)) => {
            Err(ServiceError::invalid(
                "responseCacheTtlSeconds",
                format!("must be between 1 and {maximum} (got {value})"),
            ))
        }
        other => Ok(other),
    }
}

fn check_max_tokens(value: Option<i32>) -> ServiceResult<Option<i32>> {
    match value {
        Some(tokens) if tokens < 1 => Err(ServiceError::invalid(
            "maxTokens",
            format!("must be at least 1 (got {tokens})"),
        )),
        other => Ok(other),
    }
}

/// Fails with BAD_USER_INPUT when the tenant's settings do not allow the agent's provider
/// and model, or its fallback's.
async fn check_allowed<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    agent: &agent::Model,
) -> ServiceResult<()> {
    let settings = tenant_settings::for_tenant(db, ctx.tenant_id).await?;
    let stored = |name: &str| {
        name.parse::<ProviderKind>()
            .map_err(|_| ServiceError::internal(format!("agent {} has unknown provider", agent.id)))
    };
    settings.check_allowed(stored(&agent.provider)?, &agent.model, "provider", "model")?;
    if let (Some(provider), Some(model)) = (&agent.fallback_provider, &agent.fallback_model) {
        settings.check_allowed(
            stored(provider)?,
            model,
            "fallbackProvider",
            "fallbackModel",
        )?;
    }
    Ok(())
}
