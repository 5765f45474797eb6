//! Entity for `agent_runs`: one background execution of an agent on a prompt, with the
//! agent's configuration copied at creation and the totals of its steps.

use sea_orm::entity::prelude::*;

use crate::enums::AgentRunStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The agent run, set to `None` when the agent is deleted.
    pub agent_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    /// The API key the run was started with; its model calls count against the key's
    /// per-minute limits.
    pub api_key_id: Option<Uuid>,
    /// Id of the request that created the run, for logs and error reports.
    #[sea_orm(column_type = "Text", nullable)]
    pub request_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub prompt: String,
    pub status: AgentRunStatus,
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    #[sea_orm(column_type = "Text")]
    pub model: String,
    #[sea_orm(column_type = "Text")]
    pub instructions: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i32>,
    /// Names of the tools the run may call, as a JSON array of strings.
    pub tools: Json,
    pub max_steps: i32,
    pub timeout_seconds: i32,
    /// The final output of a run that succeeded.
    #[sea_orm(column_type = "Text", nullable)]
    pub output: Option<String>,
    /// The reason a run failed or was cancelled.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Model calls completed so far.
    pub steps: i32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
    /// Times a worker took the run; more than one means it was resumed.
    pub attempts: i32,
    pub cancel_requested_at: Option<DateTimeUtc>,
    /// The worker holding the run, until `lease_expires_at`.
    pub lease_owner: Option<Uuid>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_delete = "Cascade"
    )]
    Tenant,
    #[sea_orm(
        belongs_to = "super::agent::Entity",
        from = "Column::AgentId",
        to = "super::agent::Column::Id",
        on_delete = "SetNull"
    )]
    Agent,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::agent::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Agent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
