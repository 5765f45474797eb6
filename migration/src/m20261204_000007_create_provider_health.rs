//! Creates `provider_health`: the platform-wide health of each provider, one row per
//! provider, written by the periodic probes and by the outcome of each generation.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, one_of};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(provider_health()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [ProviderHealth::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ProviderHealth {
    Table,
    Provider,
    Status,
    LatencyMs,
    LastError,
    ConsecutiveFailures,
    CheckedAt,
    UpdatedAt,
}

fn provider_health() -> TableCreateStatement {
    Table::create()
        .table(ProviderHealth::Table)
        .col(text(ProviderHealth::Provider).primary_key().check(one_of(
            ProviderHealth::Table,
            ProviderHealth::Provider,
            &["openai", "anthropic", "gemini", "groq", "ollama"],
        )))
        .col(text(ProviderHealth::Status).check(one_of(
            ProviderHealth::Table,
            ProviderHealth::Status,
            &["healthy", "degraded", "down", "unknown"],
        )))
        .col(integer_null(ProviderHealth::LatencyMs))
        .col(text_null(ProviderHealth::LastError))
        .col(integer(ProviderHealth::ConsecutiveFailures).default(0))
        .col(timestamp_with_time_zone_null(ProviderHealth::CheckedAt))
        .col(timestamp_with_time_zone(ProviderHealth::UpdatedAt))
        .to_owned()
}
