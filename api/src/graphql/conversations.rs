//! Conversations and their messages: queries, mutations and types.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject, dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::{conversation, message};
use service::conversations;
use uuid::Uuid;

use super::{
    agent_runs::ToolExecution,
    agents::{Agent, Provider},
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::GqlResult,
    loaders::{AgentLoader, ByMessage, ToolExecutionsLoader},
    scalars::BigInt,
};

/// A thread of messages with one model, visible to its creator and to admins and owners.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Conversation {
    pub id: ID,
    pub title: String,
    pub provider: Provider,
    pub model: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub conversation_id: Uuid,
    #[graphql(skip)]
    pub agent_id: Option<Uuid>,
}

impl From<conversation::Model> for Conversation {
    fn from(conversation: conversation::Model) -> Self {
        Self {
            id: conversation.id.into(),
            title: conversation.title,
            provider: Provider::from_stored(&conversation.provider),
            model: conversation.model,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
            conversation_id: conversation.id,
            agent_id: conversation.agent_id,
        }
    }
}

#[ComplexObject]
impl Conversation {
    /// The agent whose instructions the conversation uses; null without one or once deleted.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(agent_id) = self.agent_id else {
            return Ok(None);
        };
        let loader = ctx.data_unchecked::<DataLoader<AgentLoader>>();
        Ok(loader.load_one(agent_id).await?.map(Agent::from))
    }

    /// The conversation's messages, oldest first.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<Message>> {
        let request = page_request(first, after);
        let page =
            conversations::messages(platform(ctx), caller(ctx)?, self.conversation_id, &request)
                .await
                .gql()?;
        Ok(to_connection(page, Message::from))
    }
}

/// Author of a message.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum MessageRole {
    System,
    User,
    Assistant,
}

/// Stage of a message's life.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    /// The reply is being generated; follow it with the `messageStream` subscription.
    Streaming,
    Completed,
    Failed,
    /// The process generating the reply stopped before it finished.
    Interrupted,
}

/// Reason the generation of a reply ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    /// Stopped early: by a user, or, with `GENERATION_WITHOUT_LISTENER=stop`, because
    /// nobody followed the reply.
    Cancelled,
    Error,
    Other,
}

impl From<entity::MessageRole> for MessageRole {
    fn from(role: entity::MessageRole) -> Self {
        match role {
            entity::MessageRole::System => MessageRole::System,
            entity::MessageRole::User => MessageRole::User,
            entity::MessageRole::Assistant => MessageRole::Assistant,
        }
    }
}

impl From<entity::MessageStatus> for MessageStatus {
    fn from(status: entity::MessageStatus) -> Self {
        match status {
            entity::MessageStatus::Streaming => MessageStatus::Streaming,
            entity::MessageStatus::Completed => MessageStatus::Completed,
            entity::MessageStatus::Failed => MessageStatus::Failed,
            entity::MessageStatus::Interrupted => MessageStatus::Interrupted,
        }
    }
}

impl From<entity::FinishReason> for FinishReason {
    fn from(reason: entity::FinishReason) -> Self {
        match reason {
            entity::FinishReason::Stop => FinishReason::Stop,
            entity::FinishReason::Length => FinishReason::Length,
            entity::FinishReason::ToolCalls => FinishReason::ToolCalls,
            entity::FinishReason::ContentFilter => FinishReason::ContentFilter,
            entity::FinishReason::Cancelled => FinishReason::Cancelled,
            entity::FinishReason::Error => FinishReason::Error,
            entity::FinishReason::Other => FinishReason::Other,
        }
    }
}

/// One message of a conversation. Token counts and cost are set on generated replies
/// once they finish; for a reply that called tools they cover every model call.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Message {
    pub id: ID,
    pub conversation_id: ID,
    pub role: MessageRole,
    pub content: String,
    pub status: MessageStatus,
    pub finish_reason: Option<FinishReason>,
    pub input_tokens: Option<BigInt>,
    pub output_tokens: Option<BigInt>,
    /// Cost in micro-dollars (millionths of a US dollar); null while streaming, for
    /// messages not generated, and when the model's price is unknown.
    pub cost_micros: Option<BigInt>,
    /// True when the provider reported no usage and the counts were estimated from the text.
    pub usage_estimated: bool,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub message_id: Uuid,
}

#[ComplexObject]
impl Message {
    /// The tool calls made while generating this reply, by step and in the order the model
    /// listed them; empty for other messages.
    async fn tool_executions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ToolExecution>> {
        let loader = ctx.data_unchecked::<DataLoader<ToolExecutionsLoader>>();
        let executions = loader
            .load_one(ByMessage(self.message_id))
            .await?
            .unwrap_or_default();
        Ok(executions.into_iter().map(ToolExecution::from).collect())
    }
}

impl From<message::Model> for Message {
    fn from(message: message::Model) -> Self {
        Self {
            message_id: message.id,
            id: message.id.into(),
            conversation_id: message.conversation_id.into(),
            role: message.role.into(),
            content: message.content,
            status: message.status.into(),
            finish_reason: message.finish_reason.map(Into::into),
            input_tokens: message.input_tokens.map(BigInt),
            output_tokens: message.output_tokens.map(BigInt),
            cost_micros: message.cost_micros.map(BigInt),
            usage_estimated: message.usage_estimated,
            error: message.error,
            created_at: message.created_at,
            completed_at: message.completed_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateConversationInput {
    /// Up to 200 characters.
    pub title: String,
    /// Agent whose instructions, provider and model the conversation uses.
    pub agent_id: Option<ID>,
    /// Defaults to the agent's provider; required without an agent.
    pub provider: Option<Provider>,
    /// Defaults to the agent's model; required without an agent.
    pub model: Option<String>,
}

#[derive(InputObject)]
pub struct RenameConversationInput {
    pub id: ID,
    pub title: String,
}

#[derive(InputObject)]
pub struct DeleteConversationInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct ConversationPayload {
    pub conversation: Conversation,
}

#[derive(SimpleObject)]
pub struct DeleteConversationPayload {
    pub deleted_conversation_id: ID,
}

#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// One conversation the caller may see.
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Conversation> {
        let id = parse_id("id", &id)?;
        Ok(conversations::get(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }

    /// Conversations the caller may see, newest first: their own, or all for admins.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<Conversation>> {
        let request = page_request(first, after);
        let page = conversations::list(platform(ctx), caller(ctx)?, &request)
            .await
            .gql()?;
        Ok(to_connection(page, Conversation::from))
    }

    /// One message of a conversation the caller may see.
    async fn message(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Message> {
        let id = parse_id("id", &id)?;
        Ok(
            service::chat::visible_message(platform(ctx), caller(ctx)?, id)
                .await
                .gql()?
                .into(),
        )
    }
}

#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Starts a conversation. Needs the member role.
    async fn create_conversation(
        &self,
        ctx: &Context<'_>,
        input: CreateConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let agent_id = match &input.agent_id {
            Some(id) => Some(parse_id("agentId", id)?),
            None => None,
        };
        let input = conversations::CreateConversation {
            title: input.title,
            agent_id,
            provider: input.provider.map(Into::into),
            model: input.model,
        };
        let conversation = conversations::create(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?;
        Ok(ConversationPayload {
            conversation: conversation.into(),
        })
    }

    /// Changes a conversation's title. Needs the member role.
    async fn rename_conversation(
        &self,
        ctx: &Context<'_>,
        input: RenameConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let id = parse_id("id", &input.id)?;
        let conversation = conversations::rename(platform(ctx), caller(ctx)?, id, &input.title)
            .await
            .gql()?;
        Ok(ConversationPayload {
            conversation: conversation.into(),
        })
    }

    /// Deletes a conversation and its messages; usage records stay. Needs the member role.
    async fn delete_conversation(
        &self,
        ctx: &Context<'_>,
        input: DeleteConversationInput,
    ) -> async_graphql::Result<DeleteConversationPayload> {
        let id = parse_id("id", &input.id)?;
        let deleted = conversations::delete(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?;
        Ok(DeleteConversationPayload {
            deleted_conversation_id: deleted.into(),
        })
    }
}
