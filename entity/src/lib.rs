//! SeaORM entities for the Task Assistant database: one module per table, no business logic.
//!
//! The schema itself comes from the `migration` crate. Primary keys are UUIDs that the
//! application generates as UUIDv7, timestamps are UTC, and token counts and micro-dollar
//! amounts are `i64`.

pub mod agent;
pub mod agent_run;
pub mod agent_run_step;
pub mod api_key;
pub mod audit_log;
pub mod conversation;
pub mod enums;
pub mod invitation;
pub mod membership;
pub mod message;
pub mod model_price;
pub mod prelude;
pub mod provider_credential;
pub mod provider_health;
pub mod session;
pub mod task;
pub mod tenant;
pub mod tenant_plan;
pub mod tenant_setting;
pub mod tool;
pub mod tool_execution;
pub mod usage_counter;
pub mod usage_record;
pub mod user;
pub mod webhook;
pub mod webhook_delivery;
pub mod webhook_event;
pub mod webhook_message;

pub use enums::{
    AgentRunStatus, FinishReason, MessageRole, MessageStatus, PlanKind, ResponseCacheLookup, Role,
    TaskPriority, TaskStatus, TenantStatus, ToolExecutionStatus,
};
