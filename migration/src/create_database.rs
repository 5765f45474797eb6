//! Creates the application database when it does not exist yet.

use std::sync::Arc;

use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement,
    sqlx::postgres::PgConnectOptions,
};
use tracing::info;

use crate::connection::connect_single;

/// Database that a default PostgreSQL installation provides, used to run `CREATE DATABASE`.
const MAINTENANCE_DATABASE: &str = "postgres";

/// SQLSTATE `invalid_catalog_name`: the database named in the connection does not exist.
const INVALID_CATALOG_NAME: &str = "3D000";

/// Creates the database named in `url` when it is missing.
///
/// The database is created through the `postgres` database of the same server, with the
/// credentials from `url`. When several processes call this at once, those that lose the race
/// to create the database return `Ok` because the database exists.
pub async fn ensure_database(url: &str) -> Result<(), DbErr> {
    match connect_single(ConnectOptions::new(url)).await {
        Ok(db) => return db.close().await,
        Err(error) if is_missing_database(&error) => {}
        Err(error) => return Err(error),
    }

    let name = database_name(url)?;
    let mut options = ConnectOptions::new(url);
    options.map_sqlx_postgres_opts(|options| options.database(MAINTENANCE_DATABASE));
    let server = connect_single(options).await?;

    let created = create_database(&server, &name).await;
    let closed = server.close().await;
    created.and(closed)
}

async fn create_database(server: &DatabaseConnection, name: &str) -> Result<(), DbErr> {
    let statement = format!("CREATE DATABASE {}", quote_identifier(name));
    let Err(error) = server.execute_unprepared(&statement).await else {
        info!(db.namespace = name, "created database");
        return Ok(());
    };

    // Another process may have created it since this one failed to connect.
    if database_exists(server, name).await? {
        return Ok(());
    }
    Err(error)
}

async fn database_exists(server: &DatabaseConnection, name: &str) -> Result<bool, DbErr> {
    let row = server
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS present",
            [name.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "present"),
        None => Ok(false),
    }
}

fn is_missing_database(error: &DbErr) -> bool {
    let DbErr::Conn(RuntimeErr::SqlxError(error)) = error else {
        return false;
    };
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == INVALID_CATALOG_NAME)
}

/// Returns the database that `url` connects to: the URL's path, else `PGDATABASE`, else the
/// user name, in the order that sqlx and libpq apply.
fn database_name(url: &str) -> Result<String, DbErr> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|error| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))))?;
    let name = options.get_database().unwrap_or(options.get_username());
    Ok(name.to_owned())
}

/// Quotes `name` as a PostgreSQL identifier, doubling any embedded double quote.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_identifier_doubles_quotes() {
        assert_eq!(quote_identifier("task_assistant"), r#""task_assistant""#);
        assert_eq!(quote_identifier(r#"a"b"#), r#""a""b""#);
    }

    #[test]
    fn database_name_reads_url_path() -> Result<(), DbErr> {
        let name = database_name("postgres://app@127.0.0.1:5432/Task-Assistant")?;

        assert_eq!(name, "Task-Assistant");
        Ok(())
    }

    #[test]
    fn database_name_defaults_to_user() -> Result<(), DbErr> {
        let name = database_name("postgres://app@127.0.0.1:5432")?;

        let expected = std::env::var("PGDATABASE").unwrap_or_else(|_| "app".to_owned());
        assert_eq!(name, expected);
        Ok(())
    }
}
