//! Entity for `tool_executions`: one tool call of an agent run or of a chat reply, written as
//! started before the tool runs and completed with its result or error.

use sea_orm::entity::prelude::*;

use crate::enums::ToolExecutionStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tool_executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The agent run that made the call; exactly one of `run_id` and `message_id` is set.
    pub run_id: Option<Uuid>,
    /// The chat reply whose generation made the call.
    pub message_id: Option<Uuid>,
    /// The step whose model call asked for this call.
    pub step: i32,
    /// The call's id as the model gave it; unique within the step.
    #[sea_orm(column_type = "Text")]
    pub call_id: String,
    #[sea_orm(column_type = "Text")]
    pub tool_name: String,
    /// The tenant tool called, or `None` for a built-in tool or a deleted one.
    pub tool_id: Option<Uuid>,
    pub arguments: Json,
    pub status: ToolExecutionStatus,
    /// The result sent to the model.
    #[sea_orm(column_type = "Text", nullable)]
    pub result: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::agent_run::Entity",
        from = "Column::RunId",
        to = "super::agent_run::Column::Id",
        on_delete = "Cascade"
    )]
    Run,
    #[sea_orm(
        belongs_to = "super::message::Entity",
        from = "Column::MessageId",
        to = "super::message::Column::Id",
        on_delete = "Cascade"
    )]
    Message,
}

impl Related<super::agent_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Run.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
