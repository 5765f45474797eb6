//! The local HTTP server that records each request and sends a fixture's response.

use std::io;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use futures_util::{StreamExt, stream};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{MockBody, MockResponse, ProviderFixture, RecordedRequest, Scenario};

/// How a [`MockBody::Chunks`] body ends after its last chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnding {
    /// The chunked body ends with its terminating empty chunk.
    Complete,
    /// The server closes the connection without the terminating chunk, as a proxy or
    /// provider that fails half way does.
    Abort,
}

#[derive(Clone)]
struct ServerState {
    fixture: Arc<dyn ProviderFixture>,
    scenario: Scenario,
    ending: BodyEnding,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

/// A server on 127.0.0.1 with a free port, stopped when dropped.
pub struct MockServer {
    base_url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Starts a server that responds to every request with `fixture.respond(scenario, ..)`.
    pub async fn start(
        fixture: Arc<dyn ProviderFixture>,
        scenario: Scenario,
        ending: BodyEnding,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            fixture,
            scenario,
            ending,
            requests: Arc::clone(&requests),
        };
        let app = Router::new().fallback(record_and_respond).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });

        Self {
            base_url: format!("http://{address}"),
            requests,
            task,
        }
    }

    /// Returns the server's root URL, such as `http://127.0.0.1:40123`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record_and_respond(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method: method.to_string(),
        path_and_query: uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        headers,
        body: parse_body(&body),
    };

    let response = state.fixture.respond(&state.scenario, &request);
    state.requests.lock().unwrap().push(request);

    build_response(response, state.ending)
}

fn parse_body(body: &[u8]) -> serde_json::Value {
    if body.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn build_response(mock: MockResponse, ending: BodyEnding) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(mock.status).unwrap();
    for (name, value) in &mock.headers {
        response.headers_mut().append(
            HeaderName::try_from(name.as_str()).unwrap(),
            HeaderValue::try_from(value.as_str()).unwrap(),
        );
    }

    *response.body_mut() = match mock.body {
        MockBody::Json(value) => {
            if !response.headers().contains_key(CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Body::from(value.to_string())
        }
        MockBody::Chunks(chunks) => chunked_body(chunks, ending),
    };
    response
}

/// Streams the chunks one by one. Yielding to the runtime before each chunk makes hyper
/// see the body as not ready, so it flushes the previous chunk to the socket first.
fn chunked_body(chunks: Vec<Vec<u8>>, ending: BodyEnding) -> Body {
    let chunks = stream::iter(chunks).then(|chunk| async move {
        tokio::task::yield_now().await;
        Ok::<_, io::Error>(Bytes::from(chunk))
    });
    let ending = stream::iter(match ending {
        BodyEnding::Complete => None,
        BodyEnding::Abort => Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection aborted by the contract test",
        ))),
    });
    Body::from_stream(chunks.chain(ending))
}

#[cfg(test)]
mod tests {
    use providers::{HttpSettings, http_client};
    use serde_json::json;

    use super::*;
    use crate::openai::OpenAiFixture;

    /// Reads a streamed body over real HTTP: it arrives whole with the terminating chunk,
    /// and fails to read when the server aborts the connection instead.
    #[tokio::test]
    async fn abort_ending_cuts_chunked_body() {
        let client = http_client(&HttpSettings::default()).unwrap();
        for (ending, body_complete) in [(BodyEnding::Complete, true), (BodyEnding::Abort, false)] {
            let fixture = Arc::new(OpenAiFixture);
            let server = MockServer::start(fixture, Scenario::CutStream, ending).await;

            let response = client
                .post(format!("{}/v1/chat/completions", server.base_url()))
                .json(&json!({"stream": true}))
                .send()
                .await
                .unwrap();
            let body = response.bytes().await;

            assert_eq!(body.is_ok(), body_complete, "{ending:?}: {body:?}");
            assert_eq!(server.requests().len(), 1, "{ending:?}: requests recorded");
        }
    }
}
