//! Agents: queries, mutations and the GraphQL agent type.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::agent;
use providers::ProviderKind;
use service::agents;
use uuid::Uuid;

use super::{
    agent_runs::AgentRun,
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::GqlResult,
    loaders::RecentRunsLoader,
};

/// An LLM provider.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    Openai,
    Anthropic,
    Gemini,
    Groq,
    Ollama,
}

impl From<Provider> for ProviderKind {
    fn from(provider: Provider) -> Self {
        match provider {
            Provider::Openai => ProviderKind::OpenAi,
            Provider::Anthropic => ProviderKind::Anthropic,
            Provider::Gemini => ProviderKind::Gemini,
            Provider::Groq => ProviderKind::Groq,
            Provider::Ollama => ProviderKind::Ollama,
        }
    }
}

impl Provider {
    /// Converts a stored provider name; unknown names cannot be stored, so they map to
    /// OpenAI only if the database was edited by hand.
    pub fn from_stored(name: &str) -> Self {
        match name.parse::<ProviderKind>() {
            Ok(ProviderKind::Anthropic) => Provider::Anthropic,
            Ok(ProviderKind::Gemini) => Provider::Gemini,
            Ok(ProviderKind::Groq) => Provider::Groq,
            Ok(ProviderKind::Ollama) => Provider::Ollama,
            _ => Provider::Openai,
        }
    }
}

/// An AI agent: a model with instructions, shared by the tenant's members.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Agent {
    pub id: ID,
    pub name: String,
    pub description: Option<String>,
    /// System prompt sent before every conversation with this agent.
    pub instructions: String,
    pub provider: Provider,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    /// Provider called when the primary one fails to open its stream after retries.
    pub fallback_provider: Option<Provider>,
    pub fallback_model: Option<String>,
    /// Names of the built-in and tenant tools the agent may call.
    pub tools: Vec<String>,
    /// Model calls a run may make before it fails.
    pub max_steps: i32,
    /// Seconds a run may take from its first start before it fails.
    pub run_timeout_seconds: i32,
    /// Newest messages a reply sends, counting the new one; null for the platform's
    /// `CONTEXT_MESSAGES`.
    pub context_messages: Option<i32>,
    /// Tokens the model's context holds; null for the platform's `CONTEXT_WINDOW_TOKENS`.
    /// Older messages are left out of a reply's prompt until the estimated prompt and the
    /// reply's maximum fit.
    pub context_window_tokens: Option<i32>,
    /// Seconds a completed reply stays in the response cache, so that an identical request
    /// is answered without a provider call; null when replies are cached only for messages
    /// sent with `cache: true`.
    pub response_cache_ttl_seconds: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub agent_id: Uuid,
}

#[ComplexObject]
impl Agent {
    /// The agent's newest runs, at most 10; `agentRuns(agentId: ...)` pages through all.
    async fn recent_runs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AgentRun>> {
        let loader = ctx.data_unchecked::<DataLoader<RecentRunsLoader>>();
        let runs = loader.load_one(self.agent_id).await?.unwrap_or_default();
        Ok(runs.into_iter().map(AgentRun::from).collect())
    }
}

impl From<agent::Model> for Agent {
    fn from(agent: agent::Model) -> Self {
        Self {
            agent_id: agent.id,
            id: agent.id.into(),
            name: agent.name,
            description: agent.description,
            instructions: agent.instructions,
            provider: Provider::from_stored(&agent.provider),
            model: agent.model,
            temperature: agent.temperature,
            max_tokens: agent.max_tokens,
            fallback_provider: agent
                .fallback_provider
                .as_deref()
                .map(Provider::from_stored),
            fallback_model: agent.fallback_model,
            tools: service::tools::names(&agent.tools),
            max_steps: agent.max_steps,
            run_timeout_seconds: agent.run_timeout_seconds,
            context_messages: agent.context_messages,
            context_window_tokens: agent.context_window_tokens,
            response_cache_ttl_seconds: agent.response_cache_ttl_seconds,
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    /// Up to 200 characters.
    pub name: String,
    pub description: Option<String>,
    /// System prompt, up to 20,000 characters.
    pub instructions: String,
    pub provider: Provider,
    pub model: String,
    /// Sampling temperature from 0 to 2; the provider's default when absent.
    pub temperature: Option<f64>,
    /// Maximum tokens of each reply; the provider's default when absent.
    pub max_tokens: Option<i32>,
    /// Provider called when the primary one fails to open its stream after retries.
    /// Set together with `fallbackModel`.
    pub fallback_provider: Option<Provider>,
    /// Model of the fallback provider, up to 200 characters.
    pub fallback_model: Option<String>,
    /// Names of built-in tools (see `builtinTools`) and of the tenant's tools that the
    /// agent may call, at most 32.
    #[graphql(default)]
    pub tools: Vec<String>,
    /// Model calls a run may make, 1 to 100; 8 when absent.
    pub max_steps: Option<i32>,
    /// Seconds a run may take, 1 to 86,400; 600 when absent.
    pub run_timeout_seconds: Option<i32>,
    /// Newest messages a reply sends, counting the new one, 1 to 200; the platform's
    /// `CONTEXT_MESSAGES` when absent.
    pub context_messages: Option<i32>,
    /// Tokens the model's context holds, 256 to 10,000,000; the platform's
    /// `CONTEXT_WINDOW_TOKENS` when absent.
    pub context_window_tokens: Option<i32>,
    /// Seconds a completed reply stays in the response cache, 1 to 2,592,000 (30 days).
    /// When absent, replies are cached only for messages sent with `cache: true`.
    pub response_cache_ttl_seconds: Option<i32>,
}

/// Fields to change; absent fields keep their value.
#[derive(InputObject)]
pub struct UpdateAgentInput {
    pub id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    pub instructions: Option<String>,
    pub provider: Option<Provider>,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    /// Null removes the fallback, together with `fallbackModel`.
    pub fallback_provider: MaybeUndefined<Provider>,
    /// Null removes the fallback, together with `fallbackProvider`.
    pub fallback_model: MaybeUndefined<String>,
    /// Replaces the list of tools the agent may call.
    pub tools: Option<Vec<String>>,
    pub max_steps: Option<i32>,
    pub run_timeout_seconds: Option<i32>,
    /// Null returns to the platform's setting.
    pub context_messages: MaybeUndefined<i32>,
    /// Null returns to the platform's setting.
    pub context_window_tokens: MaybeUndefined<i32>,
    /// Null turns the response cache off for the agent's replies.
    pub response_cache_ttl_seconds: MaybeUndefined<i32>,
}

#[derive(InputObject)]
pub struct DeleteAgentInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct AgentPayload {
    pub agent: Agent,
}

#[derive(SimpleObject)]
pub struct DeleteAgentPayload {
    pub deleted_agent_id: ID,
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// One agent of the caller's tenant.
    async fn agent(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Agent> {
        let id = parse_id("id", &id)?;
        Ok(agents::get(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }

    /// The tenant's agents, newest first.
    async fn agents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<Agent>> {
        let page = agents::list(platform(ctx), caller(ctx)?, &page_request(first, after))
            .await
            .gql()?;
        Ok(to_connection(page, Agent::from))
    }
}

#[derive(Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// Creates an agent. Needs the member role.
    async fn create_agent(
        &self,
        ctx: &Context<'_>,
        input: CreateAgentInput,
    ) -> async_graphql::Result<AgentPayload> {
        let input = agents::CreateAgent {
            name: input.name,
            description: input.description,
            instructions: input.instructions,
            provider: input.provider.into(),
            model: input.model,
            temperature: input.temperature,
            max_tokens: input.max_tokens,
            fallback_provider: input.fallback_provider.map(Into::into),
            fallback_model: input.fallback_model,
            tools: input.tools,
            max_steps: input.max_steps,
            run_timeout_seconds: input.run_timeout_seconds,
            context_messages: input.context_messages,
            context_window_tokens: input.context_window_tokens,
            response_cache_ttl_seconds: input.response_cache_ttl_seconds,
        };
        let agent = agents::create(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?;
        Ok(AgentPayload {
            agent: agent.into(),
        })
    }

    /// Changes an agent. Needs the member role.
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        input: UpdateAgentInput,
    ) -> async_graphql::Result<AgentPayload> {
        let id = parse_id("id", &input.id)?;
        let changes = agents::UpdateAgent {
            name: input.name,
            description: input.description,
            instructions: input.instructions,
            provider: input.provider.map(Into::into),
            model: input.model,
            temperature: input.temperature,
            max_tokens: input.max_tokens,
            fallback_provider: Option::from(input.fallback_provider.map_value(Into::into)),
            fallback_model: input.fallback_model.into(),
            tools: input.tools,
            max_steps: input.max_steps,
            run_timeout_seconds: input.run_timeout_seconds,
            context_messages: input.context_messages.into(),
            context_window_tokens: input.context_window_tokens.into(),
            response_cache_ttl_seconds: input.response_cache_ttl_seconds.into(),
        };
        let agent = agents::update(platform(ctx), caller(ctx)?, id, changes)
            .await
            .gql()?;
        Ok(AgentPayload {
            agent: agent.into(),
        })
    }

    /// Deletes an agent; its conversations and usage stay. Needs the member role.
    async fn delete_agent(
        &self,
        ctx: &Context<'_>,
        input: DeleteAgentInput,
    ) -> async_graphql::Result<DeleteAgentPayload> {
        let id = parse_id("id", &input.id)?;
        let deleted = agents::delete(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(DeleteAgentPayload {
            deleted_agent_id: deleted.into(),
        })
    }
}
