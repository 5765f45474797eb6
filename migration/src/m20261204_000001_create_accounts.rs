//! Creates the account tables: tenants, users, memberships, login sessions and each tenant's
//! billing plan (`subscriptions`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, foreign_key, index, one_of, tenant_foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(tenants()).await?;
        manager.create_table(users()).await?;

        manager.create_table(memberships()).await?;
        manager
            .create_index(unique_index(
                Memberships::Table,
                [Memberships::TenantId, Memberships::UserId],
            ))
            .await?;
        manager
            .create_index(index(Memberships::Table, [Memberships::UserId]))
            .await?;

        manager.create_table(sessions()).await?;
        manager
            .create_index(index(Sessions::Table, [Sessions::UserId]))
            .await?;
        manager
            .create_index(index(Sessions::Table, [Sessions::TenantId]))
            .await?;
        manager
            .create_index(index(Sessions::Table, [Sessions::PreviousRefreshTokenHash]))
            .await?;

        manager.create_table(subscriptions()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                Subscriptions::Table.into_iden(),
                Sessions::Table.into_iden(),
                Memberships::Table.into_iden(),
                Users::Table.into_iden(),
                Tenants::Table.into_iden(),
            ],
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
    Name,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    FullName,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Memberships {
    Table,
    Id,
    TenantId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    TenantId,
    UserId,
    RefreshTokenHash,
    PreviousRefreshTokenHash,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
    LastRefreshedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Subscriptions {
    Table,
    Id,
    TenantId,
    Plan,
    MonthlyTokenLimit,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    CreatedAt,
    UpdatedAt,
}

fn tenants() -> TableCreateStatement {
    Table::create()
        .table(Tenants::Table)
        .col(pk_uuid(Tenants::Id))
        .col(text(Tenants::Name))
        .col(text(Tenants::Status).default("active").check(one_of(
            Tenants::Table,
            Tenants::Status,
            &["active", "suspended"],
        )))
        .col(timestamp_with_time_zone(Tenants::CreatedAt))
        .col(timestamp_with_time_zone(Tenants::UpdatedAt))
        .to_owned()
}

fn users() -> TableCreateStatement {
    Table::create()
        .table(Users::Table)
        .col(pk_uuid(Users::Id))
        .col(text_uniq(Users::Email))
        .col(text(Users::PasswordHash))
        .col(text(Users::FullName))
        .col(timestamp_with_time_zone(Users::CreatedAt))
        .col(timestamp_with_time_zone(Users::UpdatedAt))
        .to_owned()
}

fn memberships() -> TableCreateStatement {
    Table::create()
        .table(Memberships::Table)
        .col(pk_uuid(Memberships::Id))
        .col(uuid(Memberships::TenantId))
        .col(uuid(Memberships::UserId))
        .col(text(Memberships::Role).check(one_of(
            Memberships::Table,
            Memberships::Role,
            &["owner", "admin", "member", "viewer"],
        )))
        .col(timestamp_with_time_zone(Memberships::CreatedAt))
        .foreign_key(&mut tenant_foreign_key(Memberships::Table))
        .foreign_key(&mut foreign_key(
            Memberships::Table,
            Memberships::UserId,
            Users::Table,
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}

fn sessions() -> TableCreateStatement {
    Table::create()
        .table(Sessions::Table)
        .col(pk_uuid(Sessions::Id))
        .col(uuid(Sessions::TenantId))
        .col(uuid(Sessions::UserId))
        .col(text_uniq(Sessions::RefreshTokenHash))
        .col(text_null(Sessions::PreviousRefreshTokenHash))
        .col(timestamp_with_time_zone(Sessions::ExpiresAt))
        .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
        .col(timestamp_with_time_zone(Sessions::CreatedAt))
        .col(timestamp_with_time_zone_null(Sessions::LastRefreshedAt))
        .foreign_key(&mut tenant_foreign_key(Sessions::Table))
        .foreign_key(&mut foreign_key(
            Sessions::Table,
            Sessions::UserId,
            Users::Table,
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}

fn subscriptions() -> TableCreateStatement {
    Table::create()
        .table(Subscriptions::Table)
        .col(pk_uuid(Subscriptions::Id))
        .col(uuid_uniq(Subscriptions::TenantId))
        .col(text(Subscriptions::Plan).check(one_of(
            Subscriptions::Table,
            Subscriptions::Plan,
            &["free", "pro", "enterprise", "custom"],
        )))
        .col(big_integer_null(Subscriptions::MonthlyTokenLimit))
        .col(timestamp_with_time_zone(Subscriptions::CurrentPeriodStart))
        .col(timestamp_with_time_zone(Subscriptions::CurrentPeriodEnd))
        .col(timestamp_with_time_zone(Subscriptions::CreatedAt))
        .col(timestamp_with_time_zone(Subscriptions::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(Subscriptions::Table))
        .to_owned()
}
