//! Decoding of recorded OpenAI and Groq streams, delivered whole and split at every byte
//! position.

#![allow(clippy::unwrap_used)]

use super::decode_stream;
use crate::test_support::{self, Item, fixture, text};
use crate::{FinishReason, ProviderError, StreamEvent, Usage};

async fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<Item> {
    test_support::decode_chunks(decode_stream, chunks).await
}

async fn decode_every_split(body: &[u8]) -> Vec<Item> {
    test_support::decode_every_split(body, decode_chunks).await
}

#[tokio::test]
async fn text_with_usage_every_split() {
    let events = decode_every_split(fixture!("openai", "text_with_usage.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 9,
        cached_input_tokens: Some(1024),
        reasoning_tokens: Some(0),
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
    let body = fixture!("openai", "text_with_usage.sse").replace('\n', "\r\n");

    let events = decode_every_split(body.as_bytes()).await;

    assert_eq!(events.len(), 5);
    assert_eq!(events[0], text("Un café"));
    assert_eq!(events[3], Ok(StreamEvent::Finish(FinishReason::Stop)));
}

#[tokio::test]
async fn tool_calls_every_split() {
    let events = decode_every_split(fixture!("openai", "tool_calls.sse").as_bytes()).await;

    let delta = |index: u32, id: Option<&str>, name: Option<&str>, arguments: &str| {
        Ok(StreamEvent::ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
        })
    };
    let usage = Usage {
        input_tokens: 85,
        output_tokens: 40,
        cached_input_tokens: Some(0),
        reasoning_tokens: Some(0),
    };
    let expected = vec![
        delta(0, Some("call_weather"), Some("get_weather"), ""),
        delta(0, None, None, "{\"city\":"),
        delta(0, None, None, " \"Paris\"}"),
        delta(1, Some("call_time"), Some("get_time"), "{}"),
        Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn error_object_ends_stream_with_error() {
    let events = decode_every_split(fixture!("openai", "error_mid_stream.sse").as_bytes()).await;

    assert_eq!(events.len(), 2);
    assert_eq!(events[0], text("Partial"));
    let message = "The server had an error while processing your request. Sorry about that!";
    assert_eq!(
        events[1],
        Err(ProviderError::Unavailable(message.to_owned()))
    );
}

#[tokio::test]
async fn stream_cut_before_done_is_unavailable() {
    let events = decode_every_split(fixture!("openai", "cut_without_done.sse").as_bytes()).await;

    assert_eq!(events.len(), 3);
    assert_eq!(events[0], text("Cut"));
    assert_eq!(events[1], text(" off"));
    assert!(
        matches!(&events[2], Err(ProviderError::Unavailable(m)) if m.contains("[DONE]")),
        "last item: {:?}",
        events[2]
    );
}

#[tokio::test]
async fn missing_usage_is_not_an_error() {
    let events =
        decode_every_split(fixture!("openai", "length_without_usage.sse").as_bytes()).await;

    assert_eq!(
        events,
        vec![text("Long"), Ok(StreamEvent::Finish(FinishReason::Length))]
    );
}

#[tokio::test]
async fn finish_without_done_ends_cleanly() {
    let body = fixture!("openai", "length_without_usage.sse").replace("data: [DONE]\n\n", "");

    let events = decode_chunks(vec![body.into_bytes()]).await;

    assert_eq!(
        events,
        vec![text("Long"), Ok(StreamEvent::Finish(FinishReason::Length))]
    );
}

#[tokio::test]
async fn events_after_done_ignored() {
    let body = format!(
        "{}data: {{\"choices\":[{{\"delta\":{{\"content\":\"late\"}}}}]}}\n\n",
        fixture!("openai", "length_without_usage.sse")
    );

    let events = decode_chunks(vec![body.into_bytes()]).await;

    assert_eq!(
        events,
        vec![text("Long"), Ok(StreamEvent::Finish(FinishReason::Length))]
    );
}

#[tokio::test]
async fn invalid_json_chunk_is_decode_error() {
    let body = b"data: {\"choices\": [\n\ndata: [DONE]\n\n".to_vec();

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
    let body = b"data: {\"choices\": []}\xff\xfe\n\n".to_vec();

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
async fn context_error_in_stream_mapped() {
    let error =
        r#"{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}"#;
    let body = format!("data: {{\"error\":{error}}}\n\n").into_bytes();

    let events = decode_chunks(vec![body]).await;

    assert_eq!(
        events,
        vec![Err(ProviderError::ContextTooLong("too long".to_owned()))]
    );
}

#[tokio::test]
async fn refusal_finishes_with_content_filter() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"refusal\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can't\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );

    let events = decode_every_split(body.as_bytes()).await;

    assert_eq!(
        events,
        vec![
            text("I can't"),
            Ok(StreamEvent::Finish(FinishReason::ContentFilter))
        ]
    );
}

#[tokio::test]
async fn groq_usage_read_from_x_groq() {
    let events =
        decode_every_split(fixture!("groq", "text_with_x_groq_usage.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 2048,
        output_tokens: 6,
        cached_input_tokens: Some(1536),
        reasoning_tokens: None,
    };
    let expected = vec![
        text("Grüße"),
        text(" aus Köln."),
        Ok(StreamEvent::Finish(FinishReason::Stop)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn groq_whole_tool_call() {
    let events = decode_every_split(fixture!("groq", "tool_call_whole.sse").as_bytes()).await;

    let usage = Usage {
        input_tokens: 190,
        output_tokens: 44,
        cached_input_tokens: None,
        reasoning_tokens: Some(21),
    };
    let expected = vec![
        Ok(StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("fc_7a1e3b90".to_owned()),
            name: Some("get_weather".to_owned()),
            arguments: "{\"city\":\"Lyon\"}".to_owned(),
        }),
        Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        Ok(StreamEvent::Usage(usage)),
    ];
    assert_eq!(events, expected);
}

#[tokio::test]
async fn groq_early_stop_is_unavailable() {
    let events = decode_every_split(fixture!("groq", "stopped_early.sse").as_bytes()).await;

    assert_eq!(events.len(), 2);
    assert_eq!(events[0], text("Half"));
    assert_eq!(
        events[1],
        Err(ProviderError::Unavailable(
            "provider stopped the stream early: Service Unavailable".to_owned()
        ))
    );
}

#[tokio::test]
async fn usage_and_x_groq_usage_reported_once() {
    let body = concat!(
        "data: {\"choices\":[],",
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4},",
        "\"x_groq\":{\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}}\n\n",
        "data: [DONE]\n\n",
    );

    let events = decode_chunks(vec![body.as_bytes().to_vec()]).await;

    let usage = Usage {
        input_tokens: 9,
        output_tokens: 4,
        ..Usage::default()
    };
    assert_eq!(events, vec![Ok(StreamEvent::Usage(usage))]);
}
