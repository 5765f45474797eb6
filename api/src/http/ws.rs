//! GraphQL over WebSocket with the `graphql-transport-ws` protocol, the one the `graphql-ws`
//! client library speaks. The protocol loop is ours, with async-graphql executing each
//! operation, because the protocol's close codes, the initialisation timeout and closing
//! from the server when the credentials stop being valid are not available otherwise.
//!
//! The client authenticates in the `connection_init` payload. Its credentials are checked
//! again every `WS_CREDENTIAL_CHECK_SECONDS` and when an access token expires. Once they
//! no longer hold, or grant another role, the connection closes with 4403, so that the
//! client reconnects with fresh ones. A message over `MAX_REQUEST_BYTES` closes it with
//! 1009.

use std::{future::Future, pin::Pin, time::Duration};

use async_graphql::{Data, Request, Response, Variables};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    response::{IntoResponse, Response as HttpResponse},
};
use futures_util::{
    SinkExt, Stream, StreamExt,
    stream::{self, BoxStream, SplitSink},
};
use serde::Deserialize;
use serde_json::{Value, json};
use service::metrics;
use tokio::time::{Instant, sleep_until};
use tokio_stream::StreamMap;

use super::{
    AppState,
    caller::{identify, request_data},
    credential::{self, Lapsed},
};
use crate::graphql::{context::Caller, execution::ExecutionStarted};

/// The WebSocket subprotocol of the `graphql-ws` client library.
const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";
/// Initial read buffer of a connection.
const READ_BUFFER: usize = 4 * 1024;
/// Maximum wait for a client to take one message before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Close codes of the protocol, and RFC 6455's "going away" for a stopping server.
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
}

pub(super) async fn graphql_ws(
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
) -> HttpResponse {
    let max_message = state.platform.settings.max_request_bytes;
    upgrade
        .protocols([GRAPHQL_TRANSPORT_WS])
        // The default 128 KiB read buffer is most of an idle connection's memory; protocol
        // messages are small, and the buffer grows for a larger one.
        .read_buffer_size(READ_BUFFER)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| {
            let websockets = state.websockets.clone();
            websockets.track(serve(state, socket))
        })
        .into_response()
}

/// Runs the protocol on `socket` until the client leaves, the protocol closes it, or the
/// api shuts down, when the client gets close code 1001.
async fn serve(state: AppState, socket: WebSocket) {
    let _open = metrics::websocket_connection();
    let (sink, incoming) = socket.split();
    let mut connection = Connection {
        state,
        sink,
        operations: StreamMap::new(),
        lapsed: None,
    };
    let closing = match connection.run(incoming).await {
        Ending::Gone => return,
        // The WebSocket library sends the reply to the client's closing frame when the sink
        // closes.
        Ending::ClosedByClient => None,
        Ending::Close(code, reason) => Some(CloseFrame {
            code,
            reason: reason.into(),
        }),
    };
    let close = async {
        if let Some(frame) = closing {
            connection.sink.send(Message::Close(Some(frame))).await?;
        }
        connection.sink.close().await
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, close).await;
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Map<String, Value>>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    extensions: Option<serde_json::Map<String, Value>>,
}

/// One result of an operation, or `None` once the operation has ended.
type OperationItem = Option<(Response, ExecutionStarted)>;

/// The reason the loop ended.
enum Ending {
    /// The connection is gone; nothing more can be sent.
    Gone,
    /// The client sent a closing frame, which the reply completes.
    ClosedByClient,
    /// The server closes with this code and reason.
    Close(u16, String),
}

struct Connection {
    state: AppState,
    sink: SplitSink<WebSocket, Message>,
    /// Running operations by the client's id.
    operations: StreamMap<String, BoxStream<'static, OperationItem>>,
    /// Completes when the credential the connection was acknowledged with stops holding.
    lapsed: Option<Pin<Box<dyn Future<Output = Lapsed> + Send>>>,
}

impl Connection {
    async fn run(
        &mut self,
        mut incoming: impl Stream<Item = Result<Message, axum::Error>> + Unpin,
    ) -> Ending {
        let settings = self.state.platform.settings.clone();
        let init_deadline = Instant::now() + settings.realtime.connection_init_timeout;
        let mut caller: Option<Caller> = None;
        if self.state.websockets.is_closing() {
            return Ending::Close(close::GOING_AWAY, "server is shutting down".into());
        }

        loop {
            tokio::select! {
                frame = incoming.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) => return Ending::ClosedByClient,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Binary(_))) => {
                            return Ending::Close(close::BAD_REQUEST, "binary messages are not part of the protocol".into());
                        }
                        Some(Err(error)) if error.to_string().contains("Message too long") => {
                            let reason = format!("a message may have at most {} bytes", settings.max_request_bytes);
                            return Ending::Close(close::MESSAGE_TOO_BIG, reason);
                        }
                        Some(Err(_)) | None => return Ending::Gone,
                    };
                    let message = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(message) => message,
                        Err(error) => {
                            return Ending::Close(close::BAD_REQUEST, limit_reason(format!("invalid message: {error}")));
                        }
                    };
                    if let Some(ending) = self.receive(message, &mut caller).await {
                        return ending;
                    }
                }
                Some((id, item)) = self.operations.next(), if !self.operations.is_empty() => {
                    let message = match item {
                        Some((response, started)) => {
                            let message = result_message(&id, response, &started);
                            // An `error` message ends the operation without `complete`.
                            if message["type"] == "error" {
                                self.operations.remove(&id);
                            }
                            message
                        }
                        None => json!({ "id": id, "type": "complete" }),
                    };
                    if self.send(message).await.is_err() {
                        return Ending::Gone;
                    }
                }
                () = sleep_until(init_deadline), if caller.is_none() => {
                    return Ending::Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into());
                }
                lapsed = lapse(&mut self.lapsed) => {
                    return Ending::Close(close::FORBIDDEN, limit_reason(format!("Forbidden: {}", lapsed.reason)));
                }
                () = self.state.websockets.closing() => {
                    return Ending::Close(close::GOING_AWAY, "server is shutting down".into());
                }
            }
        }
    }

    /// Handles one client message. Returns `Some` when the connection must end.
    async fn receive(
        &mut self,
        message: ClientMessage,
        caller: &mut Option<Caller>,
    ) -> Option<Ending> {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if caller.is_some() {
                    return Some(Ending::Close(
                        close::TOO_MANY_INITS,
                        "Too many initialisation requests".into(),
                    ));
                }
                let token = payload.as_ref().and_then(init_payload_token);
                let request_id = uuid::Uuid::now_v7().to_string();
                let identified = identify(&self.state.platform, token.as_deref(), request_id).await;
                match (&identified, token) {
                    (Caller::Rejected(rejection), _) => {
                        return Some(Ending::Close(
                            close::FORBIDDEN,
                            limit_reason(format!("Forbidden: {}", rejection.message)),
                        ));
                    }
                    (Caller::Authenticated(context), Some(token)) => {
                        self.lapsed = Some(credential::watch(
                            &self.state.platform,
                            token,
                            context.clone(),
                        ));
                    }
                    _ => {}
                }
                *caller = Some(identified);
                self.send(json!({ "type": "connection_ack" }))
                    .await
                    .err()
                    .map(|()| Ending::Gone)
            }
            ClientMessage::Ping { payload } => {
                let pong = match payload {
                    Some(payload) => json!({ "type": "pong", "payload": payload }),
                    None => json!({ "type": "pong" }),
                };
                self.send(pong).await.err().map(|()| Ending::Gone)
            }
            ClientMessage::Pong {} => None,
            ClientMessage::Subscribe { id, payload } => {
                let Some(caller) = caller else {
                    return Some(Ending::Close(close::UNAUTHORIZED, "Unauthorized".into()));
                };
                if self.operations.contains_key(&id) {
                    return Some(Ending::Close(
                        close::SUBSCRIBER_EXISTS,
                        limit_reason(format!("Subscriber for {id} already exists")),
                    ));
                }
                let operation = self.execute(payload, caller.clone());
                self.operations.insert(id, operation);
                None
            }
            ClientMessage::Complete { id } => {
                self.operations.remove(&id);
                None
            }
        }
    }

    /// Starts one operation; a query or mutation yields one result, a subscription many.
    fn execute(
        &self,
        payload: SubscribePayload,
        caller: Caller,
    ) -> BoxStream<'static, OperationItem> {
        let mut request = Request::new(payload.query);
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = payload.variables {
            request = request.variables(Variables::from_json(variables));
        }
        if let Some(extensions) = payload.extensions {
            for (name, value) in extensions {
                if let Ok(value) = async_graphql::Value::from_json(value) {
                    request.extensions.insert(name, value);
                }
            }
        }
        let started = ExecutionStarted::default();
        let mut data: Data = request_data(&self.state.platform, caller);
        data.insert(started.clone());
        request.data = data;
        let responses = self.state.schema.execute_stream(request);
        responses
            .map(move |response| Some((response, started.clone())))
            .chain(stream::once(async { None }))
            .boxed()
    }

    async fn send(&mut self, message: Value) -> Result<(), ()> {
        let sent = tokio::time::timeout(
            WRITE_TIMEOUT,
            self.sink.send(Message::text(message.to_string())),
        );
        match sent.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }
}

/// Completes when the watched credential stops holding, and never without a watch.
async fn lapse(watch: &mut Option<Pin<Box<dyn Future<Output = Lapsed> + Send>>>) -> Lapsed {
    match watch {
        Some(watch) => watch.await,
        None => std::future::pending().await,
    }
}

/// Builds the message carrying one result. A request error (syntax, validation, an unknown
/// operation: errors without a path, no data, before execution) is an `error` message and
/// ends the operation. Errors of resolvers, including a subscription refused before its
/// first event, arrive in `next` like any result.
fn result_message(id: &str, response: Response, started: &ExecutionStarted) -> Value {
    let request_error = response.is_err()
        && response.data == async_graphql::Value::Null
        && !started.get()
        && response.errors.iter().all(|error| error.path.is_empty());
    if request_error {
        return json!({ "id": id, "type": "error", "payload": response.errors });
    }
    json!({ "id": id, "type": "next", "payload": response })
}

/// Cuts a close frame's reason to 123 bytes, the most RFC 6455 allows.
fn limit_reason(mut reason: String) -> String {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut end = MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// Reads the credential from a `connection_init` payload:
/// `{"Authorization": "Bearer <token>"}` (any capitalisation), `{"token": "<token>"}`, or
/// an API key as `{"apiKey": "<key>"}` or `{"X-API-Key": "<key>"}`.
fn init_payload_token(payload: &serde_json::Map<String, Value>) -> Option<String> {
    for (key, value) in payload {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            let (scheme, token) = text.trim().split_once(' ')?;
            return scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned());
        }
        if key == "token" || key == "apiKey" || key.eq_ignore_ascii_case("x-api-key") {
            return Some(text.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = limit_reason(reason);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(limit_reason("short".into()), "short");
    }

    #[test]
    fn init_payload_token_reads_each_form() {
        let read = |payload: Value| init_payload_token(payload.as_object().unwrap());
        assert_eq!(
            read(json!({"Authorization": "Bearer abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(
            read(json!({"authorization": "bearer  abc "})).as_deref(),
            Some("abc")
        );
        assert_eq!(read(json!({"Authorization": "Basic abc"})), None);
        assert_eq!(read(json!({"apiKey": "ta_x"})).as_deref(), Some("ta_x"));
        assert_eq!(read(json!({"X-API-Key": "ta_y"})).as_deref(), Some("ta_y"));
        assert_eq!(read(json!({"token": "t"})).as_deref(), Some("t"));
        assert_eq!(read(json!({"other": "t"})), None);
    }
}
