//! A local HTTP server that replaces the endpoints of tenants' HTTP tools, recording
//! every request it receives.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, StatusCode},
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
/// - `/echo`: returns 200 with the method, query and JSON body it received;
/// - `/slow`: returns 200 after 3 seconds;
/// - `/pair`: returns 200 once a second request to `/pair` is in flight at the same time,
///   or 500 when none arrives within 5 seconds, which shows whether calls run concurrently;
/// - `/block`: does not respond within a test, and signals [`ToolServer::blocked`];
/// - `/fail`: returns 500.
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

/// A request as the server received it, recorded in the server's list when a handler
/// extracts it.
struct Recorded(ToolRequest);

impl FromRequest<Arc<ServerState>> for Recorded {
    type Rejection = Infallible;

    async fn from_request(
        request: Request,
        state: &Arc<ServerState>,
    ) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let request = ToolRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        lock(&state.received).push(request.clone());
        Ok(Recorded(request))
    }
}

async fn echo(Recorded(request): Recorded) -> impl IntoResponse {
    Json(json!({ "method": request.method, "query": request.query, "body": request.body }))
}

async fn slow(_: Recorded) -> impl IntoResponse {
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

async fn pair(State(state): State<Arc<ServerState>>, _: Recorded) -> impl IntoResponse {
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

async fn block(State(state): State<Arc<ServerState>>, _: Recorded) -> impl IntoResponse {
    state.blocked.notify_one();
    tokio::time::sleep(Duration::from_secs(600)).await;
    "unreachable in a test"
}

async fn fail(_: Recorded) -> impl IntoResponse {
    (StatusCode::INTERNAL_SERVER_ERROR, "broken")
}
