//! The raw wire of the Anthropic, Gemini, Groq and Ollama routes: event sequences, usage
//! placement, error bodies, key checks and the record of received requests.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mock_provider::{
    MockConfig, MockFailure, MockProvider, MockReply, MockToolCall, ReceivedRequest, WireFormat,
    prompt_tokens, reply_tokens,
};
use serde_json::{Value, json};

async fn start(tokens: usize) -> MockProvider {
    let config = MockConfig {
        tokens,
        ..MockConfig::default()
    };
    MockProvider::start(config).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn status_failure(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> MockFailure {
    MockFailure::Status {
        status,
        code: code.map(str::to_owned),
        retry_after,
    }
}

/// Splits a server-sent event body into `(event name, data)` pairs. Line endings may be LF
/// or CRLF.
fn sse_events(body: &str) -> Vec<(Option<String>, Value)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let mut name = None;
            let mut data = None;
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(value).unwrap());
                }
            }
            (
                name,
                data.unwrap_or_else(|| panic!("event without data: {event}")),
            )
        })
        .collect()
}

/// Builds a reply of two calls with JSON object arguments.
fn scripted_calls() -> MockReply {
    MockReply::ToolCalls(vec![
        MockToolCall {
            name: "get_weather".to_owned(),
            arguments: json!({"city": "Paris"}),
        },
        MockToolCall {
            name: "get_time".to_owned(),
            arguments: json!({"zone": "UTC"}),
        },
    ])
}

// Anthropic

fn anthropic_body(stream: bool) -> Value {
    json!({
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
        "stream": stream,
    })
}

async fn post_anthropic(mock: &MockProvider, body: &Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}/v1/messages",
            mock.base_url_for(WireFormat::Anthropic)
        ))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn anthropic_stream_event_sequence() {
    let mock = start(3).await;
    let body = anthropic_body(true);

    let response = post_anthropic(&mock, &body).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_deref().unwrap(), "{data}");
    }
    let start = &events[0].1["message"];
    assert_eq!(start["model"], "claude-haiku-4-5");
    assert_eq!(start["usage"]["input_tokens"], prompt_tokens(&body));
    assert_eq!(prompt_tokens(&body), 3 + 3);
    let texts: Vec<&str> = events[3..6]
        .iter()
        .map(|(_, data)| data["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, reply_tokens(3));
    assert_eq!(events[3].1["delta"]["type"], "text_delta");
    let delta = &events[7].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn anthropic_message_not_streamed() {
    let mock = start(12).await;
    let mut body = anthropic_body(false);
    body["max_tokens"] = json!(4);

    let response = post_anthropic(&mock, &body).await;

    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], reply_tokens(4).concat());
    assert_eq!(message["stop_reason"], "max_tokens");
    assert_eq!(message["usage"]["input_tokens"], 6);
    assert_eq!(message["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn anthropic_stream_tool_use_blocks() {
    let mock = start(3).await;
    mock.reply_next(scripted_calls());

    let response = post_anthropic(&mock, &anthropic_body(true)).await;

    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap())
        .collect();
    let block = [
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
    ];
    let expected: Vec<&str> = ["message_start", "ping"]
        .into_iter()
        .chain(block)
        .chain(block)
        .chain(["message_delta", "message_stop"])
        .collect();
    assert_eq!(names, expected);
    let calls = [
        ("get_weather", r#"{"city":"Paris"}"#),
        ("get_time", r#"{"zone":"UTC"}"#),
    ];
    for (index, (name, arguments)) in calls.into_iter().enumerate() {
        let first = 2 + 4 * index;
        assert_eq!(
            events[first].1,
            json!({
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": format!("toolu_mock_1_{index}"),
                    "name": name,
                    "input": {},
                },
            })
        );
        let mut fragments = String::new();
        for (_, data) in &events[first + 1..first + 3] {
            assert_eq!(data["index"], index, "{data}");
            assert_eq!(data["delta"]["type"], "input_json_delta", "{data}");
            fragments.push_str(data["delta"]["partial_json"].as_str().unwrap());
        }
        assert_eq!(fragments, arguments);
        assert_eq!(events[first + 3].1["index"], index);
    }
    let delta = &events[10].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn anthropic_message_tool_use_blocks() {
    let mock = start(3).await;
    mock.reply_next(scripted_calls());

    let response = post_anthropic(&mock, &anthropic_body(false)).await;

    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(
        message["content"],
        json!([
            {"type": "tool_use", "id": "toolu_mock_1_0", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_time",
             "input": {"zone": "UTC"}},
        ])
    );
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn anthropic_headers_required() {
    let mock = start(1).await;
    let url = format!("{}/v1/messages", mock.base_url_for(WireFormat::Anthropic));
    let body = anthropic_body(false);

    let without_key = client()
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let bearer_only = client()
        .post(&url)
        .bearer_auth("sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let without_version = client()
        .post(&url)
        .header("x-api-key", "sk-ant-test")
        .json(&body)
        .send()
        .await
        .unwrap();

    assert_eq!(without_key.status(), 401);
    let error: Value = without_key.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");
    assert_eq!(bearer_only.status(), 401);
    assert_eq!(without_version.status(), 400);
    let error: Value = without_version.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn anthropic_max_tokens_required() {
    let mock = start(1).await;
    let mut body = anthropic_body(false);
    body.as_object_mut().unwrap().remove("max_tokens");

    let response = post_anthropic(&mock, &body).await;

    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["message"], "max_tokens: Field required");
    assert_eq!(mock.requests(), [body]);
}

#[tokio::test]
async fn anthropic_failures_in_its_format() {
    let mock = start(4).await;
    mock.fail_next(status_failure(429, None, Some(Duration::from_millis(1500))));
    mock.fail_next(status_failure(400, Some("request_too_large"), None));
    mock.fail_next(MockFailure::ErrorMidStream { after_tokens: 1 });

    let limited = post_anthropic(&mock, &anthropic_body(false)).await;
    let coded = post_anthropic(&mock, &anthropic_body(false)).await;
    let failed_stream = post_anthropic(&mock, &anthropic_body(true)).await;

    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert!(limited.headers().get("retry-after-ms").is_none());
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error");
    let error: Value = coded.json().await.unwrap();
    assert_eq!(error["error"]["type"], "request_too_large");
    let events = sse_events(&failed_stream.text().await.unwrap());
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert_eq!(
        events[events.len() - 2].0.as_deref(),
        Some("content_block_delta")
    );
}

#[tokio::test]
async fn model_list_follows_auth_headers() {
    let mock = start(1).await;
    let url = format!("{}/v1/models", mock.base_url_for(WireFormat::Anthropic));

    let anthropic = client()
        .get(&url)
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let openai = client()
        .get(&url)
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap();

    assert_eq!(anthropic.status(), 200);
    let list: Value = anthropic.json().await.unwrap();
    assert_eq!(list["data"][0]["type"], "model");
    assert_eq!(list["has_more"], false);
    assert_eq!(openai.status(), 200);
    let list: Value = openai.json().await.unwrap();
    assert_eq!(list["object"], "list");
}

// Gemini

fn gemini_body() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
    })
}

async fn post_gemini(mock: &MockProvider, model_method: &str, body: &Value) -> reqwest::Response {
    let base_url = mock.base_url_for(WireFormat::Gemini);
    client()
        .post(format!("{base_url}/models/{model_method}"))
        .header("x-goog-api-key", "AIza-test")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn gemini_stream_carries_running_usage() {
    let mock = start(3).await;

    let response = post_gemini(
        &mock,
        "gemini-2.5-flash:streamGenerateContent?alt=sse",
        &gemini_body(),
    )
    .await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("\r\n\r\n"),
        "Gemini frames end in CRLF: {body:?}"
    );
    let events = sse_events(&body);
    assert_eq!(events.len(), 3 + 1);
    for (index, (_, data)) in events[..3].iter().enumerate() {
        let candidate = &data["candidates"][0];
        assert_eq!(
            candidate["content"]["parts"][0]["text"],
            reply_tokens(3)[index]
        );
        assert_eq!(candidate.get("finishReason"), None);
        assert_eq!(data["usageMetadata"]["candidatesTokenCount"], index + 1);
    }
    let last = &events[3].1;
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 6);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 3);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 9);
    assert_eq!(last["modelVersion"], "gemini-2.5-flash");
}

#[tokio::test]
async fn gemini_not_streamed_with_max_output() {
    let mock = start(12).await;
    let mut body = gemini_body();
    body["generationConfig"] = json!({"maxOutputTokens": 2});

    let response = post_gemini(&mock, "gemini-2.5-flash:generateContent", &body).await;

    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    let candidate = &reply["candidates"][0];
    assert_eq!(candidate["content"]["parts"][0]["text"], "Hello from");
    assert_eq!(candidate["finishReason"], "MAX_TOKENS");
    let received = mock.received();
    assert_eq!(
        received[0].path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(received[0].api_key, "AIza-test");
    assert_eq!(received[0].bearer_token, "");
}

#[tokio::test]
async fn gemini_function_call_parts() {
    let mock = start(3).await;
    mock.reply_next(scripted_calls());
    mock.reply_next(scripted_calls());
    let weather = json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}});
    let time = json!({"functionCall": {"name": "get_time", "args": {"zone": "UTC"}}});

    let streamed = post_gemini(
        &mock,
        "gemini-2.5-flash:streamGenerateContent?alt=sse",
        &gemini_body(),
    )
    .await;
    let whole = post_gemini(&mock, "gemini-2.5-flash:generateContent", &gemini_body()).await;

    let events = sse_events(&streamed.text().await.unwrap());
    assert_eq!(events.len(), 2 + 1);
    for (index, part) in [&weather, &time].into_iter().enumerate() {
        let candidate = &events[index].1["candidates"][0];
        assert_eq!(candidate["content"]["parts"], json!([part]));
        assert_eq!(candidate.get("finishReason"), None);
    }
    let last = &events[2].1;
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 2);

    let reply: Value = whole.json().await.unwrap();
    let candidate = &reply["candidates"][0];
    assert_eq!(candidate["content"]["parts"], json!([weather, time]));
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(reply["usageMetadata"]["candidatesTokenCount"], 2);
}

#[tokio::test]
async fn gemini_rejections_in_google_format() {
    let mock = start(1).await;
    let base_url = mock.base_url_for(WireFormat::Gemini);

    let without_key = client()
        .post(format!("{base_url}/models/m:generateContent"))
        .json(&gemini_body())
        .send()
        .await
        .unwrap();
    let unknown_method = post_gemini(&mock, "m:countTokens", &gemini_body()).await;
    let without_sse = post_gemini(&mock, "m:streamGenerateContent", &gemini_body()).await;
    let without_contents = post_gemini(&mock, "m:generateContent", &json!({})).await;

    assert_eq!(without_key.status(), 403);
    let error: Value = without_key.json().await.unwrap();
    assert_eq!(error["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(unknown_method.status(), 404);
    assert_eq!(without_sse.status(), 400);
    assert_eq!(without_contents.status(), 400);
    let error: Value = without_contents.json().await.unwrap();
    assert_eq!(error["error"]["code"], 400);
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(mock.requests(), [json!({})]);
}

#[tokio::test]
async fn gemini_retry_delay_in_details() {
    let mock = start(1).await;
    mock.fail_next(status_failure(429, None, Some(Duration::from_millis(1500))));
    mock.fail_next(status_failure(400, Some("FAILED_PRECONDITION"), None));

    let limited = post_gemini(&mock, "m:generateContent", &gemini_body()).await;
    let coded = post_gemini(&mock, "m:generateContent", &gemini_body()).await;

    assert_eq!(limited.status(), 429);
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    let detail = &error["error"]["details"][0];
    assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.RetryInfo");
    assert_eq!(detail["retryDelay"], "1.500s");
    let error: Value = coded.json().await.unwrap();
    assert_eq!(error["error"]["status"], "FAILED_PRECONDITION");
}

#[tokio::test]
async fn gemini_model_list() {
    let mock = start(1).await;
    let url = format!("{}/models", mock.base_url_for(WireFormat::Gemini));

    let listed = client()
        .get(&url)
        .header("x-goog-api-key", "AIza-test")
        .send()
        .await
        .unwrap();
    let without_key = client().get(&url).send().await.unwrap();

    assert_eq!(listed.status(), 200);
    let list: Value = listed.json().await.unwrap();
    assert_eq!(list["models"][0]["name"], "models/mock-model");
    assert_eq!(without_key.status(), 403);
}

// Groq

fn groq_body(stream: bool) -> Value {
    json!({
        "model": "llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "Hello there"}],
        "stream": stream,
        // Groq reports usage in x_groq, whatever the value of this option.
        "stream_options": {"include_usage": true},
    })
}

async fn post_groq(mock: &MockProvider, body: &Value) -> reqwest::Response {
    let base_url = mock.base_url_for(WireFormat::Groq);
    client()
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("gsk-test")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn groq_stream_usage_in_x_groq() {
    let mock = start(2).await;

    let response = post_groq(&mock, &groq_body(true)).await;

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let chunks: Vec<Value> = body
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(chunks.len(), 1 + 2 + 1, "{chunks:?}");
    assert_eq!(chunks[0]["x_groq"]["id"], "req_mock_1");
    let finish = &chunks[3];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["x_groq"]["usage"]["prompt_tokens"], 3);
    assert_eq!(finish["x_groq"]["usage"]["completion_tokens"], 2);
    assert!(
        chunks.iter().all(|chunk| chunk.get("usage").is_none()),
        "{chunks:?}"
    );
}

#[tokio::test]
async fn groq_failures_in_its_format() {
    let mock = start(3).await;
    mock.fail_next(status_failure(429, None, Some(Duration::from_millis(1200))));
    mock.fail_next(MockFailure::ErrorMidStream { after_tokens: 1 });

    let limited = post_groq(&mock, &groq_body(false)).await;
    let failed_stream = post_groq(&mock, &groq_body(true)).await;

    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert!(limited.headers().get("retry-after-ms").is_none());
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["type"], "requests");
    let body = failed_stream.text().await.unwrap();
    let last: Value = serde_json::from_str(
        body.trim_end()
            .rsplit("\n\n")
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["x_groq"]["error"], "Internal Server Error");
    assert!(!body.contains("[DONE]"), "{body}");
}

#[tokio::test]
async fn groq_requires_bearer() {
    let mock = start(1).await;
    let base_url = mock.base_url_for(WireFormat::Groq);

    let chat = client()
        .post(format!("{base_url}/chat/completions"))
        .json(&groq_body(false))
        .send()
        .await
        .unwrap();
    let models = client()
        .get(format!("{base_url}/models"))
        .send()
        .await
        .unwrap();

    assert_eq!(chat.status(), 401);
    let error: Value = chat.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
    assert_eq!(models.status(), 401);
    assert!(mock.received().is_empty());
}

// Ollama

fn ollama_body() -> Value {
    json!({
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"}
        ],
    })
}

async fn post_ollama(mock: &MockProvider, body: &Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}/api/chat",
            mock.base_url_for(WireFormat::Ollama)
        ))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ollama_streams_ndjson_by_default() {
    let mock = start(3).await;

    let response = post_ollama(&mock, &ollama_body()).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.text().await.unwrap();
    assert!(body.ends_with('\n'));
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3 + 1);
    for (index, line) in lines[..3].iter().enumerate() {
        assert_eq!(line["message"]["content"], reply_tokens(3)[index]);
        assert_eq!(line["done"], false);
        assert_eq!(line["model"], "llama3.2");
    }
    let last = &lines[3];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["prompt_eval_count"], 6);
    assert_eq!(last["eval_count"], 3);
    let received = mock.received();
    assert_eq!(received[0].format, WireFormat::Ollama);
    assert_eq!(
        received[0].api_key, "",
        "Ollama takes requests without a key"
    );
}

#[tokio::test]
async fn ollama_not_streamed_on_request() {
    let mock = start(12).await;
    let mut body = ollama_body();
    body["stream"] = json!(false);
    body["options"] = json!({"num_predict": 2});

    let response = post_ollama(&mock, &body).await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["message"]["content"], "Hello from");
    assert_eq!(reply["done"], true);
    assert_eq!(reply["done_reason"], "length");
    assert_eq!(reply["eval_count"], 2);
}

#[tokio::test]
async fn ollama_tool_calls_in_message() {
    let mock = start(3).await;
    mock.reply_next(scripted_calls());
    mock.reply_next(scripted_calls());
    let weather = json!({"function": {"name": "get_weather", "arguments": {"city": "Paris"}}});
    let time = json!({"function": {"name": "get_time", "arguments": {"zone": "UTC"}}});
    let mut not_streamed = ollama_body();
    not_streamed["stream"] = json!(false);

    let streamed = post_ollama(&mock, &ollama_body()).await;
    let whole = post_ollama(&mock, &not_streamed).await;

    let lines: Vec<Value> = streamed
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 + 1);
    for (index, call) in [&weather, &time].into_iter().enumerate() {
        assert_eq!(lines[index]["message"]["content"], "");
        assert_eq!(lines[index]["message"]["tool_calls"], json!([call]));
        assert_eq!(lines[index]["done"], false);
    }
    assert_eq!(lines[2]["done"], true);
    assert_eq!(lines[2]["done_reason"], "stop");
    assert_eq!(lines[2]["eval_count"], 2);

    let reply: Value = whole.json().await.unwrap();
    assert_eq!(reply["message"]["content"], "");
    assert_eq!(reply["message"]["tool_calls"], json!([weather, time]));
    assert_eq!(reply["done_reason"], "stop");
    assert_eq!(reply["eval_count"], 2);
}

#[tokio::test]
async fn ollama_failures_in_its_format() {
    let mock = start(3).await;
    mock.fail_next(status_failure(
        429,
        Some("ignored"),
        Some(Duration::from_secs(3)),
    ));
    mock.fail_next(MockFailure::ErrorMidStream { after_tokens: 2 });

    let limited = post_ollama(&mock, &ollama_body()).await;
    let failed_stream = post_ollama(&mock, &ollama_body()).await;
    let missing_model = post_ollama(&mock, &json!({"messages": []})).await;

    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    let error: Value = limited.json().await.unwrap();
    assert_eq!(
        error,
        json!({"error": "Injected failure with HTTP status 429 Too Many Requests."})
    );
    let body = failed_stream.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2]["error"].is_string(), "{body}");
    assert_eq!(missing_model.status(), 400);
}

#[tokio::test]
async fn ollama_probes_answer() {
    let mock = start(1).await;
    let base_url = mock.base_url_for(WireFormat::Ollama);

    let version: Value = client()
        .get(format!("{base_url}/api/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tags: Value = client()
        .get(format!("{base_url}/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert!(version["version"].is_string(), "{version}");
    assert_eq!(tags["models"][0]["name"], "mock-model:latest");
}

// Every format

#[tokio::test]
async fn base_urls_end_with_provider_paths() {
    let mock = start(1).await;
    let root = format!("http://{}", mock.addr());

    let urls: Vec<String> = WireFormat::ALL
        .into_iter()
        .map(|format| mock.base_url_for(format))
        .collect();

    assert_eq!(
        urls,
        [
            format!("{root}/v1"),
            root.clone(),
            format!("{root}/v1beta"),
            format!("{root}/openai/v1"),
            root.clone(),
        ]
    );
    assert_eq!(mock.base_url(), format!("{root}/v1"));
}

#[tokio::test]
async fn received_records_every_format_in_order() {
    let mock = start(1).await;
    let mut ollama = ollama_body();
    ollama["stream"] = json!(false);

    post_anthropic(&mock, &anthropic_body(false)).await;
    post_gemini(&mock, "m:generateContent", &gemini_body()).await;
    post_groq(&mock, &groq_body(false)).await;
    client()
        .post(format!(
            "{}/api/chat",
            mock.base_url_for(WireFormat::Ollama)
        ))
        .bearer_auth("proxy-key")
        .json(&ollama)
        .send()
        .await
        .unwrap();

    let received = mock.received();
    let summary: Vec<(WireFormat, &str, &str, &str)> = received
        .iter()
        .map(|request: &ReceivedRequest| {
            (
                request.format,
                request.path.as_str(),
                request.api_key.as_str(),
                request.bearer_token.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (WireFormat::Anthropic, "/v1/messages", "sk-ant-test", ""),
            (
                WireFormat::Gemini,
                "/v1beta/models/m:generateContent",
                "AIza-test",
                ""
            ),
            (
                WireFormat::Groq,
                "/openai/v1/chat/completions",
                "gsk-test",
                "gsk-test"
            ),
            (WireFormat::Ollama, "/api/chat", "proxy-key", "proxy-key"),
        ]
    );
    assert_eq!(
        mock.api_keys(),
        ["sk-ant-test", "AIza-test", "gsk-test", "proxy-key"]
    );
    assert_eq!(mock.bearer_tokens(), ["", "", "gsk-test", "proxy-key"]);
    assert_eq!(mock.requests()[3], ollama);
}

#[tokio::test]
async fn unknown_path_not_found() {
    let mock = start(1).await;

    let response = client()
        .post(format!("http://{}/v2/complete", mock.addr()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["message"], "Invalid URL (POST /v2/complete)");
}
