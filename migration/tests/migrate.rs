//! Creating the database, applying migrations under the advisory lock, and rolling them back.

mod common;

use migration::{MIGRATION_LOCK_KEY, Migrator, MigratorTrait, ensure_database, migrate};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};

use common::{TestResult, all_tables, database_exists, table_names, with_scratch_database};

#[tokio::test]
async fn migrate_twice_is_idempotent() {
    with_scratch_database("Migrate-Twice", |url| async move {
        let name = database_name(&url);
        assert!(!database_exists(&name).await?);

        ensure_database(&url).await?;
        assert!(database_exists(&name).await?);
        ensure_database(&url).await?;

        migrate(&url).await?;
        migrate(&url).await?;

        let db = Database::connect(&url).await?;
        assert_eq!(table_names(&db).await?, all_tables());
        let applied = Migrator::get_applied_migrations(&db).await?;
        assert_eq!(applied.len(), Migrator::migrations().len());
        assert!(Migrator::get_pending_migrations(&db).await?.is_empty());
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_both_succeed() {
    with_scratch_database("concurrent_migrate", |url| async move {
        ensure_database(&url).await?;

        let first = tokio::spawn({
            let url = url.clone();
            async move { migrate(&url).await }
        });
        let second = tokio::spawn({
            let url = url.clone();
            async move { migrate(&url).await }
        });
        first.await??;
        second.await??;

        let db = Database::connect(&url).await?;
        assert_eq!(table_names(&db).await?, all_tables());
        let applied = Migrator::get_applied_migrations(&db).await?;
        assert_eq!(applied.len(), Migrator::migrations().len());
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ensure_database_both_succeed() {
    with_scratch_database("concurrent_ensure", |url| async move {
        let first = tokio::spawn({
            let url = url.clone();
            async move { ensure_database(&url).await }
        });
        let second = tokio::spawn({
            let url = url.clone();
            async move { ensure_database(&url).await }
        });
        first.await??;
        second.await??;

        assert!(database_exists(&database_name(&url)).await?);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_waits_for_lock_holder() {
    with_scratch_database("lock_wait", |url| async move {
        ensure_database(&url).await?;
        let mut options = ConnectOptions::new(&url);
        options.max_connections(1);
        let holder = Database::connect(options).await?;
        holder
            .execute_raw(lock_statement("SELECT pg_advisory_lock($1)"))
            .await?;

        let migrating = tokio::spawn({
            let url = url.clone();
            async move { migrate(&url).await }
        });
        wait_for_lock_waiter(&holder).await?;
        assert_eq!(table_names(&holder).await?, Vec::<String>::new());

        holder
            .execute_raw(lock_statement("SELECT pg_advisory_unlock($1)"))
            .await?;
        migrating.await??;
        assert_eq!(table_names(&holder).await?, all_tables());
        holder.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn down_to_zero_then_up_again() {
    with_scratch_database("down_up", |url| async move {
        ensure_database(&url).await?;
        migrate(&url).await?;
        let db = Database::connect(&url).await?;

        Migrator::down(&db, None).await?;
        assert_eq!(table_names(&db).await?, ["seaql_migrations"]);
        assert!(Migrator::get_applied_migrations(&db).await?.is_empty());

        Migrator::up(&db, None).await?;
        assert_eq!(table_names(&db).await?, all_tables());
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn partial_indexes_have_predicates() {
    with_scratch_database("partial_indexes", |url| async move {
        ensure_database(&url).await?;
        migrate(&url).await?;
        let db = Database::connect(&url).await?;

        let streaming = index_definition(&db, "messages_created_at_streaming_idx").await?;
        assert!(
            streaming.ends_with("(created_at) WHERE (status = 'streaming'::text)"),
            "{streaming}"
        );
        let uncounted = index_definition(&db, "usage_records_tenant_id_uncounted_idx").await?;
        assert!(
            uncounted.ends_with("(tenant_id) WHERE (counted_at IS NULL)"),
            "{uncounted}"
        );
        db.close().await?;
        Ok(())
    })
    .await;
}

fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

fn lock_statement(sql: &str) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, [MIGRATION_LOCK_KEY.into()])
}

/// Polls `pg_locks` until a session of this database waits for the migration lock.
async fn wait_for_lock_waiter(db: &sea_orm::DatabaseConnection) -> TestResult {
    const POLLS: u32 = 600;
    let query = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT count(*) AS waiters FROM pg_locks \
         WHERE locktype = 'advisory' AND NOT granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND ((classid::bigint << 32) | objid::bigint) = $1",
        [MIGRATION_LOCK_KEY.into()],
    );

    for _ in 0..POLLS {
        if let Some(row) = db.query_one_raw(query.clone()).await? {
            let waiters: i64 = row.try_get("", "waiters")?;
            if waiters > 0 {
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err("migrate never waited for the advisory lock".into())
}

async fn index_definition(
    db: &sea_orm::DatabaseConnection,
    name: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
            [name.into()],
        ))
        .await?
        .ok_or_else(|| format!("index {name} is missing"))?;
    Ok(row.try_get("", "indexdef")?)
}
