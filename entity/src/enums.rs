//! Enumerations stored as `text` columns, each matching the CHECK constraint on its column.
//!
//! The stored strings are part of the schema, so renaming one needs a migration that rewrites
//! the existing rows and the CHECK constraint.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Role of a user inside one tenant, from most to least privileged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[sea_orm(string_value = "owner")]
    Owner,
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "member")]
    Member,
    #[sea_orm(string_value = "viewer")]
    Viewer,
}

/// Account state of a tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "suspended")]
    Suspended,
}

/// Billing plan of a tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    #[sea_orm(string_value = "free")]
    Free,
    #[sea_orm(string_value = "pro")]
    Pro,
    #[sea_orm(string_value = "enterprise")]
    Enterprise,
    #[sea_orm(string_value = "custom")]
    Custom,
}

/// Author of a chat message, as the provider APIs name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    #[sea_orm(string_value = "system")]
    System,
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "assistant")]
    Assistant,
}

/// Lifecycle state of a chat message.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// The reply is still being generated.
    #[sea_orm(string_value = "streaming")]
    Streaming,
    #[sea_orm(string_value = "completed")]
    Completed,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The process generating the reply stopped before the stream ended.
    #[sea_orm(string_value = "interrupted")]
    Interrupted,
}

/// Reason a generation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its reply.
    #[sea_orm(string_value = "stop")]
    Stop,
    /// The reply reached the maximum number of output tokens.
    #[sea_orm(string_value = "length")]
    Length,
    #[sea_orm(string_value = "tool_calls")]
    ToolCalls,
    #[sea_orm(string_value = "content_filter")]
    ContentFilter,
    /// The user stopped the generation.
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "error")]
    Error,
    /// The provider reported a reason that none of the other variants covers.
    #[sea_orm(string_value = "other")]
    Other,
}

/// Progress of a to-do task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    #[sea_orm(string_value = "todo")]
    Todo,
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

/// Urgency of a to-do task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    #[sea_orm(string_value = "low")]
    Low,
    #[sea_orm(string_value = "medium")]
    Medium,
    #[sea_orm(string_value = "high")]
    High,
    #[sea_orm(string_value = "urgent")]
    Urgent,
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    /// Collects the stored string of every variant of `E`.
    fn stored_values<E: ActiveEnum<Value = String> + Iterable>() -> Vec<String> {
        E::iter().map(|variant| variant.to_value()).collect()
    }

    #[test]
    fn stored_strings_match_schema() {
        assert_eq!(
            stored_values::<Role>(),
            ["owner", "admin", "member", "viewer"]
        );
        assert_eq!(stored_values::<TenantStatus>(), ["active", "suspended"]);
        assert_eq!(
            stored_values::<PlanKind>(),
            ["free", "pro", "enterprise", "custom"]
        );
        assert_eq!(
            stored_values::<MessageRole>(),
            ["system", "user", "assistant"]
        );
        assert_eq!(
            stored_values::<MessageStatus>(),
            ["streaming", "completed", "failed", "interrupted"]
        );
        assert_eq!(
            stored_values::<FinishReason>(),
            [
                "stop",
                "length",
                "tool_calls",
                "content_filter",
                "cancelled",
                "error",
                "other"
            ]
        );
        assert_eq!(
            stored_values::<TaskStatus>(),
            ["todo", "in_progress", "done", "cancelled"]
        );
        assert_eq!(
            stored_values::<TaskPriority>(),
            ["low", "medium", "high", "urgent"]
        );
    }

    #[test]
    fn serde_uses_stored_strings() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::to_string(&FinishReason::ToolCalls)?,
            r#""tool_calls""#
        );
        assert_eq!(
            serde_json::to_string(&TaskStatus::InProgress)?,
            r#""in_progress""#
        );
        assert_eq!(serde_json::from_str::<Role>(r#""viewer""#)?, Role::Viewer);
        Ok(())
    }

    #[test]
    fn unknown_stored_string_is_rejected() {
        let result = TaskPriority::try_from_value(&"critical".to_owned());

        assert!(result.is_err());
    }
}

/// Lifecycle state of an agent run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum AgentRunStatus {
    /// Created and waiting for a worker.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// A worker holds the run's lease and is working on it.
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl AgentRunStatus {
    /// Whether the run has ended and will not change again.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Outcome of one tool call.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum ToolExecutionStatus {
    /// Written before the tool runs; still in this state, it means the call is under way or
    /// its process died.
    #[sea_orm(string_value = "started")]
    Started,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// The tool ran and failed, or its arguments were rejected before it ran.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The process running the call died before recording its outcome, so the call may or
    /// may not have taken effect. It is not run again.
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

/// Outcome of a reply's lookup in the response cache.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum ResponseCacheLookup {
    /// The reply was served from the cache without a provider call.
    #[sea_orm(string_value = "hit")]
    Hit,
    /// The cache had no reply for the request, so the provider was called.
    #[sea_orm(string_value = "miss")]
    Miss,
}
