//! The axum router: GraphQL over HTTP and WebSocket, GraphiQL, and the health check.

use std::time::Duration;

use async_graphql::{Data, dataloader::DataLoader};
use async_graphql_axum::{
    GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket, rejection::GraphQLRejection,
};
use axum::{
    Json, Router,
    extract::{State, WebSocketUpgrade},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use service::{Platform, auth, health as probes};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::{info_span, warn};

use crate::{
    graphiql,
    graphql::{
        AppSchema, build_schema,
        context::Caller,
        error::code,
        loaders::{AgentLoader, MemberLoader},
    },
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The WebSocket subprotocol of the `graphql-ws` client library.
const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";
/// How long each dependency may take to respond to the health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct AppState {
    platform: Platform,
    schema: AppSchema,
}

/// Builds the api's router over `platform`.
pub fn router(platform: Platform) -> Router {
    let schema = build_schema(platform.clone());
    let max_request_bytes = platform.settings.max_request_bytes;
    let cors = cors_layer(&platform.settings.cors_allowed_origins);
    let state = AppState { platform, schema };

    let router = Router::new()
        .route("/graphql", get(graphiql::page).post(graphql_http))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphiql/assets/{file}", get(graphiql::asset))
        .route("/health", get(health))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_request_bytes))
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
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                REQUEST_ID,
            ]),
    )
}

async fn graphql_http(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let request = match request {
        Ok(request) => request,
        Err(rejection) => return unreadable_request(&rejection),
    };
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let token = bearer_token(&headers);
    let caller = identify(&state.platform, token.as_deref(), request_id).await;
    let mut request = request.into_inner();
    request.data = request_data(&state.platform, caller);
    let mut response = state.schema.execute(request).await;
    label_client_errors(&mut response.errors);
    GraphQLResponse::from(response).into_response()
}

/// Gives BAD_USER_INPUT to errors that carry no code. Only errors raised before any
/// resolver ran lack one (syntax, validation, variable coercion, limits), because every
/// resolver error goes through `to_graphql_error`.
fn label_client_errors(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code::BAD_USER_INPUT);
        }
    }
}

/// Answers a body that is not a GraphQL request (malformed JSON, wrong content type) with
/// a GraphQL error response instead of the extractor's plain-text debug output.
fn unreadable_request(rejection: &GraphQLRejection) -> Response {
    let body = json!({
        "errors": [{
            "message": format!("request body is not a valid GraphQL request: {}", rejection.0),
            "extensions": { "code": code::BAD_USER_INPUT },
        }]
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols([GRAPHQL_TRANSPORT_WS])
        .on_upgrade(move |socket| {
            let platform = state.platform.clone();
            GraphQLWebSocket::new(socket, state.schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = init_payload_token(&payload);
                    let request_id = uuid::Uuid::now_v7().to_string();
                    match identify(&platform, token.as_deref(), request_id).await {
                        Caller::Rejected(message) => Err(async_graphql::Error::new(message)),
                        caller => Ok(request_data(&platform, caller)),
                    }
                })
                .serve()
        })
        .into_response()
}

/// Authenticates the credentials, if any were sent.
async fn identify(platform: &Platform, token: Option<&str>, request_id: String) -> Caller {
    let Some(token) = token else {
        return Caller::Anonymous;
    };
    match auth::authenticate(platform, token, request_id).await {
        Ok(ctx) => Caller::Authenticated(ctx),
        Err(error) => {
            if error.is_internal() {
                warn!(error = ?error, "authenticating a request failed");
            }
            Caller::Rejected(if error.is_internal() {
                "authentication is unavailable, try again shortly".into()
            } else {
                error.to_string()
            })
        }
    }
}

/// Per-request GraphQL data: the caller and DataLoaders scoped to the caller's tenant.
fn request_data(platform: &Platform, caller: Caller) -> Data {
    let mut data = Data::default();
    if let Caller::Authenticated(ctx) = &caller {
        let tenant_id = ctx.tenant();
        data.insert(DataLoader::new(
            AgentLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
        data.insert(DataLoader::new(
            MemberLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
    }
    data.insert(caller);
    data
}

/// Reads the token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Reads the token from a `connection_init` payload: `{"Authorization": "Bearer <token>"}`
/// (any capitalisation) or `{"token": "<token>"}`.
fn init_payload_token(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    for (key, value) in object {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            let (scheme, token) = text.trim().split_once(' ')?;
            return scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned());
        }
        if key == "token" {
            return Some(text.trim().to_owned());
        }
    }
    None
}

/// Returns 200 when PostgreSQL and Redis respond, or 503 naming the ones that do not.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let platform = &state.platform;
    let (postgres, redis) = tokio::join!(
        check(probes::ping_postgres(platform)),
        check(probes::ping_redis(platform)),
    );
    let checks = [("postgres", postgres), ("redis", redis)];
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, check)| check.is_err())
        .map(|(name, _)| *name)
        .collect();
    let details: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, check)| {
            let value = match check {
                Ok(latency) => json!({ "status": "ok", "latencyMs": latency }),
                Err(error) => json!({ "status": "unavailable", "error": error }),
            };
            (name.to_string(), value)
        })
        .collect();
    if !failing.is_empty() {
        warn!(failing = ?failing, "health check failed");
    }
    let (status, word) = if failing.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(json!({ "status": word, "failing": failing, "checks": details })),
    )
}

/// Runs one dependency check with a timeout and returns its latency in milliseconds.
async fn check(
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> Result<f64, String> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(started.elapsed().as_secs_f64() * 1000.0),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())),
    }
}
