//! The audit log: one row per state-changing operation, written on the connection or
//! transaction of the change itself, so that a change never lands without its row and a
//! failed change leaves none. Admins list the rows with [`list`].
//!
//! A row belongs to the tenant the request acted in. For `switchTenant` that is the tenant
//! being left, and for registration and accepted invitations the tenant joined.
//!
//! A summary names what changed (names, roles, ids, changed field names and values that are
//! not secret). It never contains API keys, passwords, tokens, provider keys or message
//! content.

use chrono::{DateTime, Utc};
use entity::{
    Role,
    audit_log::{self, ActorType},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, IdenStatic, Iterable,
    ModelTrait, QueryFilter, Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    Platform, RequestContext, RequestOrigin,
    error::{ServiceError, ServiceResult},
    pagination::{Order, Page, PageRequest, fetch_tenant_page},
};

/// Every audited operation, named `<object>.<verb>` in the stored rows.
///
/// `login` and `refreshToken` are not audited, because they change only the caller's own
/// session row and no other tenant data. `sendMessage` is audited in the same statement that stores the messages
/// (see [`crate::chat::send_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    AgentCreate,
    AgentUpdate,
    AgentDelete,
    AgentRunExecute,
    AgentRunCancel,
    ToolCreate,
    ToolUpdate,
    ToolDelete,
    ConversationCreate,
    ConversationRename,
    ConversationDelete,
    MessageSend,
    GenerationStop,
    TaskCreate,
    TaskUpdate,
    TaskDelete,
    ProviderCredentialSet,
    ProviderCredentialDelete,
    ModelPriceSet,
    ModelPriceDelete,
    MemberInvite,
    InvitationRevoke,
    InvitationAccept,
    MemberRoleChange,
    MemberRemove,
    MemberLeave,
    ApiKeyCreate,
    ApiKeyRevoke,
    TenantRegister,
    SessionLogout,
    SessionRevoke,
    SessionSwitchTenant,
    UserPasswordChange,
    TenantSettingsUpdate,
    TenantPlanChange,
    TenantSuspend,
    TenantReactivate,
    WebhookCreate,
    WebhookUpdate,
    WebhookDelete,
    WebhookRotateSecret,
    WebhookRedeliver,
}

impl Action {
    pub const ALL: [Action; 42] = [
        Action::AgentCreate,
        Action::AgentUpdate,
        Action::AgentDelete,
        Action::AgentRunExecute,
        Action::AgentRunCancel,
        Action::ToolCreate,
        Action::ToolUpdate,
        Action::ToolDelete,
        Action::ConversationCreate,
        Action::ConversationRename,
        Action::ConversationDelete,
        Action::MessageSend,
        Action::GenerationStop,
        Action::TaskCreate,
        Action::TaskUpdate,
        Action::TaskDelete,
        Action::ProviderCredentialSet,
        Action::ProviderCredentialDelete,
        Action::ModelPriceSet,
        Action::ModelPriceDelete,
        Action::MemberInvite,
        Action::InvitationRevoke,
        Action::InvitationAccept,
        Action::MemberRoleChange,
        Action::MemberRemove,
        Action::MemberLeave,
        Action::ApiKeyCreate,
        Action::ApiKeyRevoke,
        Action::TenantRegister,
        Action::SessionLogout,
        Action::SessionRevoke,
        Action::SessionSwitchTenant,
        Action::UserPasswordChange,
        Action::TenantSettingsUpdate,
        Action::TenantPlanChange,
        Action::TenantSuspend,
        Action::TenantReactivate,
        Action::WebhookCreate,
        Action::WebhookUpdate,
        Action::WebhookDelete,
        Action::WebhookRotateSecret,
        Action::WebhookRedeliver,
    ];

    /// Returns the stored name. Renaming one splits the history of that operation in two.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AgentCreate => "agent.create",
            Action::AgentUpdate => "agent.update",
            Action::AgentDelete => "agent.delete",
            Action::AgentRunExecute => "agent_run.execute",
            Action::AgentRunCancel => "agent_run.cancel",
            Action::ToolCreate => "tool.create",
            Action::ToolUpdate => "tool.update",
            Action::ToolDelete => "tool.delete",
            Action::ConversationCreate => "conversation.create",
            Action::ConversationRename => "conversation.rename",
            Action::ConversationDelete => "conversation.delete",
            Action::MessageSend => "message.send",
            Action::GenerationStop => "generation.stop",
            Action::TaskCreate => "task.create",
            Action::TaskUpdate => "task.update",
            Action::TaskDelete => "task.delete",
            Action::ProviderCredentialSet => "provider_credential.set",
            Action::ProviderCredentialDelete => "provider_credential.delete",
            Action::ModelPriceSet => "model_price.set",
            Action::ModelPriceDelete => "model_price.delete",
            Action::MemberInvite => "member.invite",
            Action::InvitationRevoke => "invitation.revoke",
            Action::InvitationAccept => "invitation.accept",
            Action::MemberRoleChange => "member.role_change",
            Action::MemberRemove => "member.remove",
            Action::MemberLeave => "member.leave",
            Action::ApiKeyCreate => "api_key.create",
            Action::ApiKeyRevoke => "api_key.revoke",
            Action::TenantRegister => "tenant.register",
            Action::SessionLogout => "session.logout",
            Action::SessionRevoke => "session.revoke",
            Action::SessionSwitchTenant => "session.switch_tenant",
            Action::UserPasswordChange => "user.password_change",
            Action::TenantSettingsUpdate => "tenant.settings_update",
            Action::TenantPlanChange => "tenant.plan_change",
            Action::TenantSuspend => "tenant.suspend",
            Action::TenantReactivate => "tenant.reactivate",
            Action::WebhookCreate => "webhook.create",
            Action::WebhookUpdate => "webhook.update",
            Action::WebhookDelete => "webhook.delete",
            Action::WebhookRotateSecret => "webhook.rotate_secret",
            Action::WebhookRedeliver => "webhook.redeliver",
        }
    }

    /// Returns the action stored as `name`, or `None` for a name no action has.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
    }
}

/// Kind of object an audited operation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetType {
    Agent,
    AgentRun,
    ApiKey,
    Conversation,
    Invitation,
    /// A membership, identified by the member's user id.
    Member,
    Message,
    ModelPrice,
    ProviderCredential,
    Session,
    Task,
    Tenant,
    Tool,
    User,
    Webhook,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Agent => "agent",
            TargetType::AgentRun => "agent_run",
            TargetType::ApiKey => "api_key",
            TargetType::Conversation => "conversation",
            TargetType::Invitation => "invitation",
            TargetType::Member => "member",
            TargetType::Message => "message",
            TargetType::ModelPrice => "model_price",
            TargetType::ProviderCredential => "provider_credential",
            TargetType::Session => "session",
            TargetType::Task => "task",
            TargetType::Tenant => "tenant",
            TargetType::Tool => "tool",
            TargetType::User => "user",
            TargetType::Webhook => "webhook",
        }
    }
}

/// The object an audited operation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub target_type: TargetType,
    pub id: Uuid,
}

impl Target {
    pub fn new(target_type: TargetType, id: Uuid) -> Self {
        Self { target_type, id }
    }
}

/// Conditions a listed row must meet. Every condition that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_user_id: Option<Uuid>,
    /// A name from [`Action::as_str`], such as `agent.create`.
    pub action: Option<String>,
    pub target_id: Option<Uuid>,
    /// Rows created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Rows created before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Inserts the audit row of an operation by the request's caller in the caller's tenant.
/// Call it on the transaction that makes the change.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    action: Action,
    target: Target,
    summary: Value,
) -> ServiceResult<()> {
    entry(ctx, action, target, summary).insert(db).await?;
    Ok(())
}

/// Inserts the audit row of an operation by `user_id` in `tenant_id` that the request's
/// context does not describe: a user who just registered or accepted an invitation, or a
/// platform administrator acting on another tenant.
pub async fn record_as_user<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    user_id: Uuid,
    origin: &RequestOrigin,
    action: Action,
    target: Target,
    summary: Value,
) -> ServiceResult<()> {
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant_id),
        actor_type: Set(ActorType::User),
        actor_user_id: Set(Some(user_id)),
        actor_api_key_id: Set(None),
        action: Set(action.as_str().to_owned()),
        target_type: Set(target.target_type.as_str().to_owned()),
        target_id: Set(target.id),
        request_id: Set(non_empty(&origin.request_id)),
        ip_address: Set(origin.client_ip.map(|ip| ip.to_string())),
        summary: Set(summary),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Builds the audit row of an operation by the request's caller, for callers that insert
/// it as part of a larger statement.
pub(crate) fn entry(
    ctx: &RequestContext,
    action: Action,
    target: Target,
    summary: Value,
) -> audit_log::ActiveModel {
    let actor_type = match ctx.api_key_id {
        Some(_) => ActorType::ApiKey,
        None => ActorType::User,
    };
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        actor_type: Set(actor_type),
        actor_user_id: Set(Some(ctx.user_id)),
        actor_api_key_id: Set(ctx.api_key_id),
        action: Set(action.as_str().to_owned()),
        target_type: Set(target.target_type.as_str().to_owned()),
        target_id: Set(target.id),
        request_id: Set(non_empty(&ctx.request_id)),
        ip_address: Set(ctx.client_ip.map(|ip| ip.to_string())),
        summary: Set(summary),
        created_at: Set(Utc::now()),
    }
}

/// Returns the request id to store: `None` for a request without one.
fn non_empty(request_id: &str) -> Option<String> {
    (!request_id.is_empty()).then(|| request_id.to_owned())
}

/// Returns the API names (camelCase) of the columns that `after` sets to a value other than
/// the one in `before`, leaving out `updated_at`.
pub fn changed_fields<A>(before: &<A::Entity as EntityTrait>::Model, after: &A) -> Vec<String>
where
    A: ActiveModelTrait,
{
    <A::Entity as EntityTrait>::Column::iter()
        .filter(|column| column.as_str() != "updated_at")
        .filter(|column| match after.get(*column) {
            ActiveValue::Set(value) => value != before.get(*column),
            ActiveValue::Unchanged(_) | ActiveValue::NotSet => false,
        })
        .map(|column| camel_case(column.as_str()))
        .collect()
}

fn camel_case(snake: &str) -> String {
    let mut words = snake.split('_');
    let mut name = words.next().unwrap_or_default().to_owned();
    for word in words {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

/// Lists the caller's tenant audit rows that match `filter`, newest first. Needs the admin
/// role.
pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    filter: &AuditFilter,
    page: &PageRequest,
) -> ServiceResult<Page<audit_log::Model>> {
    ctx.require(Role::Admin)?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(ServiceError::invalid(
            "filter.to",
            "must be later than filter.from",
        ));
    }

    let mut select = audit_log::Entity::find().filter(audit_log::Column::TenantId.eq(ctx.tenant()));
    if let Some(name) = &filter.action {
        let action = Action::from_name(name).ok_or_else(|| {
            ServiceError::invalid(
                "filter.action",
                format!("{name:?} is not an audited action, such as \"agent.create\""),
            )
        })?;
        select = select.filter(audit_log::Column::Action.eq(action.as_str()));
    }
    if let Some(user_id) = filter.actor_user_id {
        select = select.filter(audit_log::Column::ActorUserId.eq(user_id));
    }
    if let Some(target_id) = filter.target_id {
        select = select.filter(audit_log::Column::TargetId.eq(target_id));
    }
    if let Some(from) = filter.from {
        select = select.filter(audit_log::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(audit_log::Column::CreatedAt.lt(to));
    }
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        select,
        audit_log::Column::Id,
        Order::NewestFirst,
        page,
        |row| row.id,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.as_str()), Some(action));
        }
        assert_eq!(Action::from_name("agent.created"), None);
    }

    #[test]
    fn camel_case_joins_words() {
        assert_eq!(camel_case("max_tokens"), "maxTokens");
        assert_eq!(camel_case("fallback_provider"), "fallbackProvider");
        assert_eq!(camel_case("title"), "title");
    }

    #[test]
    fn changed_fields_ignores_equal_values() {
        let now = Utc::now();
        let before = entity::task::Model {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            title: "Write".into(),
            description: None,
            status: entity::TaskStatus::Todo,
            priority: entity::TaskPriority::Medium,
            due_at: None,
            assignee_id: None,
            created_by: None,
            created_at: now,
            updated_at: now,
        };
        let mut after: entity::task::ActiveModel = before.clone().into();
        after.title = Set("Write".into());
        after.status = Set(entity::TaskStatus::Done);
        after.due_at = Set(Some(now));
        after.updated_at = Set(Utc::now());

        assert_eq!(changed_fields(&before, &after), ["status", "dueAt"]);
    }
}
