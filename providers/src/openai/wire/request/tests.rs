//! Request bodies in OpenAI's wire format: options, tool calls, tool results and images.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::ToolDefinition;

const OPENAI: Dialect = Dialect {
    stream_usage_option: true,
};

/// Serializes a body to text, as reqwest's `json` does, and parses it back for comparison.
fn body_json(body: &CompletionRequest<'_>) -> serde_json::Value {
    let text = serde_json::to_string(body).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".to_owned(),
        system: Some("You are terse.".to_owned()),
        messages: vec![
            ChatMessage::user("Hi"),
            ChatMessage::assistant("Hello"),
            ChatMessage::user("Weather?"),
        ],
        temperature: Some(0.2),
        max_tokens: Some(256),
        stop: vec!["END".to_owned()],
        tools: vec![ToolDefinition {
            name: "get_weather".to_owned(),
            description: "Current weather for a city".to_owned(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
    }
}

#[test]
fn streaming_request_body() {
    let request = request();

    let body = body_json(&completion_request(&request, true, &OPENAI).unwrap());

    assert_eq!(
        body,
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Weather?"}
            ],
            "temperature": 0.2,
            "max_completion_tokens": 256,
            "stop": ["END"],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
            }}],
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn temperature_written_as_shortest_decimal() {
    let request = request();

    let text =
        serde_json::to_string(&completion_request(&request, false, &OPENAI).unwrap()).unwrap();

    assert!(text.contains(r#""temperature":0.2,"#), "body: {text}");
}

#[test]
fn minimal_request_omits_options() {
    let request = ChatRequest {
        model: "gpt-4o".to_owned(),
        messages: vec![ChatMessage::user("Hi")],
        ..ChatRequest::default()
    };

    let body = body_json(&completion_request(&request, false, &OPENAI).unwrap());

    assert_eq!(
        body,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    );
}

fn weather_call() -> ToolCall {
    ToolCall {
        id: "call_1".to_owned(),
        name: "get_weather".to_owned(),
        arguments: json!({"city": "Oslo"}),
    }
}

fn request_with(messages: Vec<ChatMessage>) -> ChatRequest {
    ChatRequest {
        model: "gpt-4o".to_owned(),
        messages,
        ..ChatRequest::default()
    }
}

fn messages_json(request: &ChatRequest) -> serde_json::Value {
    body_json(&completion_request(request, false, &OPENAI).unwrap())["messages"].clone()
}

#[test]
fn stream_options_follow_dialect() {
    let request = request();
    let without_option = Dialect {
        stream_usage_option: false,
    };

    let body = body_json(&completion_request(&request, true, &without_option).unwrap());

    assert_eq!(body["stream"], true);
    assert_eq!(body.get("stream_options"), None);
}

#[test]
fn tool_round_trip_messages() {
    let request = request_with(vec![
        ChatMessage::user("Weather in Oslo?"),
        ChatMessage::assistant_tool_calls("", vec![weather_call()]),
        ChatMessage::tool_result("call_1", "get_weather", "{\"temperature_c\":4}"),
    ]);

    let messages = messages_json(&request);

    assert_eq!(
        messages,
        json!([
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "tool_calls": [{
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}
            }]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature_c\":4}"}
        ])
    );
}

#[test]
fn assistant_text_kept_next_to_tool_calls() {
    let request = request_with(vec![ChatMessage::assistant_tool_calls(
        "Checking.",
        vec![weather_call()],
    )]);

    let messages = messages_json(&request);

    assert_eq!(messages[0]["content"], "Checking.");
    assert_eq!(messages[0]["tool_calls"][0]["id"], "call_1");
}

#[test]
fn malformed_arguments_sent_back_raw() {
    let call = ToolCall {
        arguments: json!("{\"city\":"),
        ..weather_call()
    };
    let request = request_with(vec![ChatMessage::assistant_tool_calls("", vec![call])]);

    let messages = messages_json(&request);

    assert_eq!(
        messages[0]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":"
    );
}

#[test]
fn tool_result_without_call_id_rejected() {
    let request = request_with(vec![ChatMessage::new(Role::Tool, "42")]);

    let error = completion_request(&request, false, &OPENAI).unwrap_err();

    assert!(
        matches!(&error, ProviderError::InvalidRequest(message) if message.contains("tool_call_id")),
        "error: {error:?}"
    );
}

#[test]
fn images_become_content_parts() {
    let images = vec![
        ImageInput::Url("https://example.com/cat.png".to_owned()),
        ImageInput::Inline {
            media_type: "image/jpeg".to_owned(),
            data_base64: "/9j/4AAQ".to_owned(),
        },
    ];
    let request = request_with(vec![ChatMessage::user("Which animal?").with_images(images)]);

    let messages = messages_json(&request);

    assert_eq!(
        messages,
        json!([{"role": "user", "content": [
            {"type": "text", "text": "Which animal?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
        ]}])
    );
}

#[test]
fn image_without_text_has_no_text_part() {
    let image = ImageInput::Url("https://example.com/cat.png".to_owned());
    let request = request_with(vec![ChatMessage::user("").with_images(vec![image])]);

    let messages = messages_json(&request);

    assert_eq!(
        messages[0]["content"],
        json!([{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}])
    );
}

#[test]
fn image_outside_user_message_rejected() {
    let image = ImageInput::Url("https://example.com/cat.png".to_owned());
    let request = request_with(vec![
        ChatMessage::assistant("A cat.").with_images(vec![image]),
    ]);

    let error = completion_request(&request, false, &OPENAI).unwrap_err();

    assert!(
        matches!(error, ProviderError::InvalidRequest(_)),
        "error: {error:?}"
    );
}
