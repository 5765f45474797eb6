//! Chat with an agent that has tools: the reply runs the same tool loop as agent runs, and
//! its stream shows the calls and results as they happen.

use std::time::Duration;

use serde_json::{Value, json};
use tests::{MockReply, MockToolCall, TestApp, TestOptions, graphql_ws, tool_server::ToolServer};

async fn agent_chat(app: &TestApp, email: &str, extra: Value) -> (String, String) {
    let owner = app.register(email, "Chat tools").await;
    let mut input = json!({ "name": "Calculator", "instructions": "Use the tools.",
                            "provider": "OPENAI", "model": "gpt-4o-mini",
                            "tools": ["calculate"] });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let agent = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": input }),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    let conversation = app.create_conversation(&owner.access_token, agent_id).await;
    (owner.access_token, conversation)
}

fn multiply() -> MockReply {
    MockReply::ToolCalls(vec![MockToolCall {
        name: "calculate".into(),
        arguments: json!({"operation": "multiply", "a": 6, "b": 7}),
    }])
}

const MESSAGE: &str = "query($id: ID!) { message(id: $id) { status content finishReason error
    inputTokens outputTokens costMicros toolExecutions { step toolName status result } } }";

#[tokio::test]
async fn reply_streams_tool_calls() {
    let app = TestApp::spawn().await.unwrap();
    let (token, conversation) = agent_chat(&app, "chat-tools@example.com", json!({})).await;
    app.mock.reply_next(multiply());
    app.mock.reply_next(MockReply::Text("It is 42.".into()));

    let message_id = app.send_message(&token, &conversation, "6 x 7?").await;
    let events = graphql_ws::collect_subscription(
        &app.ws_url(),
        &token,
        "subscription($id: ID!) { messageStream(messageId: $id) { kind delta
            toolCall { step callId name arguments } toolResult { step callId status result }
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
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .filter(|kind| *kind != "DELTA")
        .collect();
    assert_eq!(kinds, ["TOOL_CALL", "TOOL_RESULT", "DONE"]);
    let call = &events[0]["toolCall"];
    assert_eq!(call["step"], 1);
    assert_eq!(call["name"], "calculate");
    assert_eq!(
        call["arguments"],
        json!({"operation": "multiply", "a": 6, "b": 7})
    );
    let result = &events[1]["toolResult"];
    assert_eq!(result["callId"], call["callId"]);
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(result["result"], r#"{"result":42.0}"#);
    assert_eq!(events.last().unwrap()["outcome"]["content"], "It is 42.");

    let message = app
        .data(Some(&token), MESSAGE, json!({ "id": message_id }))
        .await;
    let message = &message["message"];
    assert_eq!(message["status"], "COMPLETED");
    assert_eq!(message["finishReason"], "STOP");
    assert_eq!(message["content"], "It is 42.");
    assert_eq!(
        message["toolExecutions"],
        json!([{ "step": 1, "toolName": "calculate", "status": "SUCCEEDED",
                 "result": r#"{"result":42.0}"# }])
    );
    // Both model calls have a usage record, and the message's counts are their sum.
    let records = app
        .data(
            Some(&token),
            "{ usageRecords(first: 10) { edges { node { inputTokens outputTokens } } } }",
            json!({}),
        )
        .await;
    let records = records["usageRecords"]["edges"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let sum = |field: &str| {
        records
            .iter()
            .map(|edge| edge["node"][field].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(message["inputTokens"], sum("inputTokens"));
    assert_eq!(message["outputTokens"], sum("outputTokens"));
    let second = &app.mock.requests()[1];
    let tool_message = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|message| message["role"] == "tool")
        .unwrap();
    assert_eq!(tool_message["content"], r#"{"result":42.0}"#);
    app.shutdown().await;
}

#[tokio::test]
async fn reply_stops_at_step_limit() {
    let app = TestApp::spawn().await.unwrap();
    let (token, conversation) =
        agent_chat(&app, "chat-limit@example.com", json!({ "maxSteps": 1 })).await;
    app.mock.reply_next(multiply());

    let message_id = app.send_message(&token, &conversation, "6 x 7?").await;
    app.wait_for_reply(&token, &message_id).await;
    let message = app
        .data(Some(&token), MESSAGE, json!({ "id": message_id }))
        .await;
    let message = &message["message"];
    assert_eq!(message["status"], "FAILED");
    assert_eq!(
        message["error"],
        "the agent reached its limit of 1 steps without a final answer"
    );
    assert_eq!(message["toolExecutions"], json!([]));
    assert_eq!(app.mock.requests().len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn stop_during_tool_call() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.1/32".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let tools = ToolServer::start().await.unwrap();
    let owner = app.register("chat-stop@example.com", "Chat stop").await;
    let token = owner.access_token.as_str();
    app.data(
        Some(token),
        "mutation($input: CreateToolInput!) { createTool(input: $input) { tool { id } } }",
        json!({ "input": { "name": "block", "description": "Blocks.",
                           "parameters": {"type": "object"}, "url": tools.url("/block"),
                           "timeoutMs": 120000 } }),
    )
    .await;
    let agent = app
        .data(
            Some(token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "name": "Blocker", "instructions": "Block.", "provider": "OPENAI",
                               "model": "gpt-4o-mini", "tools": ["block"] } }),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    let conversation = app.create_conversation(token, agent_id).await;
    app.mock.reply_next(MockReply::ToolCalls(vec![MockToolCall {
        name: "block".into(),
        arguments: json!({}),
    }]));

    let message_id = app.send_message(token, &conversation, "Block.").await;
    tokio::time::timeout(Duration::from_secs(20), tools.blocked())
        .await
        .expect("the blocking tool was not called");
    let stopped = app
        .data(
            Some(token),
            "mutation($input: StopGenerationInput!) { stopGeneration(input: $input) {
                message { status finishReason toolExecutions { status error } } } }",
            json!({ "input": { "messageId": message_id } }),
        )
        .await;
    let message = &stopped["stopGeneration"]["message"];
    assert_eq!(message["status"], "COMPLETED");
    assert_eq!(message["finishReason"], "CANCELLED");
    assert_eq!(
        message["toolExecutions"],
        json!([{ "status": "UNKNOWN", "error": "the reply was stopped while the call ran" }])
    );
    app.shutdown().await;
}
