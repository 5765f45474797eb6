//! The Task Assistant api: GraphQL over HTTP and WebSocket, GraphiQL and health, served by
//! axum over the domain in the `service` crate.

pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod throttle;

use std::{future::Future, net::SocketAddr, sync::LazyLock};

use migration::MigratorTrait;

use service::{Platform, Settings, chat::registry::listen_for_stops};
use tokio::net::TcpListener;
use tracing::info;

pub use http::router;

/// The names of the migrations compiled into this build, oldest first, which readiness
/// checks compare with the applied ones.
pub(crate) static MIGRATIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    migration::Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect()
});

/// Creates the database and applies pending migrations, when the settings ask for it.
pub async fn prepare_database(settings: &Settings) -> Result<(), sea_orm::DbErr> {
    if !settings.auto_migrate {
        return Ok(());
    }
    migration::ensure_database(&settings.migration_database_url).await?;
    migration::migrate(&settings.migration_database_url).await?;
    info!("database migrations applied");
    Ok(())
}

/// Serves the api on `listener` until `shutdown` completes. Handlers see each connection's
/// peer address, which the sign-in throttle uses as the client's address.
pub async fn serve(
    platform: Platform,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(listen_for_stops(platform.clone()));
    let address = listener.local_addr()?;
    info!(%address, "api listening");
    let service = router(platform).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
