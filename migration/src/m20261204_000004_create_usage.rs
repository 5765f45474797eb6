//! Creates the usage tables: one record per provider call, and per-period totals per tenant.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, foreign_key, index, tenant_foreign_key};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(usage_records()).await?;
        for columns in [
            vec![UsageRecords::TenantId, UsageRecords::CreatedAt],
            vec![UsageRecords::UserId],
            vec![UsageRecords::AgentId],
            vec![UsageRecords::ConversationId],
            vec![UsageRecords::MessageId],
        ] {
            manager
                .create_index(index(UsageRecords::Table, columns))
                .await?;
        }
        // The aggregation job reads records not yet added to `usage_counters` by tenant.
        manager
            .create_index(
                index(UsageRecords::Table, [UsageRecords::TenantId])
                    .name("usage_records_tenant_id_uncounted_idx")
                    .and_where(Expr::col(UsageRecords::CountedAt).is_null())
                    .to_owned(),
            )
            .await?;

        manager.create_table(usage_counters()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                UsageCounters::Table.into_iden(),
                UsageRecords::Table.into_iden(),
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
}

#[derive(DeriveIden, Clone, Copy)]
enum Conversations {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageRecords {
    Table,
    Id,
    TenantId,
    UserId,
    AgentId,
    ConversationId,
    MessageId,
    Provider,
    Model,
    InputTokens,
    OutputTokens,
    CachedInputTokens,
    CostMicros,
    Estimated,
    CreatedAt,
    CountedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageCounters {
    Table,
    TenantId,
    PeriodStart,
    InputTokens,
    OutputTokens,
    CostMicros,
    RecordCount,
    UpdatedAt,
}

/// Deleting the user, agent, conversation or message that a record points to sets the
/// reference to NULL, so billing history outlives them.
fn usage_records() -> TableCreateStatement {
    Table::create()
        .table(UsageRecords::Table)
        .col(pk_uuid(UsageRecords::Id))
        .col(uuid(UsageRecords::TenantId))
        .col(uuid_null(UsageRecords::UserId))
        .col(uuid_null(UsageRecords::AgentId))
        .col(uuid_null(UsageRecords::ConversationId))
        .col(uuid_null(UsageRecords::MessageId))
        .col(text(UsageRecords::Provider))
        .col(text(UsageRecords::Model))
        .col(big_integer(UsageRecords::InputTokens))
        .col(big_integer(UsageRecords::OutputTokens))
        .col(big_integer(UsageRecords::CachedInputTokens).default(0))
        .col(big_integer(UsageRecords::CostMicros))
        .col(boolean(UsageRecords::Estimated).default(false))
        .col(timestamp_with_time_zone(UsageRecords::CreatedAt))
        .col(timestamp_with_time_zone_null(UsageRecords::CountedAt))
        .foreign_key(&mut tenant_foreign_key(UsageRecords::Table))
        .foreign_key(&mut foreign_key(
            UsageRecords::Table,
            UsageRecords::UserId,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            UsageRecords::Table,
            UsageRecords::AgentId,
            Agents::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            UsageRecords::Table,
            UsageRecords::ConversationId,
            Conversations::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            UsageRecords::Table,
            UsageRecords::MessageId,
            Messages::Table,
            ForeignKeyAction::SetNull,
        ))
        .to_owned()
}

fn usage_counters() -> TableCreateStatement {
    Table::create()
        .table(UsageCounters::Table)
        .col(uuid(UsageCounters::TenantId))
        .col(timestamp_with_time_zone(UsageCounters::PeriodStart))
        .col(big_integer(UsageCounters::InputTokens))
        .col(big_integer(UsageCounters::OutputTokens))
        .col(big_integer(UsageCounters::CostMicros))
        .col(big_integer(UsageCounters::RecordCount))
        .col(timestamp_with_time_zone(UsageCounters::UpdatedAt))
        .primary_key(
            Index::create()
                .name("usage_counters_pkey")
                .col(UsageCounters::TenantId)
                .col(UsageCounters::PeriodStart),
        )
        .foreign_key(&mut tenant_foreign_key(UsageCounters::Table))
        .to_owned()
}
