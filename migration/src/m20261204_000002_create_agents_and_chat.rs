//! Creates the chat tables: agents, conversations and their messages.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, foreign_key, index, one_of, tenant_foreign_key};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(agents()).await?;
        manager
            .create_index(index(Agents::Table, [Agents::TenantId, Agents::Id]))
            .await?;
        manager
            .create_index(index(Agents::Table, [Agents::CreatedBy]))
            .await?;

        manager.create_table(conversations()).await?;
        manager
            .create_index(index(
                Conversations::Table,
                [
                    Conversations::TenantId,
                    Conversations::UserId,
                    Conversations::Id,
                ],
            ))
            .await?;
        manager
            .create_index(index(Conversations::Table, [Conversations::UserId]))
            .await?;
        manager
            .create_index(index(Conversations::Table, [Conversations::AgentId]))
            .await?;

        manager.create_table(messages()).await?;
        manager
            .create_index(index(
                Messages::Table,
                [Messages::ConversationId, Messages::Id],
            ))
            .await?;
        manager
            .create_index(index(Messages::Table, [Messages::TenantId]))
            .await?;
        // The sweep that closes replies left `streaming` by a crashed process reads only these.
        manager
            .create_index(
                index(Messages::Table, [Messages::CreatedAt])
                    .name("messages_created_at_streaming_idx")
                    .and_where(Expr::col(Messages::Status).eq("streaming"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                Messages::Table.into_iden(),
                Conversations::Table.into_iden(),
                Agents::Table.into_iden(),
            ],
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    Instructions,
    Provider,
    Model,
    Temperature,
    MaxTokens,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversations {
    Table,
    Id,
    TenantId,
    UserId,
    AgentId,
    Title,
    Provider,
    Model,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Id,
    TenantId,
    ConversationId,
    Role,
    Content,
    Status,
    FinishReason,
    InputTokens,
    OutputTokens,
    CostMicros,
    UsageEstimated,
    Error,
    CreatedAt,
    CompletedAt,
}

fn agents() -> TableCreateStatement {
    Table::create()
        .table(Agents::Table)
        .col(pk_uuid(Agents::Id))
        .col(uuid(Agents::TenantId))
        .col(text(Agents::Name))
        .col(text_null(Agents::Description))
        .col(text(Agents::Instructions))
        .col(text(Agents::Provider))
        .col(text(Agents::Model))
        .col(double_null(Agents::Temperature))
        .col(integer_null(Agents::MaxTokens))
        .col(uuid_null(Agents::CreatedBy))
        .col(timestamp_with_time_zone(Agents::CreatedAt))
        .col(timestamp_with_time_zone(Agents::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(Agents::Table))
        .foreign_key(&mut foreign_key(
            Agents::Table,
            Agents::CreatedBy,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .to_owned()
}

fn conversations() -> TableCreateStatement {
    Table::create()
        .table(Conversations::Table)
        .col(pk_uuid(Conversations::Id))
        .col(uuid(Conversations::TenantId))
        .col(uuid_null(Conversations::UserId))
        .col(uuid_null(Conversations::AgentId))
        .col(text(Conversations::Title))
        .col(text(Conversations::Provider))
        .col(text(Conversations::Model))
        .col(timestamp_with_time_zone(Conversations::CreatedAt))
        .col(timestamp_with_time_zone(Conversations::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(Conversations::Table))
        .foreign_key(&mut foreign_key(
            Conversations::Table,
            Conversations::UserId,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            Conversations::Table,
            Conversations::AgentId,
            Agents::Table,
            ForeignKeyAction::SetNull,
        ))
        .to_owned()
}

fn messages() -> TableCreateStatement {
    Table::create()
        .table(Messages::Table)
        .col(pk_uuid(Messages::Id))
        .col(uuid(Messages::TenantId))
        .col(uuid(Messages::ConversationId))
        .col(text(Messages::Role).check(one_of(
            Messages::Table,
            Messages::Role,
            &["system", "user", "assistant"],
        )))
        .col(text(Messages::Content))
        .col(text(Messages::Status).check(one_of(
            Messages::Table,
            Messages::Status,
            &["streaming", "completed", "failed", "interrupted"],
        )))
        .col(text_null(Messages::FinishReason).check(one_of(
            Messages::Table,
            Messages::FinishReason,
            &[
                "stop",
                "length",
                "tool_calls",
                "content_filter",
                "cancelled",
                "error",
                "other",
            ],
        )))
        .col(big_integer_null(Messages::InputTokens))
        .col(big_integer_null(Messages::OutputTokens))
        .col(big_integer_null(Messages::CostMicros))
        .col(boolean(Messages::UsageEstimated).default(false))
        .col(text_null(Messages::Error))
        .col(timestamp_with_time_zone(Messages::CreatedAt))
        .col(timestamp_with_time_zone_null(Messages::CompletedAt))
        .foreign_key(&mut tenant_foreign_key(Messages::Table))
        .foreign_key(&mut foreign_key(
            Messages::Table,
            Messages::ConversationId,
            Conversations::Table,
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}
