//! Request bodies, non-streamed responses and finish reasons in Ollama's wire format.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::ToolDefinition;

/// Serializes a body to text, as reqwest's `json` does, and parses it back for comparison.
fn body_json(body: &ChatBody<'_>) -> serde_json::Value {
    let text = serde_json::to_string(body).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn weather_call() -> ToolCall {
    ToolCall {
        id: "call_1".to_owned(),
        name: "get_weather".to_owned(),
        arguments: json!({"city": "Paris"}),
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "llama3.2".to_owned(),
        system: Some("You are terse.".to_owned()),
        messages: vec![
            ChatMessage::user("Weather in Paris?"),
            ChatMessage::assistant_tool_calls("", vec![weather_call()]),
            ChatMessage::tool_result("call_1", "get_weather", "18 °C, cloudy"),
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

fn parse_chunk(value: serde_json::Value) -> ChatChunk {
    serde_json::from_value(value).unwrap()
}

#[test]
fn streaming_request_body() {
    let request = request();

    let body = body_json(&chat_request(&request, true).unwrap());

    assert_eq!(
        body,
        json!({
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ]},
                {"role": "tool", "content": "18 °C, cloudy", "tool_name": "get_weather"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
            }}],
            "stream": true,
            "options": {"temperature": 0.2, "num_predict": 256, "stop": ["END"]}
        })
    );
}

#[test]
fn minimal_request_sends_stream_false() {
    let request = ChatRequest {
        model: "llama3.2".to_owned(),
        messages: vec![ChatMessage::user("Hi")],
        ..ChatRequest::default()
    };

    let body = body_json(&chat_request(&request, false).unwrap());

    assert_eq!(
        body,
        json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": false
        })
    );
}

#[test]
fn images_sent_as_base64() {
    let image = ChatMessage::user("What is this?").with_images(vec![
        ImageInput::Inline {
            media_type: "image/png".to_owned(),
            data_base64: "iVBORw0KGgo=".to_owned(),
        },
        ImageInput::Url("data:image/jpeg;base64,/9j/4AAQ".to_owned()),
        ImageInput::Url("DATA:image/gif;BASE64,R0lGODlh".to_owned()),
    ]);
    let request = ChatRequest {
        model: "llava".to_owned(),
        messages: vec![image],
        ..ChatRequest::default()
    };

    let body = body_json(&chat_request(&request, false).unwrap());

    assert_eq!(
        body["messages"][0]["images"],
        json!(["iVBORw0KGgo=", "/9j/4AAQ", "R0lGODlh"])
    );
}

#[test]
fn image_links_rejected() {
    for url in [
        "https://example.com/cat.png",
        "data:image/svg+xml,%3Csvg%3E",
        "data:image/png;base64",
        "data",
    ] {
        let message =
            ChatMessage::user("What is this?").with_images(vec![ImageInput::Url(url.to_owned())]);
        let request = ChatRequest {
            model: "llava".to_owned(),
            messages: vec![message],
            ..ChatRequest::default()
        };

        let error = chat_request(&request, false).unwrap_err();

        assert!(
            matches!(&error, ProviderError::InvalidRequest(m) if m.contains("base64")),
            "url {url:?}: {error:?}"
        );
    }
}

#[test]
fn tool_result_without_name_rejected() {
    let message = ChatMessage {
        tool_call_id: Some("call_1".to_owned()),
        ..ChatMessage::new(Role::Tool, "42")
    };
    let request = ChatRequest {
        model: "llama3.2".to_owned(),
        messages: vec![message],
        ..ChatRequest::default()
    };

    let error = chat_request(&request, false).unwrap_err();

    assert!(
        matches!(&error, ProviderError::InvalidRequest(m) if m.contains("tool_name")),
        "error: {error:?}"
    );
}

#[test]
fn non_object_arguments_rejected() {
    let call = ToolCall {
        arguments: json!("{\"city\":"),
        ..weather_call()
    };
    let request = ChatRequest {
        model: "llama3.2".to_owned(),
        messages: vec![ChatMessage::assistant_tool_calls("", vec![call])],
        ..ChatRequest::default()
    };

    let error = chat_request(&request, false).unwrap_err();

    assert!(
        matches!(&error, ProviderError::InvalidRequest(m) if m.contains("call_1")),
        "error: {error:?}"
    );
}

#[test]
fn finish_reasons_mapped() {
    assert_eq!(finish_reason(Some("stop"), false), FinishReason::Stop);
    assert_eq!(finish_reason(Some("stop"), true), FinishReason::ToolCalls);
    assert_eq!(finish_reason(None, true), FinishReason::ToolCalls);
    assert_eq!(finish_reason(Some("length"), false), FinishReason::Length);
    assert_eq!(finish_reason(Some("length"), true), FinishReason::Length);
    assert_eq!(finish_reason(Some("load"), false), FinishReason::Other);
    assert_eq!(finish_reason(Some("unload"), false), FinishReason::Other);
    assert_eq!(finish_reason(None, false), FinishReason::Other);
}

#[test]
fn response_with_text() {
    let chunk = parse_chunk(json!({
        "model": "llama3.2", "created_at": "2025-01-15T10:00:00Z",
        "message": {"role": "assistant", "content": "Hello, world"},
        "done_reason": "stop", "done": true,
        "total_duration": 5191566416u64, "load_duration": 2154458,
        "prompt_eval_count": 12, "prompt_eval_duration": 383809000,
        "eval_count": 5, "eval_duration": 4799921000u64
    }));

    let response = ChatResponse::try_from(chunk).unwrap();

    assert_eq!(response.text, "Hello, world");
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    let usage = Usage {
        input_tokens: 12,
        output_tokens: 5,
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    assert_eq!(response.usage, Some(usage));
}

#[test]
fn response_with_tool_calls() {
    let chunk = parse_chunk(json!({
        "model": "llama3.1",
        "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "list_tools", "arguments": null}},
            {"id": "call_server", "function": {"index": 2, "name": "get_time", "arguments": {}}},
            {"function": {"name": "legacy", "arguments": "{\"zone\":\"UTC\"}"}}
        ]},
        "done_reason": "stop", "done": true, "prompt_eval_count": 122, "eval_count": 33
    }));

    let response = ChatResponse::try_from(chunk).unwrap();

    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    let calls = &response.tool_calls;
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
    assert_eq!(calls[1].name, "list_tools");
    assert_eq!(calls[1].arguments, json!({}));
    assert_eq!(calls[2].id, "call_server");
    assert_eq!(calls[2].arguments, json!({}));
    assert_eq!(calls[3].arguments, json!({"zone": "UTC"}));
    assert!(calls[0].id.starts_with("call_"), "id {:?}", calls[0].id);
    assert_ne!(calls[0].id, calls[1].id);
    assert_ne!(calls[1].id, calls[3].id);
}

#[test]
fn response_error_body_is_error() {
    let chunk = parse_chunk(json!({"error": "model runner has unexpectedly stopped"}));

    let error = ChatResponse::try_from(chunk).unwrap_err();

    assert_eq!(
        error,
        ProviderError::Unavailable("model runner has unexpectedly stopped".to_owned())
    );
}

#[test]
fn response_without_message_rejected() {
    let chunk = parse_chunk(json!({"model": "llama3.2", "done": true}));

    let error = ChatResponse::try_from(chunk).unwrap_err();

    assert!(
        matches!(error, ProviderError::Decode(_)),
        "error: {error:?}"
    );
}

#[test]
fn text_and_tool_call_in_one_line() {
    let chunk = parse_chunk(json!({
        "message": {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ]},
        "done": false
    }));
    let mut tool_call_count = 4;

    let events = chunk.into_events(&mut tool_call_count);

    assert_eq!(tool_call_count, 5);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], StreamEvent::TextDelta("Checking.".to_owned()));
    assert!(
        matches!(&events[1], StreamEvent::ToolCallDelta { index: 4, arguments, .. }
            if arguments == r#"{"city":"Paris"}"#),
        "event: {:?}",
        events[1]
    );
}
