//! The access table: for every query, mutation and subscription, who may call it, enforced
//! before any resolver runs.
//!
//! [`AccessControl`] reads the root fields of the operation being executed, following
//! fragments, and rejects the whole request when the caller may not use one of them: anonymous
//! callers get UNAUTHENTICATED and members below the required role get FORBIDDEN. A test
//! lists every operation of the schema by introspection and fails on any that the table
//! lacks. Services check roles again, because the worker and other callers reach them
//! without this table.

use std::sync::Arc;

use async_graphql::{
    Pos, Request, ServerError, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    },
    parser::types::{ExecutableDocument, OperationType},
};
use entity::Role;
use service::{ServiceError, context::role_at_least};

use super::{
    context::Caller,
    document::{OperationName, root_fields, selected_operation},
    error::to_graphql_error,
};

/// The callers an operation is open to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without credentials.
    Public,
    /// A caller signed in to a tenant with this role or a higher one.
    Role(Role),
    /// A platform administrator, whatever their role in their own tenant. The table lets
    /// every signed-in caller through; the service checks the administrator list, which
    /// needs a database read.
    PlatformAdmin,
}

const VIEWER: Access = Access::Role(Role::Viewer);
const MEMBER: Access = Access::Role(Role::Member);
const ADMIN: Access = Access::Role(Role::Admin);
const PLATFORM_ADMIN: Access = Access::PlatformAdmin;

/// Queries and the lowest access that may call them.
pub const QUERIES: &[(&str, Access)] = &[
    ("me", VIEWER),
    ("plan", VIEWER),
    ("tenants", PLATFORM_ADMIN),
    ("agent", VIEWER),
    ("agents", VIEWER),
    ("agentRun", VIEWER),
    ("agentRuns", VIEWER),
    ("agentStats", VIEWER),
    ("tool", VIEWER),
    ("tools", VIEWER),
    ("builtinTools", VIEWER),
    ("apiKeys", VIEWER),
    ("auditLogs", ADMIN),
    ("conversation", VIEWER),
    ("conversations", VIEWER),
    ("message", VIEWER),
    ("providerCredentials", MEMBER),
    ("members", VIEWER),
    ("invitations", ADMIN),
    ("mySessions", VIEWER),
    ("myTenants", VIEWER),
    ("modelPrices", MEMBER),
    ("modelPrice", MEMBER),
    ("providerHealth", MEMBER),
    ("health", ADMIN),
    ("task", VIEWER),
    ("tasks", VIEWER),
    ("tenantSettings", VIEWER),
    ("usage", VIEWER),
    ("spend", VIEWER),
    ("responseCacheStats", VIEWER),
    ("usageRecords", VIEWER),
    ("webhooks", ADMIN),
    ("webhook", ADMIN),
];

/// Mutations and the lowest access that may call them.
pub const MUTATIONS: &[(&str, Access)] = &[
    ("register", Access::Public),
    ("login", Access::Public),
    ("refreshToken", Access::Public),
    ("acceptInvitation", Access::Public),
    ("logout", VIEWER),
    ("revokeSession", VIEWER),
    ("changePassword", VIEWER),
    ("switchTenant", VIEWER),
    ("leaveTenant", VIEWER),
    ("createApiKey", VIEWER),
    ("revokeApiKey", VIEWER),
    ("createAgent", MEMBER),
    ("updateAgent", MEMBER),
    ("deleteAgent", MEMBER),
    ("executeAgent", MEMBER),
    ("cancelAgentRun", MEMBER),
    ("createTool", MEMBER),
    ("updateTool", MEMBER),
    ("deleteTool", MEMBER),
    ("createConversation", MEMBER),
    ("renameConversation", MEMBER),
    ("deleteConversation", MEMBER),
    ("sendMessage", MEMBER),
    ("stopGeneration", MEMBER),
    ("createTask", MEMBER),
    ("updateTask", MEMBER),
    ("deleteTask", MEMBER),
    ("setProviderCredential", ADMIN),
    ("deleteProviderCredential", ADMIN),
    ("inviteMember", ADMIN),
    ("revokeInvitation", ADMIN),
    ("changeMemberRole", ADMIN),
    ("removeMember", ADMIN),
    ("setModelPrice", ADMIN),
    ("deleteModelPrice", ADMIN),
    ("updateTenantSettings", ADMIN),
    ("createWebhook", ADMIN),
    ("updateWebhook", ADMIN),
    ("deleteWebhook", ADMIN),
    ("rotateWebhookSecret", ADMIN),
    ("testWebhook", ADMIN),
    ("redeliverWebhookMessage", ADMIN),
    ("setTenantPlan", PLATFORM_ADMIN),
    ("suspendTenant", PLATFORM_ADMIN),
    ("reactivateTenant", PLATFORM_ADMIN),
];

/// Subscriptions and the lowest access that may call them.
pub const SUBSCRIPTIONS: &[(&str, Access)] = &[
    ("messageStream", VIEWER),
    ("agentRunEvents", VIEWER),
    ("tenantEvents", VIEWER),
];

/// Returns the access of a root field, or `None` when the table lacks it. Introspection
/// fields are public.
pub fn access_of(operation: OperationType, field: &str) -> Option<Access> {
    if matches!(field, "__typename" | "__schema" | "__type") {
        return Some(Access::Public);
    }
    let table = match operation {
        OperationType::Query => QUERIES,
        OperationType::Mutation => MUTATIONS,
        OperationType::Subscription => SUBSCRIPTIONS,
    };
    table
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, access)| *access)
}

/// Schema extension that enforces the access table on every request.
pub struct AccessControl;

impl ExtensionFactory for AccessControl {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AccessControlExtension::default())
    }
}

#[derive(Default)]
struct AccessControlExtension {
    operation_name: OperationName,
}

#[async_trait::async_trait]
impl Extension for AccessControlExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.operation_name.remember(&request);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operation_name = self.operation_name.get();
        // An unknown operation name is left to the executor, which reports it.
        let Some(operation) = selected_operation(&document, operation_name.as_deref()) else {
            return Ok(document);
        };

        let caller = ctx.data_opt::<Caller>().unwrap_or(&Caller::Anonymous);
        let operation_type = operation.node.ty;
        for field in root_fields(&document, &operation.node) {
            check(caller, operation_type, &field.node.name.node, field.pos)?;
        }
        Ok(document)
    }
}

fn check(
    caller: &Caller,
    operation_type: OperationType,
    field: &str,
    pos: Pos,
) -> ServerResult<()> {
    // A field the schema lacks is left to validation, which names it. A field of the schema
    // that the table lacks fails the access table test.
    let Some(access) = access_of(operation_type, field) else {
        return Ok(());
    };
    let minimum = match access {
        Access::Public => return Ok(()),
        Access::Role(minimum) => minimum,
        Access::PlatformAdmin => Role::Viewer,
    };
    match caller {
        Caller::Authenticated(ctx) if role_at_least(ctx.role, minimum) => Ok(()),
        Caller::Authenticated(ctx) => {
            let needed = service::context::role_name(minimum);
            let message = match ctx.api_key_id {
                // A key's role comes from its scopes, capped by its creator's role.
                Some(_) => format!(
                    "`{field}` needs the {needed} role or higher, and this API key acts as \
                     {}: use a key with a wider scope (READ is viewer, WRITE member, ADMIN \
                     admin) created by a member with that role",
                    service::context::role_name(ctx.role)
                ),
                None => format!("`{field}` needs the {needed} role or higher"),
            };
            Err(denied(ServiceError::Forbidden(message), pos))
        }
        Caller::Rejected(rejection) => Err(denied(rejection.to_service_error(), pos)),
        Caller::Anonymous => Err(denied(
            ServiceError::Unauthenticated(format!(
                "`{field}` needs a signed-in caller: send Authorization: Bearer <access token>"
            )),
            pos,
        )),
    }
}

fn denied(error: ServiceError, pos: Pos) -> ServerError {
    to_graphql_error(error).into_server_error(pos)
}
