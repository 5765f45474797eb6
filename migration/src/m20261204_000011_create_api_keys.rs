//! Creates `api_keys`: long-lived credentials for programs, acting for the member who created
//! them with at most the scopes they were given. Only the SHA-256 hash of a key is stored.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, foreign_key, index, tenant_foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(api_keys()).await?;
        // Every request with a key looks it up by its hash when it is not cached.
        manager
            .create_index(unique_index(ApiKeys::Table, [ApiKeys::KeyHash]))
            .await?;
        manager
            .create_index(index(
                ApiKeys::Table,
                [ApiKeys::TenantId, ApiKeys::CreatedBy],
            ))
            .await?;
        manager
            .create_index(index(ApiKeys::Table, [ApiKeys::CreatedBy]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [ApiKeys::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    CreatedBy,
    Name,
    Prefix,
    KeyHash,
    Scopes,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}

fn api_keys() -> TableCreateStatement {
    Table::create()
        .table(ApiKeys::Table)
        .col(pk_uuid(ApiKeys::Id))
        .col(uuid(ApiKeys::TenantId))
        .col(uuid(ApiKeys::CreatedBy))
        .col(text(ApiKeys::Name))
        .col(text(ApiKeys::Prefix))
        .col(text(ApiKeys::KeyHash))
        .col(json_binary(ApiKeys::Scopes))
        .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
        .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
        .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
        .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
        .foreign_key(&mut tenant_foreign_key(ApiKeys::Table))
        .foreign_key(&mut foreign_key(
            ApiKeys::Table,
            ApiKeys::CreatedBy,
            Users::Table,
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}
