//! Graceful shutdown: a stopping api finishes running replies within the grace period,
//! stores those it must cut off as interrupted with their usage, rejects new messages, and
//! closes WebSockets with code 1001 (going away); a stopping worker leaves queued work for the
//! next one.

use std::time::Duration;

use mock_provider::reply_tokens;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{
    Chat, MockConfig, TestApp, TestOptions,
    graphql_ws::{Connection, Received},
};
use tokio_util::sync::CancellationToken;

const STREAM: &str = "subscription($id: ID!) { messageStream(messageId: $id) {
    kind delta outcome { status finishReason outputTokens usageEstimated error } } }";
const SEND: &str = "mutation($input: SendMessageInput!) {
    sendMessage(input: $input) { assistantMessage { id } } }";
const GOING_AWAY: u16 = 1001;

/// Reads until the subscription `id` completes, returning its `next` payloads.
async fn until_complete(connection: &mut Connection, id: &str) -> Vec<Value> {
    let mut payloads = Vec::new();
    loop {
        match connection.receive(Duration::from_secs(20)).await.unwrap() {
            Received::Message(message) if message["id"] != id => continue,
            Received::Message(message) => match message["type"].as_str() {
                Some("next") => payloads.push(message["payload"].clone()),
                Some("complete") => return payloads,
                _ => panic!("unexpected message {message}"),
            },
            Received::Closed(frame) => panic!("closed before completing: {frame:?}"),
        }
    }
}

/// Subscribes to the reply `message_id` and waits for its first delta.
async fn follow(app: &TestApp, token: &str, message_id: &str) -> (Connection, String) {
    let mut connection = Connection::open(&app.ws_url(), token).await.unwrap();
    connection
        .subscribe("reply", STREAM, json!({ "id": message_id }))
        .await
        .unwrap();
    loop {
        match connection.receive(Duration::from_secs(10)).await.unwrap() {
            Received::Message(message) if message["type"] == "next" => {
                let event = &message["payload"]["data"]["messageStream"];
                if let Some(delta) = event["delta"].as_str() {
                    return (connection, delta.to_owned());
                }
            }
            Received::Message(_) => {}
            Received::Closed(frame) => panic!("closed early: {frame:?}"),
        }
    }
}

fn text_of(payloads: &[Value]) -> String {
    payloads
        .iter()
        .filter_map(|payload| payload["data"]["messageStream"]["delta"].as_str())
        .collect()
}

fn outcome_of(payloads: &[Value]) -> Value {
    payloads
        .iter()
        .map(|payload| &payload["data"]["messageStream"]["outcome"])
        .find(|outcome| !outcome.is_null())
        .cloned()
        .expect("the stream ended without an outcome")
}

async fn expect_going_away(connection: &mut Connection) {
    match connection.receive(Duration::from_secs(10)).await.unwrap() {
        Received::Closed(Some((code, reason))) => {
            assert_eq!(code, GOING_AWAY);
            assert_eq!(reason, "server is shutting down");
        }
        other => panic!("expected close 1001, got {other:?}"),
    }
}

/// Returns the stored reply's status and content, and its usage record's output tokens
/// and estimate flag.
async fn stored_reply(app: &TestApp, message_id: &str) -> (String, String, i64, bool) {
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT m.status, m.content, u.output_tokens, u.estimated
             FROM messages m JOIN usage_records u ON u.message_id = m.id
             WHERE m.id = $1::uuid",
            [message_id.into()],
        ))
        .await
        .unwrap()
        .expect("the reply has a usage record");
    (
        row.try_get("", "status").unwrap(),
        row.try_get("", "content").unwrap(),
        row.try_get("", "output_tokens").unwrap(),
        row.try_get("", "estimated").unwrap(),
    )
}

/// A reply of `tokens` chunks, 100 ms apart, being streamed to a subscriber that has
/// received its first delta.
struct Streaming {
    app: TestApp,
    chat: Chat,
    message_id: String,
    connection: Connection,
    first: String,
}

async fn streaming_reply(email: &str, tokens: usize, env: Vec<(String, String)>) -> Streaming {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens,
            gap: Duration::from_millis(100),
            ..MockConfig::default()
        },
        env,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let chat = app.start_chat(email, "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let message_id = app
        .send_message(&token, &chat.conversation_id, "Hello")
        .await;
    let (connection, first) = follow(&app, &token, &message_id).await;
    Streaming {
        app,
        chat,
        message_id,
        connection,
        first,
    }
}

#[tokio::test]
async fn running_reply_finishes_before_stop() {
    let Streaming {
        mut app,
        chat,
        message_id,
        mut connection,
        first,
        ..
    } = streaming_reply("drain@example.com", 20, Vec::new()).await;

    let api = app.stop_api();
    // The instance reports itself unready and rejects new messages, even on a connection
    // that is still open, while the running reply goes on.
    app.eventually(Duration::from_secs(5), || async {
        app.platform.generations.is_draining().then_some(())
    })
    .await
    .unwrap();
    let checks = service::health::readiness(&app.platform, &[]).await;
    let shutdown = checks
        .iter()
        .find(|check| check.name == "shutdown")
        .unwrap();
    assert_eq!(
        shutdown.error.as_deref(),
        Some("this instance is shutting down")
    );
    connection
        .subscribe(
            "late",
            SEND,
            json!({ "input": { "conversationId": chat.conversation_id, "content": "Too late" } }),
        )
        .await
        .unwrap();
    let rejected = until_complete(&mut connection, "late").await;
    assert_eq!(
        rejected[0]["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{rejected:?}"
    );

    let rest = until_complete(&mut connection, "reply").await;
    let text = first + &text_of(&rest);
    assert_eq!(text, reply_tokens(20).concat());
    let outcome = outcome_of(&rest);
    assert_eq!(outcome["status"], "COMPLETED");
    assert_eq!(outcome["finishReason"], "STOP");
    expect_going_away(&mut connection).await;
    tokio::time::timeout(Duration::from_secs(10), api)
        .await
        .expect("the api stopped")
        .unwrap()
        .unwrap();

    let (status, content, output_tokens, estimated) = stored_reply(&app, &message_id).await;
    assert_eq!(status, "completed");
    assert_eq!(content, text);
    assert_eq!(output_tokens, 20);
    assert!(!estimated);
    // The listener is closed: new connections are refused.
    assert!(
        app.http()
            .get(format!("{}/health/live", app.base_url))
            .send()
            .await
            .is_err()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn reply_past_grace_stored_interrupted() {
    let Streaming {
        mut app,
        message_id,
        mut connection,
        first,
        ..
    } = streaming_reply(
        "interrupt@example.com",
        100,
        vec![("SHUTDOWN_GRACE_SECONDS".into(), "1".into())],
    )
    .await;

    let api = app.stop_api();
    let rest = until_complete(&mut connection, "reply").await;
    let text = first + &text_of(&rest);
    let outcome = outcome_of(&rest);
    assert_eq!(outcome["status"], "INTERRUPTED");
    assert_eq!(outcome["finishReason"], "ERROR");
    assert_eq!(
        outcome["error"],
        "the server shut down before the reply finished"
    );
    assert_eq!(outcome["usageEstimated"], true);
    expect_going_away(&mut connection).await;
    tokio::time::timeout(Duration::from_secs(15), api)
        .await
        .expect("the api stopped")
        .unwrap()
        .unwrap();

    // What was streamed is kept and paid for: the usage is estimated from that text.
    let (status, content, output_tokens, estimated) = stored_reply(&app, &message_id).await;
    assert_eq!(status, "interrupted");
    assert_eq!(content, text);
    assert!(!content.is_empty());
    assert!(reply_tokens(100).concat().starts_with(&content));
    assert!(output_tokens > 0);
    assert!(estimated);
    assert_eq!(outcome["outputTokens"].as_i64(), Some(output_tokens));
    app.shutdown().await;
}

#[tokio::test]
async fn idle_websocket_gets_going_away() {
    let mut app = TestApp::spawn().await.unwrap();
    let owner = app.register("idle-ws@example.com", "Idle").await;
    let mut connection = Connection::open(&app.ws_url(), &owner.access_token)
        .await
        .unwrap();
    let api = app.stop_api();
    expect_going_away(&mut connection).await;
    tokio::time::timeout(Duration::from_secs(10), api)
        .await
        .expect("the api stopped")
        .unwrap()
        .unwrap();
    app.shutdown().await;
}

async fn uncounted(app: &TestApp) -> i64 {
    app.db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*)::bigint AS n FROM usage_records WHERE counted_at IS NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

#[tokio::test]
async fn queued_work_done_by_next_worker() {
    let app = TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let start_worker = || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(worker::run(app.platform.clone(), listener, stop.clone()));
        (stop, task)
    };

    let (stop, first) = start_worker().await;
    let worker_check = || async {
        let checks = service::health::readiness(&app.platform, &[]).await;
        checks
            .into_iter()
            .find(|check| check.name == "worker")
            .unwrap()
    };
    app.eventually(Duration::from_secs(10), || async {
        worker_check().await.passed().then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the worker stopped")
        .unwrap()
        .unwrap();
    // A stopped worker removes its heartbeat at once rather than letting it age.
    assert_eq!(
        worker_check().await.error.as_deref(),
        Some("no worker has written a heartbeat")
    );

    let chat = app.start_chat("restart@example.com", "Be brief.").await;
    let message_id = app
        .send_message(&chat.owner.access_token, &chat.conversation_id, "Hello")
        .await;
    app.wait_for_reply(&chat.owner.access_token, &message_id)
        .await;
    assert_eq!(uncounted(&app).await, 1);

    let (stop, second) = start_worker().await;
    app.eventually(Duration::from_secs(15), || async {
        (uncounted(&app).await == 0).then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
    second.await.unwrap().unwrap();
    app.shutdown().await;
}
