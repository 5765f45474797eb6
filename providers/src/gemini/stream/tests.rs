//! Decoding of recorded Gemini streams, delivered whole and split at every byte position.

#![allow(clippy::unwrap_used)]

use super::decode_stream;
use crate::gemini::wire::GENERATED_CALL_ID_PREFIX;
use crate::test_support::{self, Item, fixture, text};
use crate::{FinishReason, ProviderError, StreamEvent, Usage};

/// The id that [`normalize_ids`] puts in place of a generated tool call id.
const GENERATED: &str = "<generated>";

/// Replaces generated tool call ids with [`GENERATED`], after checking their form, because
/// each decoding generates new ones.
fn normalize_ids(items: Vec<Item>) -> Vec<Item> {
    items
        .into_iter()
        .map(|item| match item {
            Ok(StreamEvent::ToolCallDelta {
                index,
                id: Some(id),
                name,
                arguments,
            }) if id.starts_with(GENERATED_CALL_ID_PREFIX) => {
                let suffix = &id[GENERATED_CALL_ID_PREFIX.len()..];
                assert_eq!(suffix.len(), 32, "generated id {id}");
                assert!(
                    suffix.bytes().all(|byte| byte.is_ascii_hexdigit()),
                    "id {id}"
                );
                Ok(StreamEvent::ToolCallDelta {
                    index,
                    id: Some(GENERATED.to_owned()),
                    name,
                    arguments,
                })
            }
            other => other,
        })
        .collect()
}

/// Decodes a body delivered as the given chunks, with generated ids normalized.
async fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<Item> {
    normalize_ids(test_support::decode_chunks(decode_stream, chunks).await)
}

async fn decode_every_split(body: &[u8]) -> Vec<Item> {
    test_support::decode_every_split(body, decode_chunks).await
}

#[tokio::test]
async fn text_with_usage_every_split() {
    let events = decode_every_split(fixture!("gemini", "text_with_usage.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 49,
        cached_input_tokens: Some(1024),
        reasoning_tokens: Some(40),
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
async fn lf_line_endings_every_split() {
    let body = fixture!("gemini", "text_with_usage.sse").replace("\r\n", "\n");

    let events = decode_every_split(body.as_bytes()).await;

    assert_eq!(events.len(), 5);
    assert_eq!(events[0], text("Un café"));
    assert_eq!(events[3], Ok(StreamEvent::Finish(FinishReason::Stop)));
}

#[tokio::test]
async fn tool_calls_every_split() {
    let events = decode_every_split(fixture!("gemini", "tool_calls.sse").as_bytes()).await;

    let call = |index: u32, name: &str, arguments: &str| {
        Ok(StreamEvent::ToolCallDelta {
            index,
            id: Some(GENERATED.to_owned()),
            name: Some(name.to_owned()),
            arguments: arguments.to_owned(),
        })
    };
    let usage = Usage {
        input_tokens: 85,
        output_tokens: 56,
        cached_input_tokens: None,
        reasoning_tokens: Some(32),
    };
    let expected = vec![
        call(0, "get_weather", r#"{"city":"Paris"}"#),
        call(1, "get_time", r#"{"zone":"UTC"}"#),
        call(2, "list_tools", "{}"),
        Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn generated_ids_distinct_within_stream() {
    let body = fixture!("gemini", "tool_calls.sse").as_bytes().to_vec();

    let items = test_support::decode_chunks(decode_stream, vec![body]).await;

    let ids: Vec<String> = items
        .into_iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::ToolCallDelta { id, .. }) => id,
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[1], ids[2]);
}

#[tokio::test]
async fn blocked_prompt_every_split() {
    let events = decode_every_split(fixture!("gemini", "blocked_prompt.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 8,
        output_tokens: 0,
        cached_input_tokens: None,
        reasoning_tokens: None,
    };
    assert_eq!(
        events,
        vec![
            Ok(StreamEvent::Finish(FinishReason::ContentFilter)),
            Ok(StreamEvent::Usage(usage)),
        ]
    );
}

#[tokio::test]
async fn error_object_ends_stream_with_error() {
    let events = decode_every_split(fixture!("gemini", "error_mid_stream.sse").as_bytes()).await;

    assert_eq!(events.len(), 2);
    assert_eq!(events[0], text("Partial"));
    let message = "An internal error has occurred. Please retry or report in \
                   https://developers.generativeai.google/guide/troubleshooting";
    assert_eq!(
        events[1],
        Err(ProviderError::Unavailable(message.to_owned()))
    );
}

#[tokio::test]
async fn stream_cut_before_finish_is_unavailable() {
    let events = decode_every_split(fixture!("gemini", "cut_without_finish.sse").as_bytes()).await;

    assert_eq!(events.len(), 3);
    assert_eq!(events[0], text("Cut"));
    assert_eq!(events[1], text(" off"));
    assert!(
        matches!(&events[2], Err(ProviderError::Unavailable(m)) if m.contains("finish reason")),
        "last item: {:?}",
        events[2]
    );
}

#[tokio::test]
async fn max_tokens_without_text_every_split() {
    let events =
        decode_every_split(fixture!("gemini", "max_tokens_without_text.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 9,
        output_tokens: 64,
        cached_input_tokens: None,
        reasoning_tokens: Some(63),
    };
    assert_eq!(
        events,
        vec![
            text("Long"),
            Ok(StreamEvent::Finish(FinishReason::Length)),
            Ok(StreamEvent::Usage(usage)),
        ]
    );
}

#[tokio::test]
async fn finish_without_usage_ends_cleanly() {
    let body = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},\
                 \"finishReason\":\"STOP\"}]}\r\n\r\n"
        .to_vec();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(
        events,
        vec![text("Hi"), Ok(StreamEvent::Finish(FinishReason::Stop))]
    );
}

#[tokio::test]
async fn invalid_json_is_decode_error() {
    let body = b"data: {\"candidates\": [\r\n\r\n".to_vec();

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
    let body = b"data: {\"candidates\": []}\xff\xfe\r\n\r\n".to_vec();

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
async fn rate_limit_error_in_stream_mapped() {
    let error =
        r#"{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}"#;
    let body = format!("data: {{\"error\":{error}}}\r\n\r\n").into_bytes();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(
        events,
        vec![Err(ProviderError::RateLimited {
            retry_after: None,
            message: "Resource has been exhausted".to_owned()
        })]
    );
}
