//! `migrate`: creates the database when it is missing and applies pending migrations.
//!
//! The target is `MIGRATION_DATABASE_URL`, else `DATABASE_URL`, else the local development
//! database. Variables from a `.env` file in the working directory are read first when the
//! file exists. Set `RUST_LOG` to change the log filter.

use std::{env, process::ExitCode};

use tracing::{error, info};
use tracing_subscriber::EnvFilter;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/task_assistant";

/// Log filter when `RUST_LOG` is unset. sqlx logs PostgreSQL notices at info level, and every
/// run causes a harmless "already exists, skipping" notice for the migration table, so this
/// filter shows notices only at warn and above.
const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Environment variables that may hold the database URL, highest priority first.
const URL_VARIABLES: [&str; 2] = ["MIGRATION_DATABASE_URL", "DATABASE_URL"];

#[tokio::main]
async fn main() -> ExitCode {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        error!(error = %error, "failed to read .env file");
        return ExitCode::FAILURE;
    }

    let (url, source) = database_url();
    info!(config.source = source, "migrating database");

    if let Err(error) = migration::ensure_database(&url).await {
        error!(error = %error, "failed to create database");
        return ExitCode::FAILURE;
    }
    if let Err(error) = migration::migrate(&url).await {
        error!(error = %error, "failed to apply migrations");
        return ExitCode::FAILURE;
    }

    info!("database schema is up to date");
    ExitCode::SUCCESS
}

/// Returns the database URL and the name of the variable it came from, or `"default"`.
fn database_url() -> (String, &'static str) {
    for name in URL_VARIABLES {
        if let Ok(url) = env::var(name)
            && !url.is_empty()
        {
            return (url, name);
        }
    }
    (DEFAULT_DATABASE_URL.to_owned(), "default")
}
