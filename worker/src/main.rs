//! The worker binary: reads settings and consumes jobs until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use service::{Platform, Settings};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    // Kept until the process exits; dropping it sends the spans still queued.
    let _telemetry = service::logging::init("task-assistant-worker");
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
    let _error_tracking = match service::error_tracking::init(&settings, "worker") {
        Ok(guard) => guard,
        Err(error) => {
            error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
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

    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        info!("shutdown signal received");
        signal.cancel();
    });
    #[cfg(unix)]
    {
        let signal = shutdown.clone();
        tokio::spawn(async move {
            if let Ok(mut terminate) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                terminate.recv().await;
                info!("shutdown signal received");
                signal.cancel();
            }
        });
    }

    let address = platform.settings.worker_metrics_addr.clone();
    let metrics_listener = match tokio::net::TcpListener::bind(&address).await {
        Ok(listener) => listener,
        Err(error) => {
            error!(%error, %address, "binding WORKER_METRICS_ADDR failed");
            return ExitCode::FAILURE;
        }
    };
    match worker::run(platform, metrics_listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!(%error, "worker failed");
            ExitCode::FAILURE
        }
    }
}
