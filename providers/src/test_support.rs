//! Helpers that the adapters' unit tests share: recorded fixtures, a stream harness that
//! delivers a body in every chunking, and a local HTTP server.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::Value;

use crate::{EventStream, ProviderError, StreamEvent};

/// One item of a decoded event stream.
pub(crate) type Item = Result<StreamEvent, ProviderError>;

/// A response body delivered as a fixed list of chunks.
pub(crate) type ChunkStream = stream::Iter<std::vec::IntoIter<Result<Bytes, reqwest::Error>>>;

/// Includes a recorded response from `tests/fixtures/{provider}/{name}` as a `&str`.
macro_rules! fixture {
    ($provider:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $provider,
            "/",
            $name
        ))
    };
}
pub(crate) use fixture;

/// Delivers `chunks` to `decode` and collects the items of the stream it returns.
pub(crate) async fn decode_chunks(
    decode: impl FnOnce(ChunkStream) -> EventStream,
    chunks: Vec<Vec<u8>>,
) -> Vec<Item> {
    let body = stream::iter(
        chunks
            .into_iter()
            .map(|chunk| Ok::<_, reqwest::Error>(Bytes::from(chunk)))
            .collect::<Vec<_>>(),
    );
    decode(body).collect().await
}

/// Decodes the body whole, byte by byte, and split in two at every byte position with
/// `decode`, which turns a list of chunks into items. Asserts that each delivery gives the
/// items of the whole body, and returns them.
pub(crate) async fn decode_every_split<F, Fut>(body: &[u8], mut decode: F) -> Vec<Item>
where
    F: FnMut(Vec<Vec<u8>>) -> Fut,
    Fut: Future<Output = Vec<Item>>,
{
    let whole = decode(vec![body.to_vec()]).await;

    let single_bytes = decode(body.iter().map(|byte| vec![*byte]).collect()).await;
    assert_eq!(single_bytes, whole, "body delivered one byte at a time");

    for position in 0..=body.len() {
        let (head, tail) = body.split_at(position);
        let split = decode(vec![head.to_vec(), tail.to_vec()]).await;
        assert_eq!(split, whole, "body split at byte {position}");
    }
    whole
}

/// Returns a text delta item.
pub(crate) fn text(delta: &str) -> Item {
    Ok(StreamEvent::TextDelta(delta.to_owned()))
}

/// Requests a [`LocalServer`] received, as path with query and headers.
type Received = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// A server on 127.0.0.1 that responds to every request with one status and JSON body.
pub(crate) struct LocalServer {
    pub(crate) base_url: String,
    received: Received,
}

impl LocalServer {
    pub(crate) async fn start(status: StatusCode, body: Value) -> Self {
        let received = Received::default();
        let app = Router::new()
            .fallback(respond)
            .with_state((Arc::clone(&received), status, body));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, received }
    }

    pub(crate) fn received(&self) -> Vec<(String, HeaderMap)> {
        self.received.lock().unwrap().clone()
    }
}

async fn respond(
    State((received, status, body)): State<(Received, StatusCode, Value)>,
    uri: Uri,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    received.lock().unwrap().push((uri.to_string(), headers));
    (status, axum::Json(body))
}
