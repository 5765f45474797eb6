//! Entity for `agent_run_steps`: one completed model call of an agent run, with the tool
//! calls it asked for and its usage.

use sea_orm::entity::prelude::*;

use crate::enums::FinishReason;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_run_steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub run_id: Uuid,
    /// Position of the step in its run, starting at 1.
    pub step: i32,
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    #[sea_orm(column_type = "Text")]
    pub model: String,
    /// Text the model produced in this step.
    #[sea_orm(column_type = "Text")]
    pub text: String,
    /// Tool calls the model asked for, as a JSON array of `{id, name, arguments}`.
    pub tool_calls: Json,
    pub finish_reason: Option<FinishReason>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Cost in micro-dollars, or `None` when the model's price is unknown.
    pub cost_micros: Option<i64>,
    pub usage_estimated: bool,
    pub started_at: DateTimeUtc,
    pub finished_at: DateTimeUtc,
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
}

impl Related<super::agent_run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Run.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
