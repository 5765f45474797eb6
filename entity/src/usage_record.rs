//! Entity for `usage_records`: tokens and cost of one provider call, kept for billing.
//!
//! Deleting the user, agent, conversation or message that a record points to sets that
//! reference to `None`, so the billing history stays whole.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    /// The agent run whose step caused the usage.
    pub agent_run_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub provider: String,
    #[sea_orm(column_type = "Text")]
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Input tokens that the provider served from its prompt cache, a subset of `input_tokens`.
    pub cached_input_tokens: i64,
    /// Cost in micro-dollars; 0 when `price_known` is false.
    pub cost_micros: i64,
    /// False when the model is missing from the price table, so the cost is unknown.
    pub price_known: bool,
    /// True when the token counts were estimated from the text because the provider sent none.
    pub estimated: bool,
    /// Outcome of the reply's response cache lookup, or `None` when the reply made none. A
    /// reply's lookup is marked on its first usage record only, so hits divided by marked
    /// records is the hit rate.
    pub response_cache: Option<crate::ResponseCacheLookup>,
    pub created_at: DateTimeUtc,
    /// Time the record was added to its `usage_counters` row, or `None` while it is pending.
    pub counted_at: Option<DateTimeUtc>,
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
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::agent::Entity",
        from = "Column::AgentId",
        to = "super::agent::Column::Id",
        on_delete = "SetNull"
    )]
    Agent,
    #[sea_orm(
        belongs_to = "super::conversation::Entity",
        from = "Column::ConversationId",
        to = "super::conversation::Column::Id",
        on_delete = "SetNull"
    )]
    Conversation,
    #[sea_orm(
        belongs_to = "super::message::Entity",
        from = "Column::MessageId",
        to = "super::message::Column::Id",
        on_delete = "SetNull"
    )]
    Message,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::agent::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Agent.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl Related<super::message::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Message.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
