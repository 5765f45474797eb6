//! The api binary: reads settings, prepares the database in development, and serves.

use std::process::ExitCode;

use service::{Platform, Settings};
use tokio::net::TcpListener;
use tracing::{error, info};

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    // Kept until the process exits; dropping it sends the spans still queued.
    let _telemetry = service::logging::init("task-assistant-api");
    // sqlx brings ring and reqwest brings aws-lc-rs, so rustls cannot pick a default itself.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    // Kept until the process exits; dropping it sends the events still queued.
    let _error_tracking = match service::error_tracking::init(&settings, "api") {
        Ok(guard) => guard,
        Err(error) => {
            error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = api::prepare_database(&settings).await {
        error!(%error, "applying database migrations failed");
        return ExitCode::FAILURE;
    }
    let address = settings.api_addr.clone();
    let platform = match Platform::connect(settings).await {
        Ok(platform) => platform,
        Err(error) => {
            error!(%error, "starting the platform failed");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = platform.check_database_role().await {
        error!(%error, "the database role is not safe for production");
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(&address).await {
        Ok(listener) => listener,
        Err(error) => {
            error!(%error, %address, "binding the listen address failed");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = api::serve(platform, listener, shutdown_signal()).await {
        error!(%error, "server failed");
        return ExitCode::FAILURE;
    }
    info!("api stopped");
    ExitCode::SUCCESS
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    info!("shutdown signal received");
}
