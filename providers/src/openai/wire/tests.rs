//! Non-streamed responses, stream chunks and finish reasons in OpenAI's wire format.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::StreamEvent;

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
fn completion_refusal_is_content_filter() {
    let message =
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."});
    let body = json!({"choices": [{"message": message, "finish_reason": "stop"}]});
    let completion: Completion = serde_json::from_value(body).unwrap();

    let response = ChatResponse::try_from(completion).unwrap();

    assert_eq!(response.text, "I can't help with that.");
    assert_eq!(response.finish_reason, FinishReason::ContentFilter);
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
