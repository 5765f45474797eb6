//! Scratch databases on the local PostgreSQL server for the migration tests.

// Each test file compiles this module on its own and uses only some of the helpers.
#![allow(dead_code)]

use std::{error::Error, future::Future, panic};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// Server that the tests create their databases on; it needs a superuser without a password.
pub const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";

pub type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

/// Runs `test` with the URL of a database that does not exist yet, then drops that database
/// whether the test passed, failed or panicked.
pub async fn with_scratch_database<F, Fut>(label: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = TestResult> + Send + 'static,
{
    let name = scratch_database_name(label);
    let outcome = tokio::spawn(test(database_url(&name))).await;
    let dropped = drop_database(&name).await;

    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("test on database {name} failed: {error}"),
        Err(join_error) => match join_error.try_into_panic() {
            Ok(payload) => panic::resume_unwind(payload),
            Err(join_error) => panic!("test on database {name} did not finish: {join_error}"),
        },
    }
    if let Err(error) = dropped {
        panic!("failed to drop database {name}: {error}");
    }
}

/// Returns a database name that no other test run uses. `label` may contain capitals and
/// hyphens, which the code under test must quote.
pub fn scratch_database_name(label: &str) -> String {
    format!("ta_{label}_{}", uuid::Uuid::new_v4().simple())
}

pub fn database_url(name: &str) -> String {
    format!("{SERVER_URL}/{name}")
}

pub async fn database_exists(name: &str) -> Result<bool, DbErr> {
    let server = sea_orm::Database::connect(database_url("postgres")).await?;
    let row = server
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS matches FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?;
    server.close().await?;

    let matches: i64 = match row {
        Some(row) => row.try_get("", "matches")?,
        None => 0,
    };
    Ok(matches == 1)
}

pub async fn drop_database(name: &str) -> Result<(), DbErr> {
    let server = sea_orm::Database::connect(database_url("postgres")).await?;
    let quoted = name.replace('"', "\"\"");
    let dropped = server
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"
        ))
        .await;
    server.close().await?;
    dropped.map(|_| ())
}

/// Returns the names of the tables in the `public` schema, sorted.
pub async fn table_names(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
        ))
        .await?;
    rows.iter().map(|row| row.try_get("", "name")).collect()
}

/// Tables that the migrations create, sorted, without the migrator's own `seaql_migrations`.
pub const APPLICATION_TABLES: [&str; 27] = [
    "agent_run_steps",
    "agent_runs",
    "agents",
    "api_keys",
    "audit_logs",
    "conversations",
    "invitations",
    "memberships",
    "messages",
    "model_prices",
    "provider_credentials",
    "provider_health",
    "sessions",
    "subscriptions",
    "tasks",
    "tenant_settings",
    "tenants",
    "tool_executions",
    "tools",
    "usage_counters",
    "usage_daily_totals",
    "usage_records",
    "users",
    "webhook_deliveries",
    "webhook_events",
    "webhook_messages",
    "webhooks",
];

/// Returns `APPLICATION_TABLES` plus `seaql_migrations`, sorted.
pub fn all_tables() -> Vec<String> {
    let mut tables: Vec<String> = APPLICATION_TABLES.iter().map(|t| t.to_string()).collect();
    tables.push("seaql_migrations".to_owned());
    tables.sort();
    tables
}
