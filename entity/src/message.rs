//! Entity for `messages`: one turn of a conversation, including replies still being generated.

use sea_orm::entity::prelude::*;

use crate::enums::{FinishReason, MessageRole, MessageStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub role: MessageRole,
    /// Message text. For a reply in state `streaming`, it is the text stored so far.
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub status: MessageStatus,
    /// Reason that generation ended, or `None` while streaming and for messages not generated.
    pub finish_reason: Option<FinishReason>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    /// Cost of generating the reply, in micro-dollars.
    pub cost_micros: Option<i64>,
    /// True when the token counts were estimated from the text because the provider sent none.
    pub usage_estimated: bool,
    /// Error shown to the user when generation failed.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
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
        belongs_to = "super::conversation::Entity",
        from = "Column::ConversationId",
        to = "super::conversation::Column::Id",
        on_delete = "Cascade"
    )]
    Conversation,
    #[sea_orm(has_many = "super::usage_record::Entity")]
    UsageRecords,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

impl Related<super::conversation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Conversation.def()
    }
}

impl Related<super::usage_record::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UsageRecords.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
