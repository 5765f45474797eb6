//! Decoding of recorded Anthropic streams, delivered whole and split at every byte position.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::decode_stream;
use crate::test_support::{self, Item, fixture, text};
use crate::{FinishReason, ProviderError, StreamEvent, Usage};

async fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<Item> {
    test_support::decode_chunks(decode_stream, chunks).await
}

async fn decode_every_split(body: &[u8]) -> Vec<Item> {
    test_support::decode_every_split(body, decode_chunks).await
}

/// Frames each payload as one server-sent event named after its `type`.
fn sse_body(payloads: &[serde_json::Value]) -> Vec<u8> {
    let mut body = String::new();
    for payload in payloads {
        let name = payload["type"].as_str().unwrap();
        body.push_str(&format!("event: {name}\ndata: {payload}\n\n"));
    }
    body.into_bytes()
}

fn tool_delta(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Item {
    Ok(StreamEvent::ToolCallDelta {
        index,
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        arguments: arguments.to_owned(),
    })
}

#[tokio::test]
async fn text_with_usage_every_split() {
    let events = decode_every_split(fixture!("anthropic", "text_with_usage.sse").as_bytes()).await;

    // Input is 25 uncached + 1024 read from the cache + 40 written to it. Output is the
    // final running total from message_delta, not 1 + 9.
    let usage = Usage {
        input_tokens: 1089,
        output_tokens: 9,
        cached_input_tokens: Some(1024),
        reasoning_tokens: None,
    };
    let expected = vec![
        text("Un café"),
        text(" ☕ s'il"),
        text(" vous plaît."),
        Ok(StreamEvent::Finish(FinishReason::Stop)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn crlf_line_endings_every_split() {
    let body = fixture!("anthropic", "text_with_usage.sse").replace('\n', "\r\n");

    let events = decode_every_split(body.as_bytes()).await;

    assert_eq!(events.len(), 5);
    assert_eq!(events[0], text("Un café"));
    assert_eq!(events[3], Ok(StreamEvent::Finish(FinishReason::Stop)));
}

#[tokio::test]
async fn tool_use_every_split() {
    let events = decode_every_split(fixture!("anthropic", "tool_use.sse").as_bytes()).await;

    let weather = "toolu_01T1x1fJ34qAmk2tNTrN7Up6";
    let list = "toolu_01GpPM4Q8e1zQ8yQdUBUXaFG";
    let usage = Usage {
        input_tokens: 472,
        output_tokens: 89,
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    let expected = vec![
        text("Checking."),
        tool_delta(0, Some(weather), Some("get_weather"), ""),
        tool_delta(0, None, None, "{\"city\": "),
        tool_delta(0, None, None, "\"Paris\"}"),
        tool_delta(1, Some(list), Some("list_tools"), ""),
        Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn refusal_is_content_filter() {
    let events = decode_every_split(fixture!("anthropic", "refusal.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 30,
        output_tokens: 14,
        cached_input_tokens: Some(0),
        reasoning_tokens: None,
    };
    let expected = vec![
        text("I can't"),
        Ok(StreamEvent::Finish(FinishReason::ContentFilter)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn error_event_ends_stream_with_error() {
    let events = decode_every_split(fixture!("anthropic", "error_mid_stream.sse").as_bytes()).await;

    assert_eq!(
        events,
        vec![
            text("Partial"),
            Err(ProviderError::Overloaded("Overloaded".to_owned()))
        ]
    );
}

#[tokio::test]
async fn stream_cut_before_message_stop_is_unavailable() {
    let events = decode_every_split(fixture!("anthropic", "cut_without_stop.sse").as_bytes()).await;

    assert_eq!(events.len(), 3);
    assert_eq!(events[0], text("Cut"));
    assert_eq!(events[1], text(" off"));
    assert!(
        matches!(&events[2], Err(ProviderError::Unavailable(m)) if m.contains("message_stop")),
        "last item: {:?}",
        events[2]
    );
}

#[tokio::test]
async fn events_after_message_stop_ignored() {
    let late = json!({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": "late"}});
    let mut body = fixture!("anthropic", "text_with_usage.sse")
        .as_bytes()
        .to_vec();
    body.extend(sse_body(&[late]));

    let events = decode_chunks(vec![body]).await;

    assert_eq!(events.len(), 5);
    assert!(
        matches!(events[4], Ok(StreamEvent::Usage(_))),
        "last item: {:?}",
        events[4]
    );
}

#[tokio::test]
async fn missing_usage_gives_no_usage_event() {
    let body = sse_body(&[
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": "Long"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}}),
        json!({"type": "message_stop"}),
    ]);

    let events = decode_chunks(vec![body]).await;

    assert_eq!(
        events,
        vec![text("Long"), Ok(StreamEvent::Finish(FinishReason::Length))]
    );
}

#[tokio::test]
async fn message_delta_input_counts_replace_start() {
    let body = sse_body(&[
        json!({"type": "message_start", "message": {"usage":
            {"input_tokens": 5, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage":
            {"input_tokens": 7, "cache_read_input_tokens": 10, "output_tokens": 4}}),
        json!({"type": "message_delta", "delta": {"stop_reason": null},
               "usage": {"output_tokens": 6}}),
        json!({"type": "message_stop"}),
    ]);

    let events = decode_chunks(vec![body]).await;

    let usage = Usage {
        input_tokens: 17,
        output_tokens: 6,
        cached_input_tokens: Some(10),
        reasoning_tokens: None,
    };
    assert_eq!(
        events,
        vec![
            Ok(StreamEvent::Finish(FinishReason::Stop)),
            Ok(StreamEvent::Usage(usage))
        ]
    );
}

#[tokio::test]
async fn json_delta_for_text_block_is_decode_error() {
    let body = sse_body(&[
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
    ]);

    let events = decode_chunks(vec![body]).await;

    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], Err(ProviderError::Decode(m)) if m.contains("content block 0")),
        "item: {:?}",
        events[0]
    );
}

#[tokio::test]
async fn invalid_json_is_decode_error() {
    let body = b"event: message_start\ndata: {\"type\": \n\n".to_vec();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], Err(ProviderError::Decode(_))),
        "item: {:?}",
        events[0]
    );
}

#[tokio::test]
async fn invalid_utf8_is_decode_error() {
    let body = b"data: {\"type\": \"ping\"}\xff\xfe\n\n".to_vec();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], Err(ProviderError::Decode(_))),
        "item: {:?}",
        events[0]
    );
}

#[tokio::test]
async fn empty_body_is_unavailable() {
    let events = decode_chunks(Vec::new()).await;

    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], Err(ProviderError::Unavailable(_))),
        "item: {:?}",
        events[0]
    );
}

#[tokio::test]
async fn context_error_event_mapped() {
    let message = "prompt is too long: 208310 tokens > 200000 maximum";
    let error = json!({"type": "invalid_request_error", "message": message});
    let body = sse_body(&[json!({"type": "error", "error": error})]);

    let events = decode_chunks(vec![body]).await;

    assert_eq!(
        events,
        vec![Err(ProviderError::ContextTooLong(message.to_owned()))]
    );
}
