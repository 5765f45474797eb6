//! The axum router: GraphQL over HTTP, WebSocket and Server-Sent Events, GraphiQL, and the
//! health check, with request ids, tracing, CORS and HSTS.

mod caller;
mod client_ip;
mod credential;
mod graphql;
mod health;
mod media;
mod metrics;
mod params;
mod sse;
mod websockets;
mod ws;

use std::time::Duration;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Method, header},
    middleware,
    response::Response,
    routing::get,
};
use service::Platform;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::{info_span, warn};

use crate::{
    graphiql,
    graphql::{AppSchema, build_schema, rate_headers},
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Header of the API keys that tenants will use beside bearer tokens.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// How long browsers may cache a CORS preflight response.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

pub use websockets::WebSockets;

#[derive(Clone)]
struct AppState {
    platform: Platform,
    schema: AppSchema,
    websockets: WebSockets,
}

/// Builds the api's router over `platform`.
///
/// `/graphql` reads its body itself, within `MAX_REQUEST_BYTES`, and is limited to
/// `REQUEST_TIMEOUT_SECONDS`. The WebSocket route is not, since a subscription lasts as
/// long as the client wants.
pub fn router(platform: Platform) -> Router {
    router_tracking(platform, WebSockets::default())
}

/// Builds the router with its WebSocket connections tracked in `websockets`, so that a
/// stopping server can close them.
pub fn router_tracking(platform: Platform, websockets: WebSockets) -> Router {
    service::metrics::install();
    let schema = build_schema(platform.clone());
    let settings = platform.settings.clone();
    let state = AppState {
        platform,
        schema,
        websockets,
    };

    let graphql_http = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            graphql::limit_duration,
        ));
    let other = Router::new()
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/graphql/stream", get(sse::get).post(sse::post))
        .route("/graphiql/assets/{file}", get(graphiql::asset))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .layer(RequestBodyLimitLayer::new(settings.max_request_bytes));

    let mut router = graphql_http
        .merge(other)
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            info_span!("request", method = %request.method(), path = %request.uri().path(), request.id = %request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    if let Some(max_age) = settings.hsts_max_age
        && let Ok(value) = HeaderValue::try_from(format!("max-age={}", max_age.as_secs()))
    {
        router = router.layer(middleware::map_response(move |response| {
            add_hsts(response, value.clone())
        }));
    }
    if let Some(cors) = cors_layer(&settings.cors_allowed_origins) {
        router = router.layer(cors);
    }
    if service::error_tracking::enabled() {
        // Each request gets its own Sentry hub, and with SENTRY_TRACES_SAMPLE_RATE above 0
        // a sampled share of requests becomes performance transactions.
        router = router
            .layer(middleware::from_fn(trace_request))
            .layer(sentry::integrations::tower::NewSentryLayer::new_from_top());
    }
    router
}

/// Records the request as a Sentry performance transaction named by its method and path,
/// without its URL query, headers or body, which may hold tokens or message content.
async fn trace_request(request: axum::extract::Request, next: middleware::Next) -> Response {
    let name = format!("{} {}", request.method(), request.uri().path());
    let transaction =
        sentry::start_transaction(sentry::TransactionContext::new(&name, "http.server"));
    let response = next.run(request).await;
    transaction.set_status(if response.status().is_server_error() {
        sentry::protocol::SpanStatus::InternalError
    } else {
        sentry::protocol::SpanStatus::Ok
    });
    transaction.finish();
    response
}

/// Adds `Strict-Transport-Security` to every response, so that browsers use HTTPS only.
async fn add_hsts(mut response: Response, value: HeaderValue) -> Response {
    response
        .headers_mut()
        .insert(header::STRICT_TRANSPORT_SECURITY, value);
    response
}

/// Allows the listed origins to call the API from a browser, with the headers the API
/// reads: credentials, content negotiation, request ids and the preflight headers of the
/// cross-site request forgery check.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let mut allowed = Vec::with_capacity(origins.len());
    for origin in origins {
        match HeaderValue::from_str(origin) {
            Ok(value) => allowed.push(value),
            Err(_) => warn!(%origin, "ignoring a CORS origin that is not a valid header value"),
        }
    }
    let mut headers = vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        REQUEST_ID,
        X_API_KEY,
    ];
    headers.extend(media::PREFLIGHT_HEADERS);
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(headers)
            .expose_headers(
                [REQUEST_ID, header::RETRY_AFTER]
                    .into_iter()
                    .chain(rate_headers::ALL.map(HeaderName::from_static))
                    .collect::<Vec<_>>(),
            )
            .max_age(CORS_MAX_AGE),
    )
}
