//! The Task Assistant api: GraphQL over HTTP and WebSocket, GraphiQL and health, served by
//! axum over the domain in the `service` crate.

pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod throttle;

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    sync::LazyLock,
    time::Duration,
};

use migration::MigratorTrait;

use axum::serve::ListenerExt;
use service::{Platform, Settings, chat::registry::listen_for_stops};
use tokio::{net::TcpListener, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use http::{WebSockets, router, router_tracking};

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

/// How long generations interrupted at the end of the grace period get to store their reply.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long WebSocket clients get to acknowledge the closing frame.
const WEBSOCKET_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the api on `listener` until `shutdown` completes, then shuts down gracefully:
///
/// 1. stops accepting connections and starting generations (readiness turns 503);
/// 2. lets in-flight requests and running generations finish, for up to
///    `SHUTDOWN_GRACE_SECONDS`, while subscribers keep receiving their streams;
/// 3. interrupts the generations still running, which store their reply as interrupted
///    with its usage;
/// 4. closes every WebSocket with code 1001 (going away) and returns.
///
/// Handlers see each connection's peer address, which the sign-in throttle uses as the
/// client's address.
pub async fn serve(
    platform: Platform,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(listen_for_stops(platform.clone()));
    let address = listener.local_addr()?;
    info!(%address, "api listening");
    let websockets = WebSockets::default();
    let service = http::router_tracking(platform.clone(), websockets.clone())
        .into_make_service_with_connect_info::<SocketAddr>();
    let stop_accepting = CancellationToken::new();
    // Without TCP_NODELAY, a delta written right after another waits for the client's
    // acknowledgement of the first, which clients delay by up to 40 ms.
    let listener = listener.tap_io(|connection| {
        if let Err(error) = connection.set_nodelay(true) {
            warn!(%error, "setting TCP_NODELAY on a connection failed");
        }
    });
    let server = axum::serve(listener, service)
        .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown => {}
    }

    let grace = platform.settings.shutdown_grace;
    info!(
        grace_seconds = grace.as_secs(),
        generations = platform.generations.len(),
        websockets = websockets.len(),
        "shutting down: no new connections or generations"
    );
    platform.generations.begin_draining();
    stop_accepting.cancel();
    let deadline = Instant::now() + grace;
    // Streaming connections stay open while the generations they follow finish; closing
    // them then lets the server's own shutdown, which waits for SSE responses, complete.
    let drain = async {
        let idle = tokio::time::timeout_at(deadline, platform.generations.wait_until_idle()).await;
        if idle.is_err() {
            warn!(
                generations = platform.generations.len(),
                "grace period over, interrupting the generations still running"
            );
            platform.generations.interrupt_all();
            let stored =
                tokio::time::timeout(FINAL_WRITE_TIMEOUT, platform.generations.wait_until_idle())
                    .await;
            if stored.is_err() {
                error!(
                    generations = platform.generations.len(),
                    "interrupted generations did not store their replies in time; \
                     the maintenance sweep closes them"
                );
            }
        }
        let still_open = websockets.close_all(WEBSOCKET_CLOSE_TIMEOUT).await;
        if still_open > 0 {
            warn!(
                websockets = still_open,
                "WebSocket clients did not close in time"
            );
        }
    };
    let (served, ()) = tokio::join!(tokio::time::timeout_at(deadline, &mut server), drain);
    match served {
        Ok(result) => result,
        Err(_) => {
            warn!("requests still running after the grace period were cut off");
            Ok(())
        }
    }
}
