//! The GraphQL schema: one query, mutation and subscription object per domain, merged.

pub mod agents;
pub mod auth;
pub mod chat;
pub mod connection;
pub mod context;
pub mod conversations;
pub mod credentials;
pub mod error;
pub mod loaders;
pub mod prices;
pub mod provider_health;
pub mod scalars;
pub mod tasks;
pub mod usage;

use async_graphql::{MergedObject, MergedSubscription, Schema};
use service::Platform;

/// Maximum depth of a query, so that nested relation fields cannot fan out without bound.
const MAX_QUERY_DEPTH: usize = 12;
/// Maximum complexity (fields counted across the query).
const MAX_QUERY_COMPLEXITY: usize = 500;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    auth::AuthQuery,
    agents::AgentQuery,
    conversations::ConversationQuery,
    credentials::CredentialQuery,
    prices::PriceQuery,
    provider_health::ProviderHealthQuery,
    tasks::TaskQuery,
    usage::UsageQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    auth::AuthMutation,
    agents::AgentMutation,
    conversations::ConversationMutation,
    chat::ChatMutation,
    credentials::CredentialMutation,
    prices::PriceMutation,
    tasks::TaskMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(chat::ChatSubscription);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with the platform handles available to every resolver.
pub fn build_schema(platform: Platform) -> AppSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .data(platform)
    .limit_depth(MAX_QUERY_DEPTH)
    .limit_complexity(MAX_QUERY_COMPLEXITY)
    .finish()
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
