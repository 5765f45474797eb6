//! Creates `provider_credentials`: a tenant's own API key and base URL for a provider.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, one_of, tenant_foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(provider_credentials()).await?;
        // One credential per tenant and provider; the lookup of every chat request uses it.
        manager
            .create_index(unique_index(
                ProviderCredentials::Table,
                [ProviderCredentials::TenantId, ProviderCredentials::Provider],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [ProviderCredentials::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ProviderCredentials {
    Table,
    Id,
    TenantId,
    Provider,
    EncryptedKey,
    KeyHint,
    BaseUrl,
    CreatedAt,
    UpdatedAt,
}

fn provider_credentials() -> TableCreateStatement {
    Table::create()
        .table(ProviderCredentials::Table)
        .col(pk_uuid(ProviderCredentials::Id))
        .col(uuid(ProviderCredentials::TenantId))
        .col(text(ProviderCredentials::Provider).check(one_of(
            ProviderCredentials::Table,
            ProviderCredentials::Provider,
            &["openai", "anthropic", "gemini", "groq", "ollama"],
        )))
        .col(text(ProviderCredentials::EncryptedKey))
        .col(text(ProviderCredentials::KeyHint))
        .col(text_null(ProviderCredentials::BaseUrl))
        .col(timestamp_with_time_zone(ProviderCredentials::CreatedAt))
        .col(timestamp_with_time_zone(ProviderCredentials::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(ProviderCredentials::Table))
        .to_owned()
}
