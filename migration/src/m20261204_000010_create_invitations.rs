//! Creates `invitations`: an owner's or admin's offer to a person, by email address, to join
//! the tenant with a role. Only the SHA-256 hash of the invitation token is stored.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, foreign_key, index, one_of, tenant_foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(invitations()).await?;
        // Accepting looks an invitation up by its token's hash.
        manager
            .create_index(unique_index(Invitations::Table, [Invitations::TokenHash]))
            .await?;
        manager
            .create_index(index(
                Invitations::Table,
                [Invitations::TenantId, Invitations::Email],
            ))
            .await?;
        manager
            .create_index(index(Invitations::Table, [Invitations::InvitedBy]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [Invitations::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Invitations {
    Table,
    Id,
    TenantId,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    ExpiresAt,
    AcceptedAt,
    AcceptedBy,
    RevokedAt,
    CreatedAt,
}

fn invitations() -> TableCreateStatement {
    Table::create()
        .table(Invitations::Table)
        .col(pk_uuid(Invitations::Id))
        .col(uuid(Invitations::TenantId))
        .col(text(Invitations::Email))
        .col(text(Invitations::Role).check(one_of(
            Invitations::Table,
            Invitations::Role,
            &["owner", "admin", "member", "viewer"],
        )))
        .col(text(Invitations::TokenHash))
        .col(uuid_null(Invitations::InvitedBy))
        .col(timestamp_with_time_zone(Invitations::ExpiresAt))
        .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
        .col(uuid_null(Invitations::AcceptedBy))
        .col(timestamp_with_time_zone_null(Invitations::RevokedAt))
        .col(timestamp_with_time_zone(Invitations::CreatedAt))
        .foreign_key(&mut tenant_foreign_key(Invitations::Table))
        .foreign_key(&mut foreign_key(
            Invitations::Table,
            Invitations::InvitedBy,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            Invitations::Table,
            Invitations::AcceptedBy,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .to_owned()
}
