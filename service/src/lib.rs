//! The domain of Task Assistant: authentication, tenancy, agents, conversations, chat,
//! tasks, usage, provider credentials and job payloads. Used by the api and the worker; no
//! HTTP or GraphQL here.

pub mod admin;
pub mod agent_runs;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod config;
pub mod context;
pub mod conversations;
pub mod credentials;
pub mod crypto;
pub mod database;
pub mod error;
pub mod error_tracking;
pub mod gcra;
pub mod health;
pub mod jobs;
pub mod live;
pub mod local_limits;
pub mod logging;
pub mod maintenance;
pub mod members;
pub mod metrics;
pub mod pagination;
pub mod plans;
pub mod platform;
pub mod prices;
pub mod provider_health;
pub mod quota;
pub mod redis_conn;
pub mod secret;
pub(crate) mod subscription;
pub mod tasks;
pub mod tenant_settings;
pub mod tools;
pub mod usage;
pub mod validation;
pub mod webhooks;

pub use config::Settings;
pub use context::{RequestContext, RequestOrigin, TenantId};
pub use error::{ServiceError, ServiceResult};
pub use platform::Platform;
pub use secret::Secret;
