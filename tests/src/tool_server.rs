//! A local HTTP server that stands in for the endpoints of tenants' HTTP tools, recording
//! every request it receives.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
    routing::any,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};

/// A request the server received.
#[derive(Debug, Clone)]
pub struct ToolRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct ServerState {
    received: Mutex<Vec<ToolRequest>>,
    /// Requests to `/pair` waiting for their partner.
    waiting: Mutex<usize>,
    partner_arrived: Notify,
    blocked: Notify,
}

/// The running server. Routes, under any method:
/// - `/echo`: answers 200 with the method, query and JSON body it received;
/// - `/slow`: answers after 3 seconds;
/// - `/pair`: answers 200 once a second request to `/pair` is in flight at the same time,
///   or 500 when none arrives within 5 seconds, which shows whether calls run concurrently;
/// - `/block`: never answers within a test, and signals [`ToolServer::blocked`];
/// - `/fail`: answers 500.
pub struct ToolServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
    server: JoinHandle<()>,
}

impl ToolServer {
    pub async fn start() -> anyhow::Result<Self> {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/echo", any(echo))
            .route("/slow", any(slow))
            .route("/pair", any(pair))
            .route("/block", any(block))
            .route("/fail", any(fail))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// Returns `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Returns the requests received so far, in order.
    pub fn received(&self) -> Vec<ToolRequest> {
        lock(&self.state.received).clone()
    }

    /// Waits until a request to `/block` has arrived.
    pub async fn blocked(&self) {
        self.state.blocked.notified().await;
    }
}

impl Drop for ToolServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn record(
    state: &ServerState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> ToolRequest {
    let request = ToolRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    lock(&state.received).push(request.clone());
    request
}

async fn echo(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let request = record(&state, &method, &uri, &headers, &body);
    Json(json!({ "method": request.method, "query": request.query, "body": request.body }))
}

async fn slow(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    record(&state, &method, &uri, &headers, &body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

async fn pair(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    record(&state, &method, &uri, &headers, &body);
    let partner_waiting = {
        let mut waiting = lock(&state.waiting);
        if *waiting > 0 {
            *waiting -= 1;
            true
        } else {
            *waiting += 1;
            false
        }
    };
    if partner_waiting {
        state.partner_arrived.notify_one();
        return (StatusCode::OK, "together");
    }
    match tokio::time::timeout(Duration::from_secs(5), state.partner_arrived.notified()).await {
        Ok(()) => (StatusCode::OK, "together"),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "alone"),
    }
}

async fn block(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    record(&state, &method, &uri, &headers, &body);
    state.blocked.notify_one();
    tokio::time::sleep(Duration::from_secs(600)).await;
    "unreachable in a test"
}

async fn fail(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    record(&state, &method, &uri, &headers, &body);
    (StatusCode::INTERNAL_SERVER_ERROR, "broken")
}
