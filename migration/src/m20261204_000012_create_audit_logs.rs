//! Creates `audit_logs`: one row per state-changing operation, saying who did what to which
//! object, from which request, and when.
//!
//! The actor columns have no foreign keys, so deleting a user or an API key keeps the rows
//! that name them. Deleting the tenant deletes its rows.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, index, one_of, tenant_foreign_key};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(audit_logs()).await?;
        // The list reads newest first by id within a tenant, optionally filtered by one of
        // the other columns.
        for columns in [
            [AuditLogs::TenantId, AuditLogs::Id],
            [AuditLogs::TenantId, AuditLogs::Action],
            [AuditLogs::TenantId, AuditLogs::ActorUserId],
            [AuditLogs::TenantId, AuditLogs::TargetId],
        ] {
            manager
                .create_index(index(AuditLogs::Table, columns))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [AuditLogs::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLogs {
    Table,
    Id,
    TenantId,
    ActorType,
    ActorUserId,
    ActorApiKeyId,
    Action,
    TargetType,
    TargetId,
    RequestId,
    IpAddress,
    Summary,
    CreatedAt,
}

/// `action` and `target_type` have no CHECK constraint because new features add values to
/// them, so the service defines the list.
fn audit_logs() -> TableCreateStatement {
    Table::create()
        .table(AuditLogs::Table)
        .col(pk_uuid(AuditLogs::Id))
        .col(uuid(AuditLogs::TenantId))
        .col(text(AuditLogs::ActorType).check(one_of(
            AuditLogs::Table,
            AuditLogs::ActorType,
            &["user", "api_key", "system"],
        )))
        .col(uuid_null(AuditLogs::ActorUserId))
        .col(uuid_null(AuditLogs::ActorApiKeyId))
        .col(text(AuditLogs::Action))
        .col(text(AuditLogs::TargetType))
        .col(uuid(AuditLogs::TargetId))
        .col(text_null(AuditLogs::RequestId))
        // The address in its text form, such as `203.0.113.7` or `2001:db8::1`.
        .col(text_null(AuditLogs::IpAddress))
        .col(json_binary(AuditLogs::Summary))
        .col(timestamp_with_time_zone(AuditLogs::CreatedAt))
        .check(actor_matches_type())
        .foreign_key(&mut tenant_foreign_key(AuditLogs::Table))
        .to_owned()
}

/// CHECK constraint `audit_logs_actor_check`: a user acts with a user id and no key id, an
/// API key with both (the key acts for its creator), and the system with neither.
fn actor_matches_type() -> Check {
    let user = Expr::col(AuditLogs::ActorUserId);
    let key = Expr::col(AuditLogs::ActorApiKeyId);
    let actor_type = Expr::col(AuditLogs::ActorType);

    let by_user = actor_type
        .clone()
        .eq("user")
        .and(user.clone().is_not_null())
        .and(key.clone().is_null());
    let by_api_key = actor_type
        .clone()
        .eq("api_key")
        .and(user.clone().is_not_null())
        .and(key.clone().is_not_null());
    let by_system = actor_type
        .eq("system")
        .and(user.is_null())
        .and(key.is_null());
    Check::named(
        "audit_logs_actor_check",
        by_user.or(by_api_key).or(by_system),
    )
}
