//! A local HTTP server standing in for a tenant's webhook endpoint. It records every
//! request with its raw body and responds from a script, with 200 once the script is used up.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};

/// A delivery the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    /// The body exactly as sent, which signatures cover.
    pub body: String,
    pub received_at: Instant,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// The wait before responding.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Delivery>>,
    script: Mutex<VecDeque<Reply>>,
    /// Answer every request with this once the script is used up, instead of 200.
    fallback: Mutex<Option<u16>>,
    arrived: Notify,
}

pub struct WebhookReceiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    server: JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/hook", post(receive))
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

    /// Returns the endpoint's URL, `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers the next requests with `replies`, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(replies);
    }

    /// Answers every request after the script with `status`.
    pub fn always(&self, status: u16) {
        *self
            .state
            .fallback
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    pub fn received(&self) -> Vec<Delivery> {
        self.state
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `count` deliveries have arrived, or fails after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let waiting = async {
            loop {
                let arrived = self.state.arrived.notified();
                let received = self.received();
                if received.len() >= count {
                    return received;
                }
                arrived.await;
            }
        };
        match tokio::time::timeout(timeout, waiting).await {
            Ok(received) => received,
            Err(_) => panic!(
                "{count} deliveries did not arrive within {timeout:?}; got {:?}",
                self.received()
                    .iter()
                    .map(|delivery| delivery.json()["type"].clone())
                    .collect::<Vec<_>>()
            ),
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = state
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front();
    let fallback = *state
        .fallback
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let reply = reply.unwrap_or_else(|| Reply::status(fallback.unwrap_or(200)));
    // Recorded on arrival: a sender that gives up during the delay closes the connection,
    // which drops this handler.
    state
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Delivery {
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            received_at: Instant::now(),
        });
    state.arrived.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, format!("answered {}", reply.status)).into_response();
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Verifies each delivery with the official Standard Webhooks library (the
/// `standardwebhooks` npm package) for `secret`: the payload, or the library's error.
pub async fn verify_officially(
    secret: &str,
    deliveries: &[Delivery],
) -> anyhow::Result<Vec<Result<serde_json::Value, String>>> {
    let deliveries: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|delivery| {
            let headers: serde_json::Map<String, serde_json::Value> =
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .into_iter()
                    .map(|name| (name.to_owned(), delivery.header(name).into()))
                    .collect();
            serde_json::json!({ "headers": headers, "body": delivery.body })
        })
        .collect();
    let request = serde_json::json!({ "secret": secret, "deliveries": deliveries });
    let output = crate::node::run("webhook-verifier", "verify.mjs", &request.to_string()).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "the verifier failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .map(|line| {
            let result: serde_json::Value = serde_json::from_str(line)?;
            Ok(if result["ok"] == true {
                Ok(result["payload"].clone())
            } else {
                Err(result["error"].as_str().unwrap_or_default().to_owned())
            })
        })
        .collect()
}
