//! Request bodies, non-streamed responses and finish reasons in OpenAI's wire format.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::{ChatMessage, StreamEvent, ToolDefinition};

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

    let body = body_json(&completion_request(&request, true).unwrap());

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

    let text = serde_json::to_string(&completion_request(&request, false).unwrap()).unwrap();

    assert!(text.contains(r#""temperature":0.2,"#), "body: {text}");
}

#[test]
fn minimal_request_omits_options() {
    let request = ChatRequest {
        model: "gpt-4o".to_owned(),
        messages: vec![ChatMessage::user("Hi")],
        ..ChatRequest::default()
    };

    let body = body_json(&completion_request(&request, false).unwrap());

    assert_eq!(
        body,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]})
    );
}

#[test]
fn tool_role_message_rejected() {
    let request = ChatRequest {
        model: "gpt-4o".to_owned(),
        messages: vec![ChatMessage::new(Role::Tool, "42")],
        ..ChatRequest::default()
    };

    let error = completion_request(&request, false).unwrap_err();

    assert!(
        matches!(error, ProviderError::InvalidRequest(_)),
        "error: {error:?}"
    );
}

#[test]
fn finish_reasons_mapped() {
    assert_eq!(finish_reason("stop"), FinishReason::Stop);
    assert_eq!(finish_reason("length"), FinishReason::Length);
    assert_eq!(finish_reason("tool_calls"), FinishReason::ToolCalls);
    assert_eq!(finish_reason("function_call"), FinishReason::ToolCalls);
    assert_eq!(finish_reason("content_filter"), FinishReason::ContentFilter);
    assert_eq!(finish_reason("something_new"), FinishReason::Other);
}

#[test]
fn completion_with_tool_calls() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1735689600, "model": "gpt-4.1",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}
            }]},
            "logprobs": null,
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}}
    });
    let completion: Completion = serde_json::from_value(body).unwrap();

    let response = ChatResponse::try_from(completion).unwrap();

    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Oslo"})
        }]
    );
    let usage = Usage {
        input_tokens: 50,
        output_tokens: 12,
        cached_input_tokens: Some(0),
        reasoning_tokens: Some(0),
    };
    assert_eq!(response.usage, Some(usage));
}

#[test]
fn completion_refusal_becomes_text() {
    let message =
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."});
    let body = json!({"choices": [{"message": message, "finish_reason": "stop"}]});
    let completion: Completion = serde_json::from_value(body).unwrap();

    let response = ChatResponse::try_from(completion).unwrap();

    assert_eq!(response.text, "I can't help with that.");
    assert_eq!(response.usage, None);
}

#[test]
fn completion_without_choices_rejected() {
    let completion: Completion = serde_json::from_value(json!({"choices": []})).unwrap();

    let error = ChatResponse::try_from(completion).unwrap_err();

    assert!(
        matches!(error, ProviderError::Decode(_)),
        "error: {error:?}"
    );
}

#[test]
fn usage_details_optional() {
    let payload: StreamPayload = serde_json::from_value(
        json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}),
    )
    .unwrap();

    let events = payload.into_events();

    let usage = Usage {
        input_tokens: 7,
        output_tokens: 3,
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    assert_eq!(events, vec![StreamEvent::Usage(usage)]);
}

#[test]
fn chunk_with_text_and_finish() {
    let choice =
        json!({"index": 0, "delta": {"content": "end"}, "finish_reason": "content_filter"});
    let payload: StreamPayload = serde_json::from_value(json!({ "choices": [choice] })).unwrap();

    let events = payload.into_events();

    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta("end".into()),
            StreamEvent::Finish(FinishReason::ContentFilter)
        ]
    );
}
