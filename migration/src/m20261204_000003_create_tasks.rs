//! Creates `tasks`, the to-do items shared by the members of a tenant.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, foreign_key, index, one_of, tenant_foreign_key};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(tasks()).await?;

        for columns in [
            vec![Tasks::TenantId, Tasks::Id],
            vec![Tasks::TenantId, Tasks::Status],
            vec![Tasks::TenantId, Tasks::AssigneeId],
            vec![Tasks::AssigneeId],
            vec![Tasks::CreatedBy],
        ] {
            manager.create_index(index(Tasks::Table, columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [Tasks::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    TenantId,
    Title,
    Description,
    Status,
    Priority,
    DueAt,
    AssigneeId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

fn tasks() -> TableCreateStatement {
    Table::create()
        .table(Tasks::Table)
        .col(pk_uuid(Tasks::Id))
        .col(uuid(Tasks::TenantId))
        .col(text(Tasks::Title))
        .col(text_null(Tasks::Description))
        .col(text(Tasks::Status).check(one_of(
            Tasks::Table,
            Tasks::Status,
            &["todo", "in_progress", "done", "cancelled"],
        )))
        .col(text(Tasks::Priority).check(one_of(
            Tasks::Table,
            Tasks::Priority,
            &["low", "medium", "high", "urgent"],
        )))
        .col(timestamp_with_time_zone_null(Tasks::DueAt))
        .col(uuid_null(Tasks::AssigneeId))
        .col(uuid_null(Tasks::CreatedBy))
        .col(timestamp_with_time_zone(Tasks::CreatedAt))
        .col(timestamp_with_time_zone(Tasks::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(Tasks::Table))
        .foreign_key(&mut foreign_key(
            Tasks::Table,
            Tasks::AssigneeId,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .foreign_key(&mut foreign_key(
            Tasks::Table,
            Tasks::CreatedBy,
            Users::Table,
            ForeignKeyAction::SetNull,
        ))
        .to_owned()
}
