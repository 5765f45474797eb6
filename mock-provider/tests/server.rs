//! The mock server's wire format, authentication and behaviour with disconnecting clients.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use mock_provider::{
    MockConfig, MockFailure, MockProvider, MockReply, MockToolCall, prompt_tokens, reply_tokens,
};
use serde_json::{Value, json};

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"}
        ],
        "stream": stream,
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

async fn post(mock: &MockProvider, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("sk-test")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Splits an SSE body into the data of its events, and checks the keep-alive comment first.
fn sse_data(body: &str) -> Vec<String> {
    assert!(body.starts_with(": keep-alive\n\n"), "body: {body}");
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Builds a reply of two calls: one with JSON arguments, and one with malformed argument text
/// that the mock sends raw.
fn scripted_calls() -> MockReply {
    MockReply::ToolCalls(vec![
        MockToolCall {
            name: "get_weather".to_owned(),
            arguments: json!({"city": "Paris"}),
        },
        MockToolCall {
            name: "get_time".to_owned(),
            arguments: json!(r#"{"zone":"#),
        },
    ])
}

#[tokio::test]
async fn stream_tool_calls_follow_openai_format() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    mock.reply_next(scripted_calls());

    let response = post(&mock, &chat_body(true, true)).await;

    assert_eq!(response.status(), 200);
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.len(), 1 + 2 * 3 + 1 + 1 + 1, "data: {data:?}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null, "refusal": null})
    );
    let expected = [
        ("get_weather", r#"{"city":"Paris"}"#),
        ("get_time", r#"{"zone":"#),
    ];
    for (index, (name, arguments)) in expected.into_iter().enumerate() {
        let first = 1 + 3 * index;
        assert_eq!(
            chunks[first]["choices"][0]["delta"]["tool_calls"],
            json!([{
                "index": index,
                "id": format!("call_mock_1_{index}"),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }])
        );
        let mut fragments = Vec::new();
        for chunk in &chunks[first + 1..first + 3] {
            let call = &chunk["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(call["index"], index, "{chunk}");
            assert_eq!(call.get("id"), None, "{chunk}");
            fragments.push(call["function"]["arguments"].as_str().unwrap());
        }
        assert!(fragments.iter().all(|f| !f.is_empty()), "{fragments:?}");
        assert_eq!(fragments.concat(), arguments);
    }
    assert_eq!(chunks[7]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[8]["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn completion_tool_calls_follow_openai_format() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    mock.reply_next(scripted_calls());

    let response = post(&mock, &chat_body(false, false)).await;

    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {
                "id": "call_mock_1_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": r#"{"city":"Paris"}"#},
            },
            {
                "id": "call_mock_1_1",
                "type": "function",
                "function": {"name": "get_time", "arguments": r#"{"zone":"#},
            },
        ])
    );
    assert_eq!(completion["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn stream_with_usage_follows_openai_format() {
    let mock = MockProvider::start(MockConfig {
        tokens: 3,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let body = chat_body(true, true);

    let response = post(&mock, &body).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.len(), 1 + 3 + 1 + 1 + 1, "data: {data:?}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let contents: Vec<&str> = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, reply_tokens(3));
    assert_eq!(chunks[1]["usage"], Value::Null);
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["prompt_tokens"], prompt_tokens(&body));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn stream_without_usage_option() {
    let mock = MockProvider::start(MockConfig {
        tokens: 2,
        ..MockConfig::default()
    })
    .await
    .unwrap();

    let response = post(&mock, &chat_body(true, false)).await;

    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.len(), 1 + 2 + 1 + 1, "data: {data:?}");
    assert!(
        data.iter().all(|d| !d.contains("\"usage\"")),
        "data: {data:?}"
    );
}

#[tokio::test]
async fn prompt_tokens_rule() {
    // "Be brief." is 9 characters (3 tokens), "Hello there" 11 (3 tokens).
    assert_eq!(prompt_tokens(&chat_body(false, false)), 6);
}

#[tokio::test]
async fn completion_not_streamed() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});

    let response = post(&mock, &body).await;

    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        reply_tokens(4).concat()
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "length");
    assert_eq!(completion["usage"]["completion_tokens"], 4);
    assert_eq!(completion["usage"]["prompt_tokens"], 1);
}

#[tokio::test]
async fn missing_bearer_rejected() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/models", mock.base_url());

    let without = client.get(&url).send().await.unwrap();
    let empty = client
        .get(&url)
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    let with = client
        .get(&url)
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap();

    assert_eq!(without.status(), 401);
    let error: Value = without.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
    assert_eq!(empty.status(), 401);
    assert_eq!(with.status(), 200);
    let models: Value = with.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "mock-model");
}

#[tokio::test]
async fn invalid_bodies_rejected() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();

    let missing_messages = post(&mock, &json!({"model": "m"})).await;
    let not_json = reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("sk-test")
        .body("{")
        .send()
        .await
        .unwrap();

    assert_eq!(missing_messages.status(), 400);
    let error: Value = missing_messages.json().await.unwrap();
    assert_eq!(error["error"]["param"], "messages");
    assert_eq!(not_json.status(), 400);
    assert_eq!(mock.requests(), vec![json!({"model": "m"})]);
}

#[tokio::test]
async fn requests_recorded_in_order() {
    let mock = MockProvider::start(MockConfig {
        tokens: 1,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let first = chat_body(false, false);
    let second = chat_body(true, true);

    post(&mock, &first).await.text().await.unwrap();
    post(&mock, &second).await.text().await.unwrap();

    assert_eq!(mock.requests(), vec![first, second]);
}

#[tokio::test]
async fn status_failure_sets_headers_once() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    mock.fail_next(MockFailure::Status {
        status: 429,
        code: None,
        retry_after: Some(Duration::from_millis(1200)),
    });

    let failed = post(&mock, &chat_body(false, false)).await;
    let next = post(&mock, &chat_body(false, false)).await;

    assert_eq!(failed.status(), 429);
    assert_eq!(failed.headers()["retry-after-ms"], "1200");
    assert_eq!(failed.headers()["retry-after"], "2");
    let error: Value = failed.json().await.unwrap();
    assert_eq!(error["error"]["type"], "requests");
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn client_disconnect_mid_stream_tolerated() {
    let config = MockConfig {
        tokens: 50,
        gap: Duration::from_millis(20),
        ..MockConfig::default()
    };
    let mock = MockProvider::start(config).await.unwrap();

    let response = post(&mock, &chat_body(true, true)).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    drop(body);

    assert!(first.starts_with(b": keep-alive"));
    let next = post(
        &mock,
        &json!({"model": "m", "messages": [], "max_tokens": 1}),
    )
    .await;
    assert_eq!(next.status(), 200);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn listens_on_ipv6_loopback() {
    let addr = "[::1]:0".parse().unwrap();
    let Ok(mock) = MockProvider::start_on(addr, MockConfig::default()).await else {
        // Machines without IPv6 cannot bind ::1; the IPv4 tests cover the server itself.
        return;
    };

    assert!(
        mock.base_url().starts_with("http://[::1]:"),
        "base URL: {}",
        mock.base_url()
    );
    let response = reqwest::Client::new()
        .get(format!("{}/models", mock.base_url()))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
