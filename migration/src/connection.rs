//! Database pools of exactly one connection, for work that must stay on one session.

use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connects with a pool that keeps one physical connection for its whole life.
///
/// Session state such as an advisory lock belongs to one physical connection. The pool
/// neither retires that connection when idle or old nor replaces it after a failed health
/// check, so every statement runs in the same session unless the connection breaks.
pub async fn connect_single(mut options: ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    options
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .sqlx_logging(false);
    Database::connect(options).await
}
