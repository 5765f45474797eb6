//! Applies pending migrations under a PostgreSQL advisory lock, so that several instances
//! starting at once apply each migration once.

use sea_orm_migration::{
    MigratorTrait,
    sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement},
};
use tracing::{debug, warn};

use crate::{Migrator, connection::connect_single};

/// Key of the session-level advisory lock held while migrations run.
///
/// Advisory locks are scoped to the current database, so the key only has to differ from other
/// advisory locks that the application takes in the same database. Its bytes spell `TAMIGRAT`
/// in ASCII.
pub const MIGRATION_LOCK_KEY: i64 = 0x5441_4D49_4752_4154;

/// Applies pending migrations under the advisory lock.
///
/// Waits for the lock while another process holds it, then finds nothing left to apply when
/// that process has finished. Each migration runs in its own transaction, so a failure leaves
/// the migrations before it applied.
pub async fn migrate(url: &str) -> Result<(), DbErr> {
    let db = connect_single(ConnectOptions::new(url)).await?;
    let migrated = migrate_locked(&db).await;
    let closed = db.close().await;
    migrated.and(closed)
}

async fn migrate_locked(db: &DatabaseConnection) -> Result<(), DbErr> {
    debug!(lock.key = MIGRATION_LOCK_KEY, "waiting for migration lock");
    db.execute_raw(lock_statement("SELECT pg_advisory_lock($1)"))
        .await?;

    let applied = Migrator::up(db, None).await;
    let released = release_lock(db).await;
    applied.and(released)
}

async fn release_lock(db: &DatabaseConnection) -> Result<(), DbErr> {
    let row = db
        .query_one_raw(lock_statement("SELECT pg_advisory_unlock($1) AS released"))
        .await?;
    let released = match row {
        Some(row) => row.try_get::<bool>("", "released")?,
        None => false,
    };

    if released {
        debug!(lock.key = MIGRATION_LOCK_KEY, "released migration lock");
    } else {
        // The session that took the lock ended, so PostgreSQL released it early and another
        // process may have migrated at the same time.
        warn!(
            lock.key = MIGRATION_LOCK_KEY,
            "migration lock was lost before release"
        );
    }
    Ok(())
}

fn lock_statement(sql: &str) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, [MIGRATION_LOCK_KEY.into()])
}
