//! The worker's own small HTTP server: `/metrics` for Prometheus and `/health/live` for
//! container liveness probes. It serves no public traffic.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use service::{Platform, metrics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Serves the routes on `listener` until `shutdown` is cancelled.
pub async fn serve(
    platform: Platform,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    metrics::install();
    let address = listener.local_addr()?;
    info!(%address, "worker metrics listening");
    let router = Router::new()
        .route("/metrics", get(scrape))
        .route("/health/live", get(live))
        .with_state(platform);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn scrape(State(platform): State<Platform>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if !metrics::authorised(&platform.settings, authorization) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::scrape(&platform).await,
    )
        .into_response()
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
