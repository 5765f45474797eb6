//! Creates `tenant_settings`: a tenant's default provider and model, the providers and
//! models its members may use, and how long its messages are kept. A tenant without a row
//! has no defaults, no restrictions and keeps messages forever.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, one_of, tenant_foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(tenant_settings()).await?;
        manager
            .create_index(unique_index(
                TenantSettings::Table,
                [TenantSettings::TenantId],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [TenantSettings::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum TenantSettings {
    Table,
    Id,
    TenantId,
    DefaultProvider,
    DefaultModel,
    AllowedProviders,
    AllowedModels,
    MessageRetentionDays,
    UpdatedAt,
}

fn tenant_settings() -> TableCreateStatement {
    Table::create()
        .table(TenantSettings::Table)
        .col(pk_uuid(TenantSettings::Id))
        .col(uuid(TenantSettings::TenantId))
        .col(text_null(TenantSettings::DefaultProvider).check(one_of(
            TenantSettings::Table,
            TenantSettings::DefaultProvider,
            &["openai", "anthropic", "gemini", "groq", "ollama"],
        )))
        .col(text_null(TenantSettings::DefaultModel))
        // JSON arrays of names; null allows every provider or model.
        .col(json_binary_null(TenantSettings::AllowedProviders))
        .col(json_binary_null(TenantSettings::AllowedModels))
        .col(
            integer_null(TenantSettings::MessageRetentionDays)
                .check(Expr::col(TenantSettings::MessageRetentionDays).gte(1)),
        )
        .col(timestamp_with_time_zone(TenantSettings::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(TenantSettings::Table))
        .to_owned()
}
