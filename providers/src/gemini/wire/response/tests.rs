//! Gemini responses converted to events and complete responses.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::ToolCall;

fn parse(body: serde_json::Value) -> GenerateContentResponse {
    serde_json::from_value(body).unwrap()
}

fn candidate(parts: serde_json::Value, finish_reason: Option<&str>) -> serde_json::Value {
    json!({
        "content": {"parts": parts, "role": "model"},
        "finishReason": finish_reason,
        "index": 0
    })
}

/// Checks that `id` has the form of a generated call id: the prefix and 32 hex digits.
fn assert_generated_id(id: &str) {
    let suffix = id.strip_prefix(GENERATED_CALL_ID_PREFIX).unwrap();
    assert_eq!(suffix.len(), 32, "id {id}");
    assert!(
        suffix.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "id {id}"
    );
}

#[test]
fn finish_reasons_mapped() {
    let cases = [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        ("IMAGE_SAFETY", FinishReason::ContentFilter),
        ("MALFORMED_FUNCTION_CALL", FinishReason::Error),
        ("LANGUAGE", FinishReason::Other),
        ("OTHER", FinishReason::Other),
        ("FINISH_REASON_UNSPECIFIED", FinishReason::Other),
        ("SOMETHING_NEW", FinishReason::Other),
    ];
    for (reason, expected) in cases {
        assert_eq!(finish_reason(reason), expected, "finishReason {reason}");
    }
}

#[test]
fn text_answer_with_usage() {
    let body = json!({
        "candidates": [candidate(json!([{"text": "Hello, "}, {"text": "world"}]), Some("STOP"))],
        "usageMetadata": {
            "promptTokenCount": 1200, "candidatesTokenCount": 9, "totalTokenCount": 1249,
            "cachedContentTokenCount": 1024, "thoughtsTokenCount": 40
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mJ5aaPq1"
    });

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.text, "Hello, world");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert!(response.tool_calls.is_empty());
    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 49,
        cached_input_tokens: Some(1024),
        reasoning_tokens: Some(40),
    };
    assert_eq!(response.usage, Some(usage));
}

#[test]
fn usage_counts_optional() {
    let body = json!({
        "candidates": [candidate(json!([{"text": "Hi"}]), Some("STOP"))],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}
    });

    let response = chat_response(parse(body)).unwrap();

    let usage = Usage {
        input_tokens: 7,
        output_tokens: 0,
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    assert_eq!(response.usage, Some(usage));
}

#[test]
fn tool_use_prompt_tokens_count_as_input() {
    let body = json!({
        "candidates": [candidate(json!([{"text": "Hi"}]), Some("STOP"))],
        "usageMetadata": {"promptTokenCount": 7, "toolUsePromptTokenCount": 30,
                          "candidatesTokenCount": 1, "totalTokenCount": 38}
    });

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.usage.unwrap().input_tokens, 37);
}

#[test]
fn function_calls_become_tool_calls() {
    let parts = json!([
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "CiQBcsjafE"},
        {"functionCall": {"id": "fc-time-1", "name": "get_time", "args": {"zone": "UTC"}}},
        {"functionCall": {"name": "list_tools"}}
    ]);
    let body = json!({"candidates": [candidate(parts, Some("STOP"))]});

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.text, "");
    assert_eq!(response.usage, None);
    let calls = &response.tool_calls;
    assert_eq!(calls.len(), 3);
    assert_generated_id(&calls[0].id);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
    assert_eq!(
        calls[1],
        ToolCall {
            id: "fc-time-1".to_owned(),
            name: "get_time".to_owned(),
            arguments: json!({"zone": "UTC"}),
        }
    );
    assert_generated_id(&calls[2].id);
    assert_eq!(calls[2].name, "list_tools");
    assert_eq!(calls[2].arguments, json!({}));
    assert_ne!(calls[0].id, calls[2].id);
}

#[test]
fn generated_ids_unique_across_responses() {
    let body = || {
        let parts = json!([{"functionCall": {"name": "list_tools", "args": {}}}]);
        json!({"candidates": [candidate(parts, Some("STOP"))]})
    };

    let first = chat_response(parse(body())).unwrap();
    let second = chat_response(parse(body())).unwrap();

    assert_ne!(first.tool_calls[0].id, second.tool_calls[0].id);
}

#[test]
fn tool_call_events_numbered_across_responses() {
    let mut decoder = ResponseDecoder::default();
    let first = json!({"candidates": [candidate(
        json!([{"functionCall": {"id": "a", "name": "get_weather", "args": {"city": "Paris"}}}]),
        None
    )]});
    let second = json!({"candidates": [candidate(
        json!([{"functionCall": {"id": "b", "name": "list_tools", "args": {}}}]),
        Some("STOP")
    )]});

    let mut events = decoder.decode(parse(first));
    events.extend(decoder.decode(parse(second)));

    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCallDelta {
                index: 0,
                id: Some("a".to_owned()),
                name: Some("get_weather".to_owned()),
                arguments: r#"{"city":"Paris"}"#.to_owned(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                id: Some("b".to_owned()),
                name: Some("list_tools".to_owned()),
                arguments: "{}".to_owned(),
            },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn thought_parts_and_empty_text_skipped() {
    let parts = json!([
        {"text": "Considering the question.", "thought": true},
        {"text": ""},
        {"text": "Answer.", "thoughtSignature": "CiQBcsjafE"}
    ]);
    let mut decoder = ResponseDecoder::default();

    let events = decoder.decode(parse(json!({"candidates": [candidate(parts, None)]})));

    assert_eq!(events, vec![StreamEvent::TextDelta("Answer.".to_owned())]);
    assert!(!decoder.is_finished());
}

#[test]
fn blocked_prompt_is_content_filter() {
    let body = json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash"
    });

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.finish_reason, FinishReason::ContentFilter);
    assert_eq!(response.text, "");
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.usage.unwrap().input_tokens, 8);
}

#[test]
fn prompt_feedback_without_block_ignored() {
    let body = json!({
        "candidates": [candidate(json!([{"text": "Hi"}]), Some("STOP"))],
        "promptFeedback": {"safetyRatings": []}
    });

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.text, "Hi");
}

#[test]
fn candidate_without_content_keeps_finish() {
    let body = json!({
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 105, "thoughtsTokenCount": 100}
    });

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.finish_reason, FinishReason::Length);
    assert_eq!(response.text, "");
    assert_eq!(response.usage.unwrap().output_tokens, 100);
}

#[test]
fn safety_stop_after_function_call_kept() {
    let parts = json!([{"functionCall": {"name": "list_tools"}}]);
    let body = json!({"candidates": [candidate(parts, Some("SAFETY"))]});

    let response = chat_response(parse(body)).unwrap();

    assert_eq!(response.finish_reason, FinishReason::ContentFilter);
}

#[test]
fn response_without_candidates_rejected() {
    let body = json!({"usageMetadata": {"promptTokenCount": 3}});

    let error = chat_response(parse(body)).unwrap_err();

    assert!(
        matches!(error, ProviderError::Decode(_)),
        "error: {error:?}"
    );
}

#[test]
fn error_object_parsed() {
    let body = json!({"error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
        ]
    }});

    let error = parse(body).error.unwrap();

    assert_eq!(error.code, Some(429));
    assert_eq!(error.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(error.details.len(), 2);
    assert_eq!(error.details[1].retry_delay.as_deref(), Some("7s"));
}

#[test]
fn model_list_requires_models() {
    let list = json!({"models": [{"name": "models/gemini-2.5-flash"}], "nextPageToken": "x"});

    assert!(serde_json::from_value::<ModelList>(list).is_ok());
    assert!(serde_json::from_value::<ModelList>(json!({"data": []})).is_err());
}
