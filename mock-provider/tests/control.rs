//! The control routes under `/mock/replies`: queueing, counting and clearing scripted replies
//! over HTTP, and serving them to chat requests.

#![allow(clippy::unwrap_used)]

use mock_provider::{MockConfig, MockProvider, MockReply, reply_tokens};
use serde_json::{Value, json};

fn replies_url(mock: &MockProvider) -> String {
    format!("http://{}/mock/replies", mock.addr())
}

/// Posts `body` as JSON text to the control route, without a key.
async fn queue(mock: &MockProvider, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(replies_url(mock))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn queued(mock: &MockProvider) -> u64 {
    let response = reqwest::get(replies_url(mock)).await.unwrap();
    assert_eq!(response.status(), 200);
    let count: Value = response.json().await.unwrap();
    count["queued"].as_u64().unwrap()
}

/// Sends a non-streamed OpenAI chat request and returns its first choice.
async fn chat(mock: &MockProvider) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("sk-test")
        .json(&json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "What is 6 times 7?"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    completion["choices"][0].clone()
}

fn assert_default_reply(choice: &Value) {
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(
        choice["message"]["content"],
        reply_tokens(MockConfig::default().tokens).concat()
    );
}

#[tokio::test]
async fn queued_replies_served_in_order() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let tool_calls = r#"{"toolCalls": [
        {"name": "calculate", "arguments": {"operation": "multiply", "a": 6, "b": 7}},
        {"name": "current_time"}
    ]}"#;

    let first = queue(&mock, tool_calls).await;
    let second = queue(&mock, r#"{"text": "6 x 7 = 42."}"#).await;

    assert_eq!(first.status(), 204);
    assert_eq!(second.status(), 204);
    assert_eq!(queued(&mock).await, 2);

    let calls = chat(&mock).await;
    assert_eq!(calls["finish_reason"], "tool_calls");
    assert_eq!(calls["message"]["content"], Value::Null);
    let tool_calls = &calls["message"]["tool_calls"];
    assert_eq!(tool_calls.as_array().unwrap().len(), 2);
    assert_eq!(tool_calls[0]["id"], "call_mock_1_0");
    assert_eq!(tool_calls[0]["function"]["name"], "calculate");
    let arguments: Value =
        serde_json::from_str(tool_calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"operation": "multiply", "a": 6, "b": 7}));
    assert_eq!(tool_calls[1]["function"]["name"], "current_time");
    assert_eq!(tool_calls[1]["function"]["arguments"], "{}");
    assert_eq!(queued(&mock).await, 1);

    let text = chat(&mock).await;
    assert_eq!(text["finish_reason"], "stop");
    assert_eq!(text["message"]["content"], "6 x 7 = 42.");
    assert_eq!(queued(&mock).await, 0);

    assert_default_reply(&chat(&mock).await);
    assert_eq!(
        mock.requests().len(),
        3,
        "control requests are not recorded"
    );
}

#[tokio::test]
async fn queue_shared_with_reply_next() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();

    mock.reply_next(MockReply::Text("From the library.".to_owned()));
    let response = queue(&mock, r#"{"text": "From HTTP."}"#).await;
    mock.reply_next(MockReply::Text("From the library again.".to_owned()));

    assert_eq!(response.status(), 204);
    assert_eq!(queued(&mock).await, 3);
    assert_eq!(chat(&mock).await["message"]["content"], "From the library.");
    assert_eq!(chat(&mock).await["message"]["content"], "From HTTP.");
    assert_eq!(
        chat(&mock).await["message"]["content"],
        "From the library again."
    );
    assert_eq!(queued(&mock).await, 0);
}

#[tokio::test]
async fn body_without_json_content_type_accepted() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();

    // `curl -d` sends this content type unless an `-H` option sets another.
    let response = reqwest::Client::new()
        .post(replies_url(&mock))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"text": "Plain curl."}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    assert_eq!(chat(&mock).await["message"]["content"], "Plain curl.");
}

#[tokio::test]
async fn string_arguments_sent_raw() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();

    let response = queue(
        &mock,
        r#"{"toolCalls": [{"name": "calculate", "arguments": "{\"a\":"}]}"#,
    )
    .await;

    assert_eq!(response.status(), 204);
    let choice = chat(&mock).await;
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"]["arguments"],
        r#"{"a":"#
    );
}

#[tokio::test]
async fn invalid_bodies_rejected() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let cases = [
        ("{}", "body must have either toolCalls or text"),
        ("", "body is not valid JSON"),
        ("{", "body is not valid JSON"),
        (r#"["text"]"#, "body must be a JSON object"),
        (
            r#"{"text": "a", "toolCalls": [{"name": "calculate"}]}"#,
            "not both",
        ),
        (r#"{"text": 42}"#, "text must be a string"),
        (r#"{"txt": "a"}"#, "unknown field `txt`"),
        (
            r#"{"toolCalls": {"name": "calculate"}}"#,
            "must be an array",
        ),
        (r#"{"toolCalls": []}"#, "at least one tool call"),
        (
            r#"{"toolCalls": ["calculate"]}"#,
            "toolCalls[0] must be an object",
        ),
        (
            r#"{"toolCalls": [{"name": "calculate"}, {"arguments": {}}]}"#,
            "toolCalls[1].name must be a non-empty string",
        ),
        (
            r#"{"toolCalls": [{"name": ""}]}"#,
            "toolCalls[0].name must be a non-empty string",
        ),
        (
            r#"{"toolCalls": [{"name": "calculate", "args": {}}]}"#,
            "unknown field `args` in toolCalls[0]",
        ),
    ];

    for (body, expected) in cases {
        let response = queue(&mock, body).await;

        assert_eq!(response.status(), 400, "body: {body}");
        let error: Value = response.json().await.unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(message.contains(expected), "body: {body}, error: {message}");
    }
    assert_eq!(queued(&mock).await, 0);
    assert_default_reply(&chat(&mock).await);
}

#[tokio::test]
async fn delete_clears_queue() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    queue(&mock, r#"{"text": "First."}"#).await;
    queue(&mock, r#"{"toolCalls": [{"name": "list_tasks"}]}"#).await;
    mock.reply_next(MockReply::Text("From the library.".to_owned()));
    assert_eq!(queued(&mock).await, 3);

    let response = reqwest::Client::new()
        .delete(replies_url(&mock))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    assert_eq!(queued(&mock).await, 0);
    assert_default_reply(&chat(&mock).await);
}

#[tokio::test]
async fn other_paths_under_mock_not_found() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();

    let response = reqwest::get(format!("http://{}/mock/failures", mock.addr()))
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
}
