//! Request bodies, non-streamed responses and stop reasons in Anthropic's wire format.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::request::MessagesRequest;
use super::*;
use crate::{ChatMessage, ChatRequest, ImageInput, ProviderError, Role, ToolDefinition};

/// Serializes a body to text, as reqwest's `json` does, and parses it back for comparison.
fn body_json(body: &MessagesRequest<'_>) -> serde_json::Value {
    let text = serde_json::to_string(body).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn request_body(request: &ChatRequest) -> serde_json::Value {
    body_json(&messages_request(request, false).unwrap())
}

fn weather_call(id: &str, arguments: serde_json::Value) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        name: "get_weather".to_owned(),
        arguments,
    }
}

fn minimal(messages: Vec<ChatMessage>) -> ChatRequest {
    ChatRequest {
        model: "claude-haiku-4-5".to_owned(),
        messages,
        ..ChatRequest::default()
    }
}

#[test]
fn streaming_request_body() {
    let request = ChatRequest {
        model: "claude-sonnet-4-5".to_owned(),
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
    };

    let body = body_json(&messages_request(&request, true).unwrap());

    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}
            ],
            "temperature": 0.2,
            "stop_sequences": ["END"],
            "tools": [{
                "name": "get_weather",
                "description": "Current weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}
            }],
            "stream": true
        })
    );
}

#[test]
fn minimal_request_gets_default_max_tokens() {
    let body = request_body(&minimal(vec![ChatMessage::user("Hi")]));

    assert_eq!(
        body,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
        })
    );
}

#[test]
fn temperature_written_as_shortest_decimal() {
    let request = ChatRequest {
        temperature: Some(0.7),
        ..minimal(vec![ChatMessage::user("Hi")])
    };

    let text = serde_json::to_string(&messages_request(&request, false).unwrap()).unwrap();

    assert!(text.contains(r#""temperature":0.7}"#), "body: {text}");
}

#[test]
fn system_messages_join_system_prompt() {
    let request = ChatRequest {
        system: Some("Agent instructions.".to_owned()),
        ..minimal(vec![
            ChatMessage::system("Earlier summary."),
            ChatMessage::user("Hi"),
            ChatMessage::system(""),
        ])
    };

    let body = request_body(&request);

    assert_eq!(body["system"], "Agent instructions.\n\nEarlier summary.");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    );
}

#[test]
fn tool_calls_and_results_in_anthropic_shape() {
    let request = minimal(vec![
        ChatMessage::user("Weather in Paris and the time?"),
        ChatMessage::assistant_tool_calls(
            "Checking.",
            vec![
                weather_call("toolu_1", json!({"city": "Paris"})),
                ToolCall {
                    id: "toolu_2".to_owned(),
                    name: "get_time".to_owned(),
                    arguments: json!({}),
                },
            ],
        ),
        ChatMessage::tool_result("toolu_1", "get_weather", "18 °C"),
        ChatMessage::tool_result("toolu_2", "get_time", "12:00"),
        ChatMessage::user("Thanks"),
    ]);

    let body = request_body(&request);

    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and the time?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "12:00"},
                {"type": "text", "text": "Thanks"}
            ]}
        ])
    );
}

#[test]
fn tool_call_without_text_has_only_tool_use() {
    let request = minimal(vec![
        ChatMessage::user("Weather?"),
        ChatMessage::assistant_tool_calls("", vec![weather_call("toolu_1", json!({}))]),
    ]);

    let body = request_body(&request);

    assert_eq!(
        body["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}])
    );
}

#[test]
fn malformed_tool_arguments_sent_as_empty_object() {
    let request = minimal(vec![
        ChatMessage::user("Weather?"),
        ChatMessage::assistant_tool_calls("", vec![weather_call("toolu_1", json!("{\"city\":"))]),
    ]);

    let body = request_body(&request);

    assert_eq!(body["messages"][1]["content"][0]["input"], json!({}));
}

#[test]
fn empty_tool_result_omits_content() {
    let request = minimal(vec![ChatMessage::tool_result("toolu_1", "list_tools", "")]);

    let body = request_body(&request);

    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type": "tool_result", "tool_use_id": "toolu_1"}])
    );
}

#[test]
fn tool_result_without_call_id_rejected() {
    let request = minimal(vec![ChatMessage::new(Role::Tool, "42")]);

    let error = messages_request(&request, false).unwrap_err();

    assert!(
        matches!(&error, ProviderError::InvalidRequest(m) if m.contains("tool_call_id")),
        "error: {error:?}"
    );
}

#[test]
fn empty_assistant_message_left_out() {
    let request = minimal(vec![
        ChatMessage::user("First"),
        ChatMessage::assistant(""),
        ChatMessage::user("Second"),
    ]);

    let body = request_body(&request);

    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "First"},
            {"type": "text", "text": "Second"}
        ]}])
    );
}

#[test]
fn images_before_text() {
    let images = vec![
        ImageInput::Url("https://example.com/cat.png".to_owned()),
        ImageInput::Inline {
            media_type: "image/png".to_owned(),
            data_base64: "iVBORw0KGgo=".to_owned(),
        },
        ImageInput::Url("DATA:image/jpeg;base64,/9j/4AAQ".to_owned()),
    ];
    let request = minimal(vec![ChatMessage::user("What is this?").with_images(images)]);

    let body = request_body(&request);

    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "image", "source":
                {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source":
                {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "text", "text": "What is this?"}
        ])
    );
}

#[test]
fn invalid_data_urls_rejected() {
    for url in [
        "data:image/png,rawbytes",
        "data:;base64,AAAA",
        "data:image/png;base64,",
        "data:image/png;base64",
    ] {
        let image = ImageInput::Url(url.to_owned());
        let request = minimal(vec![ChatMessage::user("?").with_images(vec![image])]);

        let error = messages_request(&request, false).unwrap_err();

        assert!(
            matches!(&error, ProviderError::InvalidRequest(m) if m.contains("data URL")),
            "url {url:?}: {error:?}"
        );
    }
}

#[test]
fn images_outside_user_messages_rejected() {
    let image = ImageInput::Url("https://example.com/cat.png".to_owned());
    let request = minimal(vec![
        ChatMessage::user("Hi"),
        ChatMessage::assistant("Look").with_images(vec![image]),
    ]);

    let error = messages_request(&request, false).unwrap_err();

    assert!(
        matches!(error, ProviderError::InvalidRequest(_)),
        "error: {error:?}"
    );
}

#[test]
fn stop_reasons_mapped() {
    assert_eq!(finish_reason("end_turn"), FinishReason::Stop);
    assert_eq!(finish_reason("stop_sequence"), FinishReason::Stop);
    assert_eq!(finish_reason("max_tokens"), FinishReason::Length);
    assert_eq!(finish_reason("tool_use"), FinishReason::ToolCalls);
    assert_eq!(finish_reason("refusal"), FinishReason::ContentFilter);
    assert_eq!(finish_reason("pause_turn"), FinishReason::Other);
    assert_eq!(finish_reason("something_new"), FinishReason::Other);
}

#[test]
fn message_with_text_and_tool_use() {
    let body = json!({
        "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
            {"type": "text", "text": "Let me check "},
            {"type": "text", "text": "that."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
             "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "list_tools", "input": {}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 2000, "output_tokens": 12}
    });
    let message: Message = serde_json::from_value(body).unwrap();

    let response = ChatResponse::from(message);

    assert_eq!(response.text, "Let me check that.");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "toolu_01A".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo"})
            },
            ToolCall {
                id: "toolu_01B".into(),
                name: "list_tools".into(),
                arguments: json!({})
            }
        ]
    );
    let usage = Usage {
        input_tokens: 2050,
        output_tokens: 12,
        cached_input_tokens: Some(2000),
        reasoning_tokens: None,
    };
    assert_eq!(response.usage, Some(usage));
}

#[test]
fn message_refusal_is_content_filter() {
    let body = json!({
        "content": [],
        "stop_reason": "refusal",
        "usage": {"input_tokens": 9, "output_tokens": 0}
    });
    let message: Message = serde_json::from_value(body).unwrap();

    let response = ChatResponse::from(message);

    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, FinishReason::ContentFilter);
    let usage = response.usage.unwrap();
    assert_eq!(usage.input_tokens, 9);
    assert_eq!(usage.cached_input_tokens, None);
}

#[test]
fn cache_writes_count_as_input() {
    let usage: WireUsage = serde_json::from_value(json!({
        "input_tokens": 3, "cache_creation_input_tokens": 1500,
        "cache_read_input_tokens": null, "output_tokens": 20
    }))
    .unwrap();

    let usage = Usage::from(usage);

    assert_eq!(usage.input_tokens, 1503);
    assert_eq!(usage.cached_input_tokens, None);
    assert_eq!(usage.output_tokens, 20);
}

#[test]
fn usage_update_keeps_unreported_fields() {
    let mut usage: WireUsage = serde_json::from_value(json!({
        "input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1
    }))
    .unwrap();
    let later: WireUsage = serde_json::from_value(json!({"output_tokens": 30})).unwrap();

    usage.update(later);

    let usage = Usage::from(usage);
    assert_eq!(usage.input_tokens, 14);
    assert_eq!(usage.output_tokens, 30);
    assert_eq!(usage.cached_input_tokens, Some(4));
}

#[test]
fn error_body_parsed() {
    let body = json!({
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-x"},
        "request_id": "req_011"
    });

    let parsed: ErrorBody = serde_json::from_value(body).unwrap();

    assert_eq!(parsed.error.kind, "not_found_error");
    assert_eq!(parsed.error.message, "model: claude-x");
}
