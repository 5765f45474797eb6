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

/// What a [`Connection`] received next.
#[derive(Debug)]
pub enum Received {
    /// A protocol message, such as `next` or `complete`.
    Message(Value),
    /// The server's closing frame: code and reason.
    Closed(Option<(u16, String)>),
}

/// A `graphql-transport-ws` connection that lets a test send and read each message itself.
pub struct Connection {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Connection {
    /// Connects and initialises with `token`, waiting for the acknowledgement.
    pub async fn open(url: &str, token: &str) -> anyhow::Result<Self> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (socket, _) = connect_async(request)
            .await
            .context("connecting the WebSocket")?;
        let mut connection = Self { socket };
        connection
            .send(json!({ "type": "connection_init",
                          "payload": { "Authorization": format!("Bearer {token}") } }))
            .await?;
        match connection.receive(Duration::from_secs(5)).await? {
            Received::Message(message) if message["type"] == "connection_ack" => Ok(connection),
            other => bail!("expected connection_ack, got {other:?}"),
        }
    }

    pub async fn send(&mut self, message: Value) -> anyhow::Result<()> {
        self.socket.send(Message::text(message.to_string())).await?;
        Ok(())
    }

    /// Starts the operation `query` under `id`.
    pub async fn subscribe(
        &mut self,
        id: &str,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<()> {
        self.send(json!({ "id": id, "type": "subscribe",
                          "payload": { "query": query, "variables": variables } }))
            .await
    }

    /// Returns the next protocol message or the closing frame, replying to pings meanwhile.
    pub async fn receive(&mut self, timeout: Duration) -> anyhow::Result<Received> {
        let read = async {
            while let Some(frame) = self.socket.next().await {
                match frame? {
                    Message::Text(text) => {
                        let message: Value = serde_json::from_str(&text)?;
                        if message["type"] == "ping" {
                            self.send(json!({ "type": "pong" })).await?;
                            continue;
                        }
                        return Ok(Received::Message(message));
                    }
                    Message::Close(frame) => {
                        return Ok(Received::Closed(
                            frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
                        ));
                    }
                    _ => {}
                }
            }
            Ok(Received::Closed(None))
        };
        tokio::time::timeout(timeout, read)
            .await
            .context("no message arrived in time")?
    }
}
