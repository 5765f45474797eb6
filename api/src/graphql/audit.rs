//! The audit log: the tenant's state-changing operations, for admins and owners.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_log::{self, ActorType};
use service::audit;

use super::{
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::GqlResult,
};

/// Kind of actor behind an audited change.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AuditActorType {
    /// A signed-in user.
    User,
    /// An API key, acting for the member who created it.
    ApiKey,
    /// The platform itself, such as a background job.
    System,
}

impl From<ActorType> for AuditActorType {
    fn from(actor_type: ActorType) -> Self {
        match actor_type {
            ActorType::User => AuditActorType::User,
            ActorType::ApiKey => AuditActorType::ApiKey,
            ActorType::System => AuditActorType::System,
        }
    }
}

/// One state-changing operation in the tenant: who made it, on which object, from which
/// request, and when.
#[derive(SimpleObject)]
pub struct AuditLog {
    pub id: ID,
    pub actor_type: AuditActorType,
    /// The user who made the change or created the API key that made it, or null for the
    /// platform. The id stays after the user is deleted.
    pub actor_user_id: Option<ID>,
    /// The API key the change was made with, if any.
    pub actor_api_key_id: Option<ID>,
    /// Dotted name of the operation, such as `agent.create` or `member.role_change`.
    pub action: String,
    /// Kind of object changed, such as `agent`, `member` (identified by the user id) or
    /// `provider_credential`.
    pub target_type: String,
    pub target_id: ID,
    /// The `x-request-id` of the request. It is null for registration and for accepting an
    /// invitation without signing in.
    pub request_id: Option<String>,
    /// The client's IP address, when known.
    pub ip_address: Option<String>,
    /// A JSON object describing the change: names, roles, ids and the names of changed
    /// fields. It never contains keys, passwords, tokens or message content.
    pub summary: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<audit_log::Model> for AuditLog {
    fn from(row: audit_log::Model) -> Self {
        Self {
            id: row.id.into(),
            actor_type: row.actor_type.into(),
            actor_user_id: row.actor_user_id.map(Into::into),
            actor_api_key_id: row.actor_api_key_id.map(Into::into),
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id.into(),
            request_id: row.request_id,
            ip_address: row.ip_address,
            summary: Json(row.summary),
            created_at: row.created_at,
        }
    }
}

/// Conditions a listed audit row must meet. Every condition that is set must hold.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Only changes by this user, with or without an API key.
    pub actor_user_id: Option<ID>,
    /// Only this operation, such as `agent.create`.
    pub action: Option<String>,
    /// Only changes to the object with this id.
    pub target_id: Option<ID>,
    /// Only changes made at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only changes made before this time.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The tenant's audit log, newest first, optionally filtered. Needs the admin role.
    async fn audit_logs(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<AuditLog>> {
        let filter = filter.unwrap_or_default();
        let actor_user_id = match &filter.actor_user_id {
            Some(id) => Some(parse_id("filter.actorUserId", id)?),
            None => None,
        };
        let target_id = match &filter.target_id {
            Some(id) => Some(parse_id("filter.targetId", id)?),
            None => None,
        };
        let filter = audit::AuditFilter {
            actor_user_id,
            action: filter.action,
            target_id,
            from: filter.from,
            to: filter.to,
        };
        let request = page_request(first, after);
        let page = audit::list(platform(ctx), caller(ctx)?, &filter, &request)
            .await
            .gql()?;
        Ok(to_connection(page, AuditLog::from))
    }
}
