//! Two api replicas on one database and Redis: a reply generated in one is followed and
//! stopped through the other.

use std::time::Duration;

use serde_json::{Value, json};
use tests::{MockConfig, TestApp, TestOptions, graphql_ws};

async fn slow_app(tokens: usize) -> TestApp {
    TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens,
            gap: Duration::from_millis(20),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn reply_followed_through_other_replica() {
    let app = slow_app(30).await;
    let other = app.start_second_api().await.unwrap();
    let chat = app.start_chat("replicas@example.com", "Be brief.").await;
    let token = &chat.owner.access_token;

    let message_id = app
        .send_message(token, &chat.conversation_id, "Hello")
        .await;
    let other_ws = format!("{}/graphql/ws", other.replacen("http", "ws", 1));
    let events = graphql_ws::collect_subscription(
        &other_ws,
        token,
        "subscription($id: ID!) { messageStream(messageId: $id) { kind delta
            outcome { content status } } }",
        json!({ "id": message_id }),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    let events: Vec<&Value> = events
        .iter()
        .map(|payload| &payload["data"]["messageStream"])
        .collect();
    let streamed: String = events
        .iter()
        .filter(|event| event["kind"] == "DELTA")
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    let done = events.last().unwrap();
    assert_eq!(done["kind"], "DONE");
    assert_eq!(done["outcome"]["status"], "COMPLETED");
    assert_eq!(done["outcome"]["content"], streamed.as_str());
    assert_eq!(streamed, mock_provider::reply_tokens(30).concat());
    app.shutdown().await;
}

#[tokio::test]
async fn stop_through_other_replica() {
    let app = slow_app(400).await;
    let other = app.start_second_api().await.unwrap();
    let chat = app.start_chat("replica-stop@example.com", "Talk.").await;
    let token = &chat.owner.access_token;
    let message_id = app
        .send_message(token, &chat.conversation_id, "Go on")
        .await;
    app.eventually(Duration::from_secs(10), || async {
        (!app.mock.requests().is_empty()).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let response: Value = app
        .http()
        .post(format!("{other}/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($input: StopGenerationInput!) { stopGeneration(input: $input) {
                message { id status finishReason content } } }",
            "variables": { "input": { "messageId": message_id } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(response["errors"].is_null(), "{response}");
    // The payload carries the stopped reply, although another replica stored it.
    let stopped = &response["data"]["stopGeneration"]["message"];
    assert_eq!(stopped["status"], "COMPLETED", "{response}");
    assert_eq!(stopped["finishReason"], "CANCELLED");

    // The replica that runs the generation stops it long before its 8 seconds of tokens.
    let message = app.wait_for_reply(token, &message_id).await;
    assert_eq!(message["content"], stopped["content"]);
    assert_eq!(message["status"], "COMPLETED");
    assert_eq!(message["finishReason"], "CANCELLED");
    let content = message["content"].as_str().unwrap();
    assert!(content.len() < mock_provider::reply_tokens(400).concat().len());
    app.shutdown().await;
}

#[tokio::test]
async fn reconnect_to_other_replica_mid_stream() {
    let app = slow_app(60).await;
    let other = app.start_second_api().await.unwrap();
    let chat = app.start_chat("failover@example.com", "Be brief.").await;
    let token = &chat.owner.access_token;
    let query = "subscription($id: ID!, $after: String) {
        messageStream(messageId: $id, after: $after) { cursor kind delta
            outcome { content } } }";
    let message_id = app
        .send_message(token, &chat.conversation_id, "Hello")
        .await;

    // Read five deltas from the first replica, then drop the connection mid-stream.
    let mut first = graphql_ws::Connection::open(&app.ws_url(), token)
        .await
        .unwrap();
    first
        .subscribe("1", query, json!({ "id": message_id }))
        .await
        .unwrap();
    let mut received = String::new();
    let mut cursor = String::new();
    for _ in 0..5 {
        let graphql_ws::Received::Message(message) =
            first.receive(Duration::from_secs(10)).await.unwrap()
        else {
            panic!("the connection closed early");
        };
        let event = &message["payload"]["data"]["messageStream"];
        assert_eq!(event["kind"], "DELTA", "{message}");
        received.push_str(event["delta"].as_str().unwrap());
        cursor = event["cursor"].as_str().unwrap().to_owned();
    }
    drop(first);

    // Resume on the other replica from the last cursor: the rest, nothing twice.
    let other_ws = format!("{}/graphql/ws", other.replacen("http", "ws", 1));
    let rest = graphql_ws::collect_subscription(
        &other_ws,
        token,
        query,
        json!({ "id": message_id, "after": cursor }),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let mut done = Value::Null;
    for payload in &rest {
        let event = &payload["data"]["messageStream"];
        match event["kind"].as_str() {
            Some("DELTA") => received.push_str(event["delta"].as_str().unwrap()),
            _ => done = event.clone(),
        }
    }
    let full = mock_provider::reply_tokens(60).concat();
    assert_eq!(received, full);
    assert_eq!(done["outcome"]["content"], full.as_str());
    app.shutdown().await;
}
