//! GraphQL subscriptions (and other operations) over WebSocket with the
//! `graphql-transport-ws` protocol, authenticated in `connection_init`.

use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{State, WebSocketUpgrade},
    response::{IntoResponse, Response},
};

use super::{
    AppState,
    caller::{identify, request_data},
};
use crate::graphql::context::Caller;

/// The WebSocket subprotocol of the `graphql-ws` client library.
const GRAPHQL_TRANSPORT_WS: &str = "graphql-transport-ws";

pub(super) async fn graphql_ws(
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
                        Caller::Rejected(rejection) => {
                            Err(async_graphql::Error::new(rejection.message))
                        }
                        caller => Ok(request_data(&platform, caller)),
                    }
                })
                .serve()
        })
        .into_response()
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
