//! GraphQL subscriptions (and other operations) over WebSocket with the
//! `graphql-transport-ws` protocol, authenticated in `connection_init`.

use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use service::metrics;
use tokio_util::sync::PollSender;

use super::{
    AppState,
    caller::{identify, request_data},
};
use crate::graphql::context::Caller;

/// The WebSocket subprotocol of the `graphql-ws` client library.
const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";
/// Messages waiting for a slow client before the protocol loop waits too.
const OUTGOING_BUFFER: usize = 64;
/// Close code telling the client that the server is going away (RFC 6455, section 7.4.1).
const GOING_AWAY: u16 = 1001;

pub(super) async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols([GRAPHQL_TRANSPORT_WS])
        .on_upgrade(move |socket| {
            let websockets = state.websockets.clone();
            websockets.track(serve(state, protocol, socket))
        })
        .into_response()
}

/// Runs the `graphql-transport-ws` protocol on `socket` until either side ends it, or until
/// the api shuts down, when the client gets close code 1001.
async fn serve(state: AppState, protocol: GraphQLProtocol, socket: WebSocket) {
    let _open = metrics::websocket_connection();
    let (mut sink, stream) = socket.split();
    // The protocol loop writes into a channel rather than into the socket, so that the
    // socket stays here to send the closing frame when the loop is dropped.
    let (outgoing, mut to_client) = tokio::sync::mpsc::channel::<Message>(OUTGOING_BUFFER);
    let platform = state.platform.clone();
    let protocol_loop = GraphQLWebSocket::new_with_pair(
        PollSender::new(outgoing),
        stream,
        state.schema.clone(),
        protocol,
    )
    .on_connection_init(move |payload| async move {
        let token = init_payload_token(&payload);
        let request_id = uuid::Uuid::now_v7().to_string();
        match identify(&platform, token.as_deref(), request_id).await {
            Caller::Rejected(rejection) => Err(async_graphql::Error::new(rejection.message)),
            caller => Ok(request_data(&platform, caller)),
        }
    })
    .serve();

    let run = async {
        if state.websockets.is_closing() {
            // Dropping the loop drops its sender, which ends `forward`.
            drop(protocol_loop);
            return true;
        }
        tokio::select! {
            () = protocol_loop => false,
            () = state.websockets.closing() => true,
        }
    };
    let forward = async {
        while let Some(message) = to_client.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    };
    let (going_away, ()) = tokio::join!(run, forward);
    if going_away {
        let frame = CloseFrame {
            code: GOING_AWAY,
            reason: "server is shutting down".into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// Reads the credential from a `connection_init` payload:
/// `{"Authorization": "Bearer <token>"}` (any capitalisation), `{"token": "<token>"}`, or
/// an API key as `{"apiKey": "<key>"}` or `{"X-API-Key": "<key>"}`.
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
        if key == "token" || key == "apiKey" || key.eq_ignore_ascii_case("x-api-key") {
            return Some(text.trim().to_owned());
        }
    }
    None
}
