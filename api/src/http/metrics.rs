//! `GET /metrics`: the process's metrics in the Prometheus text format.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use service::metrics;

use super::AppState;

/// Renders the metrics. With `METRICS_BEARER_TOKEN` set, returns 401 to requests without
/// that token.
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if !metrics::authorised(&state.platform.settings, authorization) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required for /metrics\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::scrape(&state.platform).await,
    )
        .into_response()
}
