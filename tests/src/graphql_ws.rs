//! A minimal `graphql-transport-ws` client for tests: init, one subscription, collect.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// Subscribes with `query` and returns every `next` payload until `complete`.
pub async fn collect_subscription(
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
    timeout: Duration,
) -> anyhow::Result<Vec<Value>> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = connect_async(request)
        .await
        .context("connecting the WebSocket")?;

    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    let subscribe = json!({ "id": "1", "type": "subscribe",
                            "payload": { "query": query, "variables": variables } });

    let mut payloads = Vec::new();
    let read = async {
        while let Some(frame) = socket.next().await {
            let text = match frame? {
                Message::Text(text) => text.to_string(),
                Message::Close(frame) => bail!("server closed the connection: {frame:?}"),
                _ => continue,
            };
            let message: Value = serde_json::from_str(&text)?;
            match message["type"].as_str() {
                Some("connection_ack") => socket.send(Message::text(subscribe.to_string())).await?,
                Some("next") => payloads.push(message["payload"].clone()),
                Some("error") => bail!("subscription error: {}", message["payload"]),
                Some("complete") => return Ok(()),
                Some("ping") => {
                    socket
                        .send(Message::text(json!({"type": "pong"}).to_string()))
                        .await?
                }
                _ => {}
            }
        }
        bail!("connection ended before the subscription completed")
    };
    tokio::time::timeout(timeout, read)
        .await
        .context("subscription timed out")??;
    let _ = socket.close(None).await;
    Ok(payloads)
}
