//! The `graphql-transport-ws` protocol: the `graphql-ws` client library for the normal
//! paths, and a raw WebSocket for each close code, ping and pong, `complete` in both
//! directions, and credentials that stop being valid while the connection is open.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{
    MockConfig, TestApp, TestOptions,
    graphql_ws::{Connection, Received},
    js_clients,
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

const STREAM: &str = "subscription($id: ID!) { messageStream(messageId: $id) {
    kind cursor delta outcome { status content } } }";

/// Configures a mock whose replies start after `first_token` and take 50 ms per token.
fn slow_replies(first_token: Duration) -> MockConfig {
    MockConfig {
        time_to_first_token: first_token,
        tokens: 6,
        gap: Duration::from_millis(50),
    }
}

async fn app_with(mock: MockConfig, env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(TestOptions {
        mock,
        env: env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

/// Opens a WebSocket with the protocol but sends nothing.
async fn raw_socket(
    app: &TestApp,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    connect_async(request).await.unwrap().0
}

/// Reads until the server closes the socket and returns the close code and reason.
async fn close_of(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (u16, String) {
    let read = async {
        while let Some(frame) = socket.next().await {
            if let Message::Close(Some(frame)) = frame.unwrap() {
                return (u16::from(frame.code), frame.reason.to_string());
            }
        }
        panic!("the connection ended without a closing frame");
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server did not close the connection")
}

async fn send(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    message: Value,
) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

fn expect_close(received: Received, code: u16, reason_part: &str) {
    match received {
        Received::Closed(Some((closed, reason))) => {
            assert_eq!(closed, code, "reason: {reason}");
            assert!(
                reason.contains(reason_part),
                "close reason {reason:?} does not mention {reason_part:?}"
            );
        }
        other => panic!("expected close {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_client_streams_and_queries() {
    let app = app_with(slow_replies(Duration::from_millis(300)), &[]).await;
    let chat = app.start_chat("ws-client@example.com", "Be brief.").await;
    let token = chat.owner.access_token.as_str();
    let message_id = app
        .send_message(token, &chat.conversation_id, "Hello")
        .await;

    let run = js_clients::run(
        "ws",
        &app.ws_url(),
        Some(token),
        STREAM,
        json!({ "id": message_id }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(run.end["end"], "complete", "{:?}", run.end);
    let events: Vec<&Value> = run
        .results
        .iter()
        .map(|result| &result["data"]["messageStream"])
        .collect();
    let text: String = events
        .iter()
        .filter(|event| event["kind"] == "DELTA")
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    let done = events.last().unwrap();
    assert_eq!(done["kind"], "DONE");
    assert_eq!(done["outcome"]["status"], "COMPLETED");
    let stored = app.wait_for_reply(token, &message_id).await;
    assert_eq!(text, stored["content"].as_str().unwrap());
    assert_eq!(done["outcome"]["content"], stored["content"]);

    let query = js_clients::run(
        "ws",
        &app.ws_url(),
        Some(token),
        "{ me { user { email } } }",
        json!({}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(query.end["end"], "complete");
    assert_eq!(
        query.results,
        vec![json!({ "data": { "me": { "user": { "email": "ws-client@example.com" } } } })]
    );

    // A validation error is an `error` message, which the client raises with the errors.
    let invalid = js_clients::run(
        "ws",
        &app.ws_url(),
        Some(token),
        "{ me { noSuchField } }",
        json!({}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(invalid.end["end"], "error");
    let message = invalid.end["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("noSuchField"), "{message}");
    assert!(invalid.results.is_empty());

    // A refused subscription is a result with the error, then `complete`.
    let refused = js_clients::run(
        "ws",
        &app.ws_url(),
        Some(token),
        STREAM,
        json!({ "id": uuid::Uuid::now_v7().to_string() }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(refused.end["end"], "complete");
    assert_eq!(refused.results.len(), 1);
    assert_eq!(
        refused.results[0]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );

    // Wrong credentials: the client sees close code 4403.
    let rejected = js_clients::run(
        "ws",
        &app.ws_url(),
        Some("not-a-token"),
        "{ me { user { email } } }",
        json!({}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(rejected.end["closeCode"], 4403, "{:?}", rejected.end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_violation_closes_with_its_code() {
    let app = app_with(
        slow_replies(Duration::from_secs(30)),
        &[("WS_CONNECTION_INIT_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let chat = app.start_chat("ws-codes@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });

    // No connection_init within the timeout.
    let mut socket = raw_socket(&app).await;
    let (code, reason) = close_of(&mut socket).await;
    assert_eq!(
        (code, reason.as_str()),
        (4408, "Connection initialisation timeout")
    );

    // Messages that are not the protocol's.
    for invalid in [
        Message::text("not json"),
        Message::text(json!({ "type": "unheard_of" }).to_string()),
        Message::text(
            json!({ "type": "subscribe", "payload": { "query": "{ me { role } }" } }).to_string(),
        ),
        Message::text(json!({ "type": "connection_init", "payload": "a string" }).to_string()),
        Message::binary(vec![1, 2, 3]),
    ] {
        let mut socket = raw_socket(&app).await;
        socket.send(invalid.clone()).await.unwrap();
        let (code, _) = close_of(&mut socket).await;
        assert_eq!(code, 4400, "for {invalid:?}");
    }

    // Subscribing before the acknowledgement.
    let mut socket = raw_socket(&app).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { role } }" } }),
    )
    .await;
    assert_eq!(
        close_of(&mut socket).await,
        (4401, "Unauthorized".to_owned())
    );

    // Credentials that do not authenticate.
    let mut socket = raw_socket(&app).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nope" } }),
    )
    .await;
    let (code, reason) = close_of(&mut socket).await;
    assert_eq!(code, 4403);
    assert!(reason.starts_with("Forbidden"), "{reason}");

    // A second connection_init.
    let mut socket = raw_socket(&app).await;
    send(&mut socket, init.clone()).await;
    send(&mut socket, init.clone()).await;
    assert_eq!(
        close_of(&mut socket).await,
        (4429, "Too many initialisation requests".to_owned())
    );

    // Two operations under one id while the first is running.
    let message_id = app.send_message(&token, &chat.conversation_id, "Hi").await;
    let mut connection = Connection::open(&app.ws_url(), &token).await.unwrap();
    connection
        .subscribe("same", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    connection
        .subscribe("same", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    expect_close(
        connection.receive(Duration::from_secs(5)).await.unwrap(),
        4409,
        "Subscriber for same already exists",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_complete_and_single_results() {
    let app = app_with(slow_replies(Duration::from_secs(2)), &[]).await;
    let chat = app.start_chat("ws-ping@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let mut connection = Connection::open(&app.ws_url(), &token).await.unwrap();

    connection
        .send(json!({ "type": "ping", "payload": { "n": 7 } }))
        .await
        .unwrap();
    let Received::Message(pong) = connection.receive(Duration::from_secs(5)).await.unwrap() else {
        panic!("expected pong");
    };
    assert_eq!(pong, json!({ "type": "pong", "payload": { "n": 7 } }));
    // A pong from the client needs no reply.
    connection.send(json!({ "type": "pong" })).await.unwrap();

    // A query: one `next`, then `complete`.
    connection
        .subscribe("q", "{ me { role } }", json!({}))
        .await
        .unwrap();
    let Received::Message(next) = connection.receive(Duration::from_secs(5)).await.unwrap() else {
        panic!("expected next");
    };
    assert_eq!(
        next,
        json!({ "id": "q", "type": "next", "payload": { "data": { "me": { "role": "OWNER" } } } })
    );
    let Received::Message(complete) = connection.receive(Duration::from_secs(5)).await.unwrap()
    else {
        panic!("expected complete");
    };
    assert_eq!(complete, json!({ "id": "q", "type": "complete" }));

    // A syntax error: `error`, and no `complete` after it.
    connection
        .subscribe("bad", "{ me { ", json!({}))
        .await
        .unwrap();
    let Received::Message(error) = connection.receive(Duration::from_secs(5)).await.unwrap() else {
        panic!("expected error");
    };
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "bad");
    assert!(error["payload"][0]["message"].is_string(), "{error}");

    // The client completes a running subscription: nothing more arrives for its id, and
    // the id can be used again.
    let message_id = app.send_message(&token, &chat.conversation_id, "Hi").await;
    connection
        .subscribe("s", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    connection
        .send(json!({ "id": "s", "type": "complete" }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    connection.send(json!({ "type": "ping" })).await.unwrap();
    let Received::Message(after) = connection.receive(Duration::from_secs(5)).await.unwrap() else {
        panic!("expected pong");
    };
    assert_eq!(
        after,
        json!({ "type": "pong" }),
        "the completed subscription kept sending"
    );
    app.wait_for_reply(&token, &message_id).await;

    connection
        .subscribe("s", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    loop {
        match connection.receive(Duration::from_secs(10)).await.unwrap() {
            Received::Message(message) if message["type"] == "next" => {
                kinds.push(message["payload"]["data"]["messageStream"]["kind"].clone());
            }
            Received::Message(message) if message["type"] == "complete" => {
                assert_eq!(message["id"], "s");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds.last().unwrap(), "DONE");
    assert_eq!(kinds.iter().filter(|kind| *kind == "DELTA").count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_closes_connection() {
    let app = app_with(
        slow_replies(Duration::from_secs(30)),
        &[("ACCESS_TOKEN_TTL_SECONDS", "2")],
    )
    .await;
    let chat = app.start_chat("ws-expiry@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let message_id = app.send_message(&token, &chat.conversation_id, "Hi").await;
    let mut connection = Connection::open(&app.ws_url(), &token).await.unwrap();
    connection
        .subscribe("s", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();

    let received = connection.receive(Duration::from_secs(6)).await.unwrap();
    expect_close(received, 4403, "the access token has expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_credentials_and_role_changes_end_the_connection() {
    let app = app_with(
        slow_replies(Duration::from_secs(30)),
        &[("WS_CREDENTIAL_CHECK_SECONDS", "1")],
    )
    .await;
    let chat = app.start_chat("ws-revoke@example.com", "Be brief.").await;
    let owner = chat.owner.access_token.clone();
    let message_id = app.send_message(&owner, &chat.conversation_id, "Hi").await;

    // Signing out revokes the session of the token.
    let session = app.login("ws-revoke@example.com").await;
    let mut connection = Connection::open(&app.ws_url(), &session.access_token)
        .await
        .unwrap();
    connection
        .subscribe("s", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    app.data(
        Some(&session.access_token),
        "mutation { logout { success } }",
        json!({}),
    )
    .await;
    let received = connection.receive(Duration::from_secs(5)).await.unwrap();
    expect_close(received, 4403, "revoked");

    // Revoking an API key.
    let created = app
        .data(
            Some(&owner),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
                apiKey { id } secret } }",
            json!({ "input": { "name": "socket", "scopes": ["READ"] } }),
        )
        .await;
    let key = created["createApiKey"]["secret"].as_str().unwrap();
    let key_id = created["createApiKey"]["apiKey"]["id"].as_str().unwrap();
    let mut connection = Connection::open(&app.ws_url(), key).await.unwrap();
    connection
        .subscribe("s", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    app.data(
        Some(&owner),
        "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { apiKey { id } } }",
        json!({ "input": { "id": key_id } }),
    )
    .await;
    let received = connection.receive(Duration::from_secs(5)).await.unwrap();
    expect_close(received, 4403, "Forbidden");

    // A member whose role changes reconnects to be served with the new one.
    let member = app
        .add_member(&owner, "ws-member@example.com", "MEMBER")
        .await;
    let mut connection = Connection::open(&app.ws_url(), &member.access_token)
        .await
        .unwrap();
    app.data(
        Some(&owner),
        "mutation($input: ChangeMemberRoleInput!) { changeMemberRole(input: $input) { member { role } } }",
        json!({ "input": { "userId": member.user_id, "role": "VIEWER" } }),
    )
    .await;
    let received = connection.receive(Duration::from_secs(5)).await.unwrap();
    expect_close(received, 4403, "role has changed");
    let mut connection = Connection::open(&app.ws_url(), &member.access_token)
        .await
        .unwrap();
    connection
        .subscribe("q", "{ me { role } }", json!({}))
        .await
        .unwrap();
    let Received::Message(next) = connection.receive(Duration::from_secs(5)).await.unwrap() else {
        panic!("expected next");
    };
    assert_eq!(next["payload"]["data"]["me"]["role"], "VIEWER");
    let Received::Message(complete) = connection.receive(Duration::from_secs(5)).await.unwrap()
    else {
        panic!("expected complete");
    };
    assert_eq!(complete["type"], "complete");

    // A removed member is refused.
    app.data(
        Some(&owner),
        "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { member { role } } }",
        json!({ "input": { "userId": member.user_id } }),
    )
    .await;
    let received = connection.receive(Duration::from_secs(5)).await.unwrap();
    expect_close(received, 4403, "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_closes_are_answered_and_oversized_messages_refused() {
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};

    let app = app_with(MockConfig::default(), &[]).await;
    let owner = app.register("ws-close@example.com", "Close").await;
    let init = json!({ "type": "connection_init",
                       "payload": { "Authorization": format!("Bearer {}", owner.access_token) } });

    // A normal close by the client gets a closing frame back.
    let mut socket = raw_socket(&app).await;
    send(&mut socket, init.clone()).await;
    let Some(Ok(Message::Text(ack))) = socket.next().await else {
        panic!("expected connection_ack");
    };
    assert!(ack.contains("connection_ack"));
    socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        })))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("no answer to the closing frame");
    match answer {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a closing frame, got {other:?}"),
    }

    // A message over MAX_REQUEST_BYTES (2 MiB in the tests) closes with 1009.
    let mut socket = raw_socket(&app).await;
    send(&mut socket, init).await;
    let huge = "x".repeat(3 * 1024 * 1024);
    let _ = socket.send(Message::text(huge)).await;
    let (code, reason) = close_of(&mut socket).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("2097152"), "{reason}");
}
