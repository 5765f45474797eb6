//! The GraphQL schema: one query, mutation and subscription object per domain, merged.

pub mod access;
pub mod admin;
pub mod agent_runs;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod connection;
pub mod context;
pub mod conversations;
pub mod credentials;
pub mod document;
pub mod error;
pub mod error_report;
pub mod execution;
pub mod health;
pub mod input_errors;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod members;
pub mod metrics;
pub mod prices;
pub mod provider_health;
pub mod rate_headers;
pub mod scalars;
pub mod sign_in_guard;
pub mod tasks;
pub mod tenant_settings;
pub mod tools;
pub mod usage;
pub mod webhooks;

use std::num::NonZeroU32;

use async_graphql::{MergedObject, MergedSubscription, Schema};
use service::Platform;

use crate::throttle::SignInThrottle;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    auth::AuthQuery,
    admin::AdminQuery,
    agents::AgentQuery,
    agent_runs::AgentRunQuery,
    api_keys::ApiKeyQuery,
    audit::AuditQuery,
    conversations::ConversationQuery,
    credentials::CredentialQuery,
    health::HealthQuery,
    members::MemberQuery,
    prices::PriceQuery,
    provider_health::ProviderHealthQuery,
    tasks::TaskQuery,
    tenant_settings::TenantSettingsQuery,
    tools::ToolQuery,
    usage::UsageQuery,
    webhooks::WebhookQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    auth::AuthMutation,
    admin::AdminMutation,
    agents::AgentMutation,
    agent_runs::AgentRunMutation,
    api_keys::ApiKeyMutation,
    conversations::ConversationMutation,
    chat::ChatMutation,
    credentials::CredentialMutation,
    members::MemberMutation,
    prices::PriceMutation,
    tasks::TaskMutation,
    tenant_settings::TenantSettingsMutation,
    tools::ToolMutation,
    webhooks::WebhookMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    chat::ChatSubscription,
    agent_runs::AgentRunSubscription,
    live::LiveSubscription,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with the platform handles available to every resolver, and the
/// operation limits, sign-in throttle and introspection switches of the settings.
pub fn build_schema(platform: Platform) -> AppSchema {
    let settings = &platform.settings;
    let graphql = settings.graphql.clone();
    let throttle = SignInThrottle::new(
        NonZeroU32::new(settings.login_attempts_per_ip_per_minute).unwrap_or(NonZeroU32::MIN),
        NonZeroU32::new(settings.login_attempts_per_email_per_minute).unwrap_or(NonZeroU32::MIN),
    );
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .data(platform)
    .extension(metrics::OperationMetrics)
    // Inside the metrics, so that they count the labelled codes.
    .extension(input_errors::InputErrors)
    .extension(access::AccessControl)
    // The limits run before the sign-in guard, which expands fragments and so relies on
    // the field limit, and so that an oversized request costs no sign-in attempt.
    .extension(limits::QueryLimits::new(graphql.clone()))
    .extension(sign_in_guard::SignInGuard::new(throttle))
    .extension(execution::ExecutionMarker)
    .extension(metrics::OperationType)
    .limit_recursive_depth(limits::MAX_NESTING);
    if service::error_tracking::enabled() {
        builder = builder.extension(error_report::ErrorReport);
    }
    if !graphql.introspection {
        builder = builder.disable_introspection();
    }
    if !graphql.field_suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}
