//! The `reencrypt` binary: encrypts every stored provider credential again with the first key
//! of `ENCRYPTION_KEY`, after a new key was put first. Older keys can be removed once it
//! reports no failures.
//!
//! ```sh
//! ENCRYPTION_KEY=<new key>,<old key> cargo run -p task-assistant-worker --bin reencrypt
//! ```

use std::process::ExitCode;

use service::{Platform, Settings, credentials};
use tracing::error;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // sqlx brings ring and reqwest brings aws-lc-rs, so rustls cannot pick a default itself.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
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

    match credentials::reencrypt_all(&platform).await {
        // `reencrypt_all` logs the counts and each row that failed.
        Ok(report) if report.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => {
            error!("keep the older keys in ENCRYPTION_KEY until every credential re-encrypts");
            ExitCode::FAILURE
        }
        Err(error) => {
            error!(%error, "re-encryption failed");
            ExitCode::FAILURE
        }
    }
}
