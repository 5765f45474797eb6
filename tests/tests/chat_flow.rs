//! The whole flow over the real API: register, agent, conversation, streamed reply over a
//! WebSocket, usage record with its exact cost, and the worker's counters.

use std::time::Duration;

use mock_provider::{prompt_tokens, reply_tokens};
use serde_json::json;
use tests::{MockConfig, TestApp, TestOptions, graphql_ws::collect_subscription};

const STREAM_QUERY: &str = "subscription($id: ID!, $after: String) {
    messageStream(messageId: $id, after: $after) {
        cursor kind delta
        outcome { content status finishReason inputTokens outputTokens costMicros usageEstimated }
    } }";

#[tokio::test]
async fn chat_streams_reply_and_records_usage() {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: 8,
            gap: Duration::from_millis(20),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("ada@example.com", "Analytical Engines").await;
    let agent_id = app
        .create_agent(&owner.access_token, "You are terse.")
        .await;
    let conversation_id = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello there")
        .await;

    let events = collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        STREAM_QUERY,
        json!({ "id": message_id }),
        Duration::from_secs(20),
    )
    .await
    .unwrap();

    let expected_tokens = reply_tokens(8);
    let deltas: Vec<&str> = events
        .iter()
        .filter(|event| event["data"]["messageStream"]["kind"] == "DELTA")
        .map(|event| event["data"]["messageStream"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(
        deltas,
        expected_tokens
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let done = &events.last().unwrap()["data"]["messageStream"];
    assert_eq!(done["kind"], "DONE");
    let outcome = &done["outcome"];
    assert_eq!(outcome["content"], expected_tokens.concat());
    assert_eq!(outcome["status"], "COMPLETED");
    assert_eq!(outcome["finishReason"], "STOP");
    assert_eq!(outcome["usageEstimated"], false);

    // The mock reports prompt tokens by its documented rule; gpt-4o-mini costs
    // 150,000 and 600,000 micro-dollars per million input and output tokens.
    let request = app.mock.requests().last().cloned().unwrap();
    let input_tokens = prompt_tokens(&request);
    let expected_cost = (input_tokens * 150_000 + 8 * 600_000 + 500_000) / 1_000_000;
    assert_eq!(outcome["inputTokens"], input_tokens);
    assert_eq!(outcome["outputTokens"], 8);
    assert_eq!(outcome["costMicros"], expected_cost);

    let records = app
        .data(
            Some(&owner.access_token),
            "{ usageRecords { edges { node { provider model inputTokens outputTokens
                costMicros estimated messageId } } } }",
            json!({}),
        )
        .await;
    let record = &records["usageRecords"]["edges"][0]["node"];
    assert_eq!(record["provider"], "OPENAI");
    assert_eq!(record["model"], "gpt-4o-mini");
    assert_eq!(record["inputTokens"], input_tokens);
    assert_eq!(record["outputTokens"], 8);
    assert_eq!(record["costMicros"], expected_cost);
    assert_eq!(record["estimated"], false);
    assert_eq!(record["messageId"], message_id);

    let counted = app
        .eventually(Duration::from_secs(15), || async {
            let data = app
                .data(
                    Some(&owner.access_token),
                    "{ usage { inputTokens outputTokens costMicros recordCount } }",
                    json!({}),
                )
                .await;
            (data["usage"]["recordCount"] == 1).then_some(data["usage"].clone())
        })
        .await
        .unwrap();
    assert_eq!(counted["inputTokens"], input_tokens);
    assert_eq!(counted["outputTokens"], 8);
    assert_eq!(counted["costMicros"], expected_cost);
    app.shutdown().await;
}

#[tokio::test]
async fn late_subscriber_receives_whole_reply() {
    let app = TestApp::spawn().await.unwrap();
    let tests::Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("late@example.com", "Be brief.").await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hi")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;

    let events = collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        STREAM_QUERY,
        json!({ "id": message_id }),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let text: String = events
        .iter()
        .filter_map(|event| event["data"]["messageStream"]["delta"].as_str())
        .collect();
    assert_eq!(text, reply["content"].as_str().unwrap());
    assert_eq!(text, reply_tokens(MockConfig::default().tokens).concat());
    let done = &events.last().unwrap()["data"]["messageStream"];
    assert_eq!(done["kind"], "DONE");
    assert_eq!(done["outcome"]["content"], reply["content"]);

    // Resuming after the second delta yields the rest and nothing twice.
    let cursor = events[1]["data"]["messageStream"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        STREAM_QUERY,
        json!({ "id": message_id, "after": cursor }),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(rest.len(), events.len() - 2);
    app.shutdown().await;
}

#[tokio::test]
async fn provider_receives_instructions_and_newest_twenty() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("window@example.com", "Window Ltd").await;
    let agent_id = app
        .create_agent(&owner.access_token, "Answer in French.")
        .await;
    let conversation_id = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    for turn in 0..13 {
        let message_id = app
            .send_message(
                &owner.access_token,
                &conversation_id,
                &format!("turn {turn}"),
            )
            .await;
        app.wait_for_reply(&owner.access_token, &message_id).await;
    }
    // 13 turns stored 26 messages; the 14th user message makes 27.
    let last_id = app
        .send_message(&owner.access_token, &conversation_id, "turn 13")
        .await;
    app.wait_for_reply(&owner.access_token, &last_id).await;

    let request = app.mock.requests().last().cloned().unwrap();
    let messages = request["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], "Answer in French.");
    let conversation = &messages[1..];
    assert_eq!(conversation.len(), 20);
    assert_eq!(conversation.last().unwrap()["content"], "turn 13");
    assert_eq!(conversation.last().unwrap()["role"], "user");
    // The newest 20 of 27 start at the assistant reply to turn 3.
    assert_eq!(conversation[0]["role"], "assistant");
    assert_eq!(conversation[1]["content"], "turn 4");
    app.shutdown().await;
}

#[tokio::test]
async fn expired_stream_served_from_database() {
    let app = TestApp::spawn().await.unwrap();
    let tests::Chat {
        owner,
        conversation_id,
        ..
    } = app.start_chat("expired@example.com", "Be brief.").await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hi")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;

    // What the stream's time-to-live does an hour after the reply ends.
    let key = service::chat::events::stream_key(&app.platform.redis, message_id.parse().unwrap());
    let mut redis = app.platform.redis.shared().await.unwrap();
    let _: () = redis::AsyncCommands::del(&mut redis, key).await.unwrap();

    let events = collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        STREAM_QUERY,
        json!({ "id": message_id }),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    let done = &events[0]["data"]["messageStream"];
    assert_eq!(done["kind"], "DONE");
    assert_eq!(done["outcome"]["content"], reply["content"]);
    assert_eq!(done["outcome"]["costMicros"], reply["costMicros"]);
    app.shutdown().await;
}

#[tokio::test]
async fn unpriced_model_never_reads_as_free() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("unpriced@example.com", "Unpriced Co").await;
    let token = Some(owner.access_token.as_str());
    let agent = app
        .data(
            token,
            "mutation { createAgent(input: { name: \"Odd\", instructions: \"Hi.\",
                provider: OPENAI, model: \"gpt-unlisted\" }) { agent { id } } }",
            json!({}),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    let conversation_id = app.create_conversation(&owner.access_token, agent_id).await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    assert_eq!(reply["status"], "COMPLETED");
    assert_eq!(reply["costMicros"], serde_json::Value::Null);
    assert!(reply["outputTokens"].as_i64().unwrap() > 0);

    let records = app
        .data(
            token,
            "{ usageRecords { edges { node { priceKnown costMicros } } } }",
            json!({}),
        )
        .await;
    let record = &records["usageRecords"]["edges"][0]["node"];
    assert_eq!(record["priceKnown"], false);
    assert_eq!(record["costMicros"], 0);

    let usage = app
        .eventually(Duration::from_secs(15), || async {
            let data = app
                .data(
                    token,
                    "{ usage { recordCount unpricedRecordCount costMicros } }",
                    json!({}),
                )
                .await;
            (data["usage"]["recordCount"] == 1).then_some(data["usage"].clone())
        })
        .await
        .unwrap();
    assert_eq!(usage["unpricedRecordCount"], 1);
    assert_eq!(usage["costMicros"], 0);
    app.shutdown().await;
}
