//! Decoding of recorded Ollama streams, delivered whole and split at every byte position.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use bytes::Bytes;

use super::{LineDecoder, MAX_LINE_BYTES, decode_stream};
use crate::test_support::{self, Item, fixture, text};
use crate::{FinishReason, ProviderError, StreamEvent, Usage};

/// Placeholder that replaces generated tool call ids, which differ on every decode.
const GENERATED_ID: &str = "<generated>";

async fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<Item> {
    test_support::decode_chunks(decode_stream, chunks).await
}

/// Replaces each generated tool call id with [`GENERATED_ID`] after checking that it has the
/// `call_` prefix and differs from every other id of the stream. Ids the server sent, given
/// in `server_ids`, are kept.
fn replace_generated_ids(items: Vec<Item>, server_ids: &[&str]) -> Vec<Item> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .map(|item| match item {
            Ok(StreamEvent::ToolCallDelta {
                index,
                id: Some(id),
                name,
                arguments,
            }) => {
                assert!(id.starts_with("call_"), "tool call id {id:?}");
                assert!(seen.insert(id.clone()), "tool call id {id:?} repeated");
                let id = if server_ids.contains(&id.as_str()) {
                    id
                } else {
                    GENERATED_ID.to_owned()
                };
                Ok(StreamEvent::ToolCallDelta {
                    index,
                    id: Some(id),
                    name,
                    arguments,
                })
            }
            other => other,
        })
        .collect()
}

/// Decodes the body in every chunking, with generated ids replaced as in
/// [`replace_generated_ids`].
async fn decode_every_split(body: &[u8], server_ids: &[&str]) -> Vec<Item> {
    let decode =
        |chunks| async move { replace_generated_ids(decode_chunks(chunks).await, server_ids) };
    test_support::decode_every_split(body, decode).await
}

fn tool_call(index: u32, id: &str, name: &str, arguments: &str) -> Item {
    Ok(StreamEvent::ToolCallDelta {
        index,
        id: Some(id.to_owned()),
        name: Some(name.to_owned()),
        arguments: arguments.to_owned(),
    })
}

fn usage(input_tokens: i64, output_tokens: i64) -> Item {
    Ok(StreamEvent::Usage(Usage {
        input_tokens,
        output_tokens,
        cached_input_tokens: None,
        reasoning_tokens: None,
    }))
}

#[tokio::test]
async fn text_every_split() {
    let events = decode_every_split(fixture!("ollama", "text.ndjson").as_bytes(), &[]).await;

    let expected = vec![
        text("Un café"),
        text(" ☕ s'il"),
        text(" vous plaît."),
        Ok(StreamEvent::Finish(FinishReason::Stop)),
        usage(26, 9),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn crlf_line_endings_every_split() {
    let body = fixture!("ollama", "text.ndjson").replace('\n', "\r\n");

    let events = decode_every_split(body.as_bytes(), &[]).await;

    assert_eq!(events.len(), 5);
    assert_eq!(events[1], text(" ☕ s'il"));
    assert_eq!(events[3], Ok(StreamEvent::Finish(FinishReason::Stop)));
}

#[tokio::test]
async fn tool_calls_every_split() {
    let events = decode_every_split(fixture!("ollama", "tool_calls.ndjson").as_bytes(), &[]).await;

    let expected = vec![
        tool_call(0, GENERATED_ID, "get_weather", r#"{"city":"Paris"}"#),
        tool_call(1, GENERATED_ID, "get_time", r#"{"zone":"UTC"}"#),
        tool_call(2, GENERATED_ID, "list_tools", "{}"),
        Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        usage(122, 33),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn server_tool_call_ids_kept() {
    let body = fixture!("ollama", "tool_calls_with_ids.ndjson").as_bytes();

    let events = decode_every_split(body, &["call_lyywui55"]).await;

    let expected = vec![
        tool_call(0, "call_lyywui55", "get_weather", r#"{"city":"Paris"}"#),
        Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        usage(140, 21),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn error_line_ends_stream_with_error() {
    let events = decode_every_split(
        fixture!("ollama", "error_mid_stream.ndjson").as_bytes(),
        &[],
    )
    .await;

    let message = "an error was encountered while running the model: unexpected EOF";
    let expected = vec![
        text("Partial"),
        text(" answer"),
        Err(ProviderError::Unavailable(message.to_owned())),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn stream_cut_before_done_is_unavailable() {
    let events = decode_every_split(
        fixture!("ollama", "cut_without_done.ndjson").as_bytes(),
        &[],
    )
    .await;

    assert_eq!(events.len(), 3);
    assert_eq!(events[0], text("Cut"));
    assert_eq!(events[1], text(" off"));
    assert!(
        matches!(&events[2], Err(ProviderError::Unavailable(m)) if m.contains("done: true")),
        "last item: {:?}",
        events[2]
    );
}

#[tokio::test]
async fn final_line_without_newline_decoded() {
    let body = fixture!("ollama", "length_without_final_newline.ndjson").as_bytes();
    assert_ne!(body.last(), Some(&b'\n'));

    let events = decode_every_split(body, &[]).await;

    let expected = vec![
        text("Long"),
        Ok(StreamEvent::Finish(FinishReason::Length)),
        usage(8, 1),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn cut_inside_last_line_is_unavailable() {
    let body = fixture!("ollama", "text.ndjson");
    let cut = &body[..body.len() - 10];

    let events = decode_every_split(cut.as_bytes(), &[]).await;

    assert_eq!(events.len(), 4);
    assert_eq!(events[2], text(" vous plaît."));
    assert_eq!(
        events[3],
        Err(ProviderError::Unavailable(
            "stream ended in the middle of a line".to_owned()
        ))
    );
}

#[tokio::test]
async fn invalid_last_line_is_decode_error() {
    let body = b"{\"done\": tru}".to_vec();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], Err(ProviderError::Decode(_))),
        "item: {:?}",
        events[0]
    );
}

#[tokio::test]
async fn lines_after_done_ignored() {
    let late = r#"{"message":{"role":"assistant","content":"late"},"done":false}"#;
    let body = format!("{}{late}\n", fixture!("ollama", "text.ndjson"));

    let events = decode_chunks(vec![body.into_bytes()]).await;

    assert_eq!(events.len(), 5);
    assert_eq!(events[4], usage(26, 9));
}

#[tokio::test]
async fn blank_lines_skipped() {
    let body = fixture!("ollama", "text.ndjson").replace('\n', "\n\n  \n");

    let events = decode_chunks(vec![body.into_bytes()]).await;

    assert_eq!(events.len(), 5);
    assert_eq!(events[0], text("Un café"));
}

#[tokio::test]
async fn missing_counts_are_zero() {
    let body = br#"{"message":{"role":"assistant","content":""},"done_reason":"stop","done":true}"#;

    let events = decode_chunks(vec![body.to_vec()]).await;

    assert_eq!(
        events,
        vec![Ok(StreamEvent::Finish(FinishReason::Stop)), usage(0, 0)]
    );
}

#[tokio::test]
async fn load_reason_is_other() {
    let body = br#"{"model":"llama3.2","message":{"role":"assistant","content":""},"done_reason":"load","done":true}"#;

    let events = decode_chunks(vec![body.to_vec()]).await;

    assert_eq!(events[0], Ok(StreamEvent::Finish(FinishReason::Other)));
}

#[tokio::test]
async fn invalid_json_line_is_decode_error() {
    let body = b"{\"message\": {\"content\": \n{\"done\":true}\n".to_vec();

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
    let body = b"{\"message\":{\"content\":\"\xff\xfe\"},\"done\":false}\n".to_vec();

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
async fn context_error_line_mapped() {
    let body = b"{\"error\":\"input length exceeds the context length\"}\n".to_vec();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(
        events,
        vec![Err(ProviderError::ContextTooLong(
            "input length exceeds the context length".to_owned()
        ))]
    );
}

#[test]
fn line_decoder_joins_pieces() {
    let mut lines = LineDecoder::default();

    lines.push(b"{\"a\":");
    assert_eq!(lines.next_line().unwrap(), None);
    lines.push(b"1}\r\n{\"b\"");
    assert_eq!(
        lines.next_line().unwrap(),
        Some(Bytes::from_static(b"{\"a\":1}"))
    );
    assert_eq!(lines.next_line().unwrap(), None);
    lines.push(b":2}");

    assert_eq!(lines.finish(), Some(Bytes::from_static(b"{\"b\":2}")));
    assert_eq!(lines.finish(), None);
}

#[test]
fn line_decoder_rejects_endless_line() {
    let mut lines = LineDecoder::default();
    let piece = vec![b'x'; 1024 * 1024];

    for _ in 0..MAX_LINE_BYTES / piece.len() {
        lines.push(&piece);
        assert_eq!(lines.next_line().unwrap(), None);
    }
    lines.push(b"x");

    assert!(
        matches!(lines.next_line(), Err(ProviderError::Decode(_))),
        "a line longer than the maximum was accepted"
    );
}
