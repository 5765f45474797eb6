//! The `tenantEvents` subscription: live updates of the tenant's tasks, agent runs,
//! conversations and messages, and of the providers' health.

use async_graphql::{Context, Enum, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use service::{
    ServiceError,
    live::{self, Change, ChangeKind, CursorUpdate},
};

use super::{
    agent_runs::{AgentRun, AgentRunStatus},
    agents::Provider,
    context::{caller, platform},
    conversations::{Conversation, Message, MessageStatus},
    error::{GqlResult, to_graphql_error},
    provider_health::ProviderHealthStatus,
    tasks::Task,
};

/// What changed.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TenantEventKind {
    TaskCreated,
    TaskUpdated,
    TaskDeleted,
    /// An agent run was queued, started, or ended.
    AgentRunChanged,
    ConversationCreated,
    MessageCreated,
    /// A reply stopped streaming: completed, stopped, failed or interrupted.
    MessageCompleted,
    ProviderHealthChanged,
}

impl From<TenantEventKind> for ChangeKind {
    fn from(kind: TenantEventKind) -> Self {
        match kind {
            TenantEventKind::TaskCreated => Self::TaskCreated,
            TenantEventKind::TaskUpdated => Self::TaskUpdated,
            TenantEventKind::TaskDeleted => Self::TaskDeleted,
            TenantEventKind::AgentRunChanged => Self::AgentRunChanged,
            TenantEventKind::ConversationCreated => Self::ConversationCreated,
            TenantEventKind::MessageCreated => Self::MessageCreated,
            TenantEventKind::MessageCompleted => Self::MessageCompleted,
            TenantEventKind::ProviderHealthChanged => Self::ProviderHealthChanged,
        }
    }
}

impl From<ChangeKind> for TenantEventKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::TaskCreated => Self::TaskCreated,
            ChangeKind::TaskUpdated => Self::TaskUpdated,
            ChangeKind::TaskDeleted => Self::TaskDeleted,
            ChangeKind::AgentRunChanged => Self::AgentRunChanged,
            ChangeKind::ConversationCreated => Self::ConversationCreated,
            ChangeKind::MessageCreated => Self::MessageCreated,
            ChangeKind::MessageCompleted => Self::MessageCompleted,
            ChangeKind::ProviderHealthChanged => Self::ProviderHealthChanged,
        }
    }
}

/// One change. The ids and states are those at the time of the change. The object fields
/// (`task`, `agentRun`, `conversation`, `message`) read the object as it is now, and are
/// null once it has been deleted.
pub struct TenantEvent(CursorUpdate);

#[Object]
impl TenantEvent {
    /// Pass as `after` to resume the subscription right after this event.
    async fn cursor(&self) -> &str {
        &self.0.cursor
    }

    async fn kind(&self) -> TenantEventKind {
        self.0.update.change.kind().into()
    }

    /// When the change was made.
    async fn at(&self) -> DateTime<Utc> {
        self.0.update.at
    }

    async fn task_id(&self) -> Option<ID> {
        match &self.0.update.change {
            Change::TaskCreated { task_id }
            | Change::TaskUpdated { task_id }
            | Change::TaskDeleted { task_id } => Some((*task_id).into()),
            _ => None,
        }
    }

    async fn agent_run_id(&self) -> Option<ID> {
        match &self.0.update.change {
            Change::AgentRunChanged { run_id, .. } => Some((*run_id).into()),
            _ => None,
        }
    }

    /// The run's state after the change, for AGENT_RUN_CHANGED.
    async fn agent_run_status(&self) -> Option<AgentRunStatus> {
        match &self.0.update.change {
            Change::AgentRunChanged { status, .. } => Some((*status).into()),
            _ => None,
        }
    }

    /// The conversation, for conversation and message events.
    async fn conversation_id(&self) -> Option<ID> {
        match &self.0.update.change {
            Change::ConversationCreated {
                conversation_id, ..
            }
            | Change::MessageCreated {
                conversation_id, ..
            }
            | Change::MessageCompleted {
                conversation_id, ..
            } => Some((*conversation_id).into()),
            _ => None,
        }
    }

    async fn message_id(&self) -> Option<ID> {
        match &self.0.update.change {
            Change::MessageCreated { message_id, .. }
            | Change::MessageCompleted { message_id, .. } => Some((*message_id).into()),
            _ => None,
        }
    }

    /// The reply's final state, for MESSAGE_COMPLETED.
    async fn message_status(&self) -> Option<MessageStatus> {
        match &self.0.update.change {
            Change::MessageCompleted { status, .. } => Some((*status).into()),
            _ => None,
        }
    }

    /// The provider, for PROVIDER_HEALTH_CHANGED.
    async fn provider(&self) -> Option<Provider> {
        match &self.0.update.change {
            Change::ProviderHealthChanged { provider, .. } => Some(Provider::from_stored(provider)),
            _ => None,
        }
    }

    /// The provider's new health, for PROVIDER_HEALTH_CHANGED.
    async fn provider_status(&self) -> Option<ProviderHealthStatus> {
        match &self.0.update.change {
            Change::ProviderHealthChanged { status, .. } => Some((*status).into()),
            _ => None,
        }
    }

    async fn task(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Task>> {
        let (Change::TaskCreated { task_id } | Change::TaskUpdated { task_id }) =
            &self.0.update.change
        else {
            return Ok(None);
        };
        let task = service::tasks::get(platform(ctx), caller(ctx)?, *task_id).await;
        Ok(present(task)?.map(Task::from))
    }

    async fn agent_run(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AgentRun>> {
        let Change::AgentRunChanged { run_id, .. } = &self.0.update.change else {
            return Ok(None);
        };
        let run = service::agent_runs::get(platform(ctx), caller(ctx)?, *run_id).await;
        Ok(present(run)?.map(AgentRun::from))
    }

    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        let (Change::ConversationCreated {
            conversation_id, ..
        }
        | Change::MessageCreated {
            conversation_id, ..
        }
        | Change::MessageCompleted {
            conversation_id, ..
        }) = &self.0.update.change
        else {
            return Ok(None);
        };
        let conversation =
            service::conversations::get(platform(ctx), caller(ctx)?, *conversation_id).await;
        Ok(present(conversation)?.map(Conversation::from))
    }

    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let (Change::MessageCreated { message_id, .. }
        | Change::MessageCompleted { message_id, .. }) = &self.0.update.change
        else {
            return Ok(None);
        };
        let message =
            service::chat::visible_message(platform(ctx), caller(ctx)?, *message_id).await;
        Ok(present(message)?.map(Message::from))
    }
}

/// Returns the object, or `None` when it no longer exists.
fn present<T>(found: Result<T, ServiceError>) -> async_graphql::Result<Option<T>> {
    match found {
        Ok(object) => Ok(Some(object)),
        Err(ServiceError::NotFound { .. }) => Ok(None),
        Err(error) => Err(to_graphql_error(error)),
    }
}

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// Changes in the caller's tenant as they happen: tasks created, updated or deleted,
    /// agent runs changing state, conversations and messages created, replies completed,
    /// and providers' health changing. Only changes the caller may read arrive: members
    /// and viewers see their own conversations, admins and owners every conversation, and
    /// provider health needs the member role. Starts with the next change, or right after
    /// `after`, an event's cursor, for a client that reconnects; `kinds` keeps only those
    /// kinds.
    async fn tenant_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        kinds: Option<Vec<TenantEventKind>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<TenantEvent>> + use<>> {
        let kinds = kinds.map(|kinds| kinds.into_iter().map(ChangeKind::from).collect());
        let updates = live::subscribe(platform(ctx), caller(ctx)?, after, kinds)
            .await
            .gql()?;
        Ok(updates.map(|update| update.map(TenantEvent).map_err(to_graphql_error)))
    }
}
