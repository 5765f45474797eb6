//! Every provider adapter of the `providers` crate against the mock over real HTTP: the
//! adapters find the mock's routes, pass its key checks, read its replies, scripted tool
//! calls and usage, and classify its injected failures.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use mock_provider::{
    MockConfig, MockFailure, MockProvider, MockReply, MockToolCall, WireFormat, prompt_tokens,
    reply_tokens,
};
use providers::{
    Anthropic, ApiKey, ChatMessage, ChatProvider, ChatRequest, ChatResponse, FinishReason, Gemini,
    Groq, HttpSettings, Ollama, OpenAi, ProviderError, StreamEvent, ToolCall, collect_response,
    http_client,
};
use serde_json::{Value, json};

const API_KEY: &str = "key-for-the-mock-0001";

/// The model name sent to every format. It is also a valid Gemini model id.
const MODEL: &str = "mock-model";

/// Returns the adapter for `format`, pointed at the mock with [`API_KEY`].
fn adapter(format: WireFormat, mock: &MockProvider) -> Box<dyn ChatProvider> {
    let client = http_client(&HttpSettings::default()).unwrap();
    let base_url = mock.base_url_for(format);
    let key = ApiKey::new(API_KEY);
    match format {
        WireFormat::OpenAi => Box::new(OpenAi::new(client, base_url, key)),
        WireFormat::Anthropic => Box::new(Anthropic::new(client, base_url, key)),
        WireFormat::Gemini => Box::new(Gemini::new(client, base_url, key)),
        WireFormat::Groq => Box::new(Groq::new(client, base_url, key)),
        WireFormat::Ollama => Box::new(Ollama::new(client, base_url, Some(key))),
    }
}

/// "Be brief." is 9 characters (3 tokens) and "Hello there" 11 (3 tokens).
fn chat_request() -> ChatRequest {
    ChatRequest {
        model: MODEL.to_owned(),
        system: Some("Be brief.".to_owned()),
        messages: vec![ChatMessage::user("Hello there")],
        ..ChatRequest::default()
    }
}

const PROMPT_TOKENS: i64 = 6;

async fn start(tokens: usize) -> MockProvider {
    let config = MockConfig {
        tokens,
        ..MockConfig::default()
    };
    MockProvider::start(config).await.unwrap()
}

/// Streams `request` and returns every item until the stream ends.
async fn stream_items(
    provider: &dyn ChatProvider,
    request: &ChatRequest,
) -> Vec<Result<StreamEvent, ProviderError>> {
    provider.stream(request).await.unwrap().collect().await
}

fn text_deltas(count: usize) -> Vec<Result<StreamEvent, ProviderError>> {
    reply_tokens(count)
        .into_iter()
        .map(|token| Ok(StreamEvent::TextDelta(token)))
        .collect()
}

fn status_failure(status: u16, retry_after: Option<Duration>) -> MockFailure {
    MockFailure::Status {
        status,
        code: None,
        retry_after,
    }
}

#[tokio::test]
async fn stream_reads_reply_and_usage() {
    for format in WireFormat::ALL {
        let mock = start(5).await;
        let provider = adapter(format, &mock);

        let items = stream_items(provider.as_ref(), &chat_request()).await;

        assert_eq!(items[..5], text_deltas(5), "{format:?}: {items:?}");
        let rest: Vec<_> = items[5..].iter().cloned().map(Result::unwrap).collect();
        assert!(
            rest.contains(&StreamEvent::Finish(FinishReason::Stop)),
            "{format:?}: {rest:?}"
        );
        let usage = rest
            .iter()
            .find_map(|event| match event {
                StreamEvent::Usage(usage) => Some(*usage),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{format:?}: no usage in {rest:?}"));
        assert_eq!(usage.input_tokens, PROMPT_TOKENS, "{format:?}");
        assert_eq!(usage.output_tokens, 5, "{format:?}");

        let received = mock.received();
        assert_eq!(received.len(), 1, "{format:?}");
        assert_eq!(received[0].format, format);
        assert_eq!(received[0].api_key, API_KEY, "{format:?}");
        assert_eq!(
            prompt_tokens(&received[0].body),
            PROMPT_TOKENS,
            "{format:?}"
        );
    }
}

#[tokio::test]
async fn complete_reads_reply_and_usage() {
    for format in WireFormat::ALL {
        let mock = start(4).await;
        let provider = adapter(format, &mock);

        let response = provider.complete(&chat_request()).await.unwrap();

        assert_eq!(response.text, reply_tokens(4).concat(), "{format:?}");
        assert_eq!(response.finish_reason, FinishReason::Stop, "{format:?}");
        let usage = response.usage.unwrap();
        assert_eq!(usage.input_tokens, PROMPT_TOKENS, "{format:?}");
        assert_eq!(usage.output_tokens, 4, "{format:?}");
        assert_eq!(mock.api_keys(), [API_KEY], "{format:?}");
    }
}

#[tokio::test]
async fn max_tokens_cut_reply_with_length() {
    for format in WireFormat::ALL {
        let mock = start(12).await;
        let provider = adapter(format, &mock);
        let request = ChatRequest {
            max_tokens: Some(3),
            ..chat_request()
        };

        let streamed = collect_response(provider.stream(&request).await.unwrap())
            .await
            .unwrap();
        let whole = provider.complete(&request).await.unwrap();

        for response in [streamed, whole] {
            assert_eq!(response.text, reply_tokens(3).concat(), "{format:?}");
            assert_eq!(response.finish_reason, FinishReason::Length, "{format:?}");
            assert_eq!(response.usage.unwrap().output_tokens, 3, "{format:?}");
        }
    }
}

#[tokio::test]
async fn probe_passes_and_is_not_recorded() {
    for format in WireFormat::ALL {
        let mock = start(1).await;
        let provider = adapter(format, &mock);

        provider.probe().await.unwrap();

        assert!(mock.received().is_empty(), "{format:?}");
    }
}

#[tokio::test]
async fn injected_statuses_classified() {
    for format in WireFormat::ALL {
        let mock = start(2).await;
        let provider = adapter(format, &mock);
        for status in [401, 404, 500] {
            mock.fail_next(status_failure(status, None));

            let error = provider.stream(&chat_request()).await.err().unwrap();

            let expected = match status {
                401 => "authentication",
                404 => "not_found",
                _ => "unavailable",
            };
            assert_eq!(error.code(), expected, "{format:?} {status}: {error}");
        }
        assert_eq!(mock.received().len(), 3, "{format:?}");
    }
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    for format in WireFormat::ALL {
        let mock = start(2).await;
        let provider = adapter(format, &mock);
        mock.fail_next(status_failure(429, Some(Duration::from_secs(2))));

        let error = provider.complete(&chat_request()).await.unwrap_err();

        assert_eq!(error.code(), "rate_limited", "{format:?}: {error}");
        assert_eq!(
            error.retry_after(),
            Some(Duration::from_secs(2)),
            "{format:?}"
        );
        let next = provider.complete(&chat_request()).await;
        assert!(next.is_ok(), "{format:?}: a failure applies once: {next:?}");
    }
}

#[tokio::test]
async fn error_mid_stream_ends_with_error() {
    for format in WireFormat::ALL {
        let mock = start(6).await;
        let provider = adapter(format, &mock);
        mock.fail_next(MockFailure::ErrorMidStream { after_tokens: 2 });

        let items = stream_items(provider.as_ref(), &chat_request()).await;

        assert_eq!(items.len(), 3, "{format:?}: {items:?}");
        assert_eq!(items[..2], text_deltas(2), "{format:?}");
        let error = items[2].clone().unwrap_err();
        assert!(error.is_retryable(), "{format:?}: {error}");
    }
}

#[tokio::test]
async fn cut_stream_ends_unavailable() {
    for format in WireFormat::ALL {
        let mock = start(6).await;
        let provider = adapter(format, &mock);
        mock.fail_next(MockFailure::CutMidStream { after_tokens: 3 });

        let items = stream_items(provider.as_ref(), &chat_request()).await;

        assert_eq!(items.len(), 4, "{format:?}: {items:?}");
        assert_eq!(items[..3], text_deltas(3), "{format:?}");
        let error = items[3].clone().unwrap_err();
        assert_eq!(error.code(), "unavailable", "{format:?}: {error}");
    }
}

#[tokio::test]
async fn mid_stream_failure_fails_complete() {
    for format in WireFormat::ALL {
        let mock = start(6).await;
        let provider = adapter(format, &mock);
        mock.fail_next(MockFailure::CutMidStream { after_tokens: 3 });

        let error = provider.complete(&chat_request()).await.unwrap_err();

        assert_eq!(error.code(), "unavailable", "{format:?}: {error}");
    }
}

fn tool_call(name: &str, arguments: Value) -> MockToolCall {
    MockToolCall {
        name: name.to_owned(),
        arguments,
    }
}

fn two_tool_calls() -> Vec<MockToolCall> {
    vec![
        tool_call("get_weather", json!({"city": "Paris", "days": 2})),
        tool_call("get_time", json!({"zone": "UTC", "format": ["24h", null]})),
    ]
}

/// Returns the call id that `format` sends for call `index` of reply `sequence`, or `None`
/// for Gemini and Ollama, whose calls carry no id, so the adapter generates one.
fn sent_call_id(format: WireFormat, sequence: u64, index: usize) -> Option<String> {
    match format {
        WireFormat::OpenAi | WireFormat::Groq => Some(format!("call_mock_{sequence}_{index}")),
        WireFormat::Anthropic => Some(format!("toolu_mock_{sequence}_{index}")),
        WireFormat::Gemini | WireFormat::Ollama => None,
    }
}

/// Counts the argument fragments of each tool call index in streamed items.
fn argument_fragment_counts(items: &[Result<StreamEvent, ProviderError>]) -> Vec<usize> {
    let mut counts = Vec::new();
    for item in items {
        if let Ok(StreamEvent::ToolCallDelta {
            index, arguments, ..
        }) = item
        {
            let index = usize::try_from(*index).unwrap();
            if counts.len() <= index {
                counts.resize(index + 1, 0);
            }
            if !arguments.is_empty() {
                counts[index] += 1;
            }
        }
    }
    counts
}

/// Checks a response to [`two_tool_calls`], the reply with number `sequence` on the mock.
fn assert_two_tool_calls(format: WireFormat, sequence: u64, response: &ChatResponse) {
    let context = format!("{format:?}, reply {sequence}");
    assert_eq!(response.text, "", "{context}");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls, "{context}");
    assert_eq!(response.usage.unwrap().output_tokens, 2, "{context}");
    assert_eq!(
        response.usage.unwrap().input_tokens,
        PROMPT_TOKENS,
        "{context}"
    );

    let expected = two_tool_calls();
    assert_eq!(response.tool_calls.len(), expected.len(), "{context}");
    for (index, (call, sent)) in response.tool_calls.iter().zip(&expected).enumerate() {
        assert_eq!(call.name, sent.name, "{context}, call {index}");
        assert_eq!(call.arguments, sent.arguments, "{context}, call {index}");
        assert!(!call.id.is_empty(), "{context}, call {index}");
        if let Some(id) = sent_call_id(format, sequence, index) {
            assert_eq!(call.id, id, "{context}, call {index}");
        }
    }
    assert_ne!(
        response.tool_calls[0].id, response.tool_calls[1].id,
        "{context}"
    );
}

#[tokio::test]
async fn scripted_tool_calls_parsed() {
    for format in WireFormat::ALL {
        let mock = start(5).await;
        let provider = adapter(format, &mock);
        mock.reply_next(MockReply::ToolCalls(two_tool_calls()));
        mock.reply_next(MockReply::ToolCalls(two_tool_calls()));

        let items = stream_items(provider.as_ref(), &chat_request()).await;
        let whole = provider.complete(&chat_request()).await.unwrap();

        let mut accumulator = providers::ResponseAccumulator::new();
        for item in &items {
            accumulator.push(item.as_ref().unwrap());
        }
        assert_two_tool_calls(format, 1, &accumulator.into_response());
        assert_two_tool_calls(format, 2, &whole);

        // Formats that stream arguments as text send each call's arguments in two fragments.
        let fragments = argument_fragment_counts(&items);
        let expected_fragments = match format {
            WireFormat::OpenAi | WireFormat::Groq | WireFormat::Anthropic => [2, 2],
            WireFormat::Gemini | WireFormat::Ollama => [1, 1],
        };
        assert_eq!(fragments, expected_fragments, "{format:?}: {items:?}");
    }
}

#[tokio::test]
async fn scripted_malformed_arguments_kept_raw() {
    let malformed = r#"{"city":"#;
    for format in WireFormat::ALL {
        let mock = start(5).await;
        let provider = adapter(format, &mock);
        for _ in 0..2 {
            mock.reply_next(MockReply::ToolCalls(vec![tool_call(
                "get_weather",
                json!(malformed),
            )]));
        }

        let streamed = collect_response(provider.stream(&chat_request()).await.unwrap())
            .await
            .unwrap();
        let whole = provider.complete(&chat_request()).await.unwrap();

        for response in [streamed, whole] {
            assert_eq!(response.tool_calls.len(), 1, "{format:?}: {response:?}");
            assert_eq!(
                response.tool_calls[0].arguments,
                json!(malformed),
                "{format:?}"
            );
        }
    }
}

#[tokio::test]
async fn scripted_text_parsed_exactly() {
    let text = "The answer is 42.\nAsk again  later. ";
    for format in WireFormat::ALL {
        let mock = start(12).await;
        let provider = adapter(format, &mock);
        mock.reply_next(MockReply::Text(text.to_owned()));
        mock.reply_next(MockReply::Text(text.to_owned()));
        let request = ChatRequest {
            max_tokens: Some(2),
            ..chat_request()
        };

        let items = stream_items(provider.as_ref(), &request).await;
        let whole = provider.complete(&request).await.unwrap();

        let deltas: Vec<String> = items
            .iter()
            .filter_map(|item| match item {
                Ok(StreamEvent::TextDelta(delta)) => Some(delta.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            deltas,
            [
                "The",
                " answer",
                " is",
                " 42.",
                "\nAsk",
                " again",
                "  later. "
            ],
            "{format:?}"
        );
        let mut accumulator = providers::ResponseAccumulator::new();
        for item in &items {
            accumulator.push(item.as_ref().unwrap());
        }
        for response in [accumulator.into_response(), whole] {
            assert_eq!(response.text, text, "{format:?}");
            assert!(response.tool_calls.is_empty(), "{format:?}");
            assert_eq!(response.finish_reason, FinishReason::Stop, "{format:?}");
            assert_eq!(response.usage.unwrap().output_tokens, 7, "{format:?}");
        }
    }
}

#[tokio::test]
async fn scripted_replies_apply_in_order() {
    for format in WireFormat::ALL {
        let mock = start(3).await;
        let provider = adapter(format, &mock);
        mock.reply_next(MockReply::Text("first".to_owned()));
        mock.reply_next(MockReply::Text("second".to_owned()));

        let mut texts = Vec::new();
        for _ in 0..3 {
            texts.push(provider.complete(&chat_request()).await.unwrap().text);
        }

        assert_eq!(
            texts,
            ["first", "second", &reply_tokens(3).concat()],
            "{format:?}"
        );
    }
}

#[tokio::test]
async fn failure_precedes_scripted_reply() {
    for format in WireFormat::ALL {
        let mock = start(3).await;
        let provider = adapter(format, &mock);
        mock.reply_next(MockReply::Text("scripted".to_owned()));
        mock.fail_next(status_failure(500, None));
        mock.fail_next(MockFailure::CutMidStream { after_tokens: 1 });

        let status_error = provider.complete(&chat_request()).await.unwrap_err();
        let cut = collect_response(provider.stream(&chat_request()).await.unwrap()).await;
        let scripted = provider.complete(&chat_request()).await.unwrap();

        assert_eq!(status_error.code(), "unavailable", "{format:?}");
        assert_eq!(cut.unwrap_err().code(), "unavailable", "{format:?}");
        assert_eq!(scripted.text, "scripted", "{format:?}");
    }
}

/// An agent's tool loop: the model calls a tool, the client sends the result back, and the
/// model replies with text. Each adapter's follow-up request, with the call and its result, passes the
/// mock's checks.
#[tokio::test]
async fn scripted_tool_loop_round_trip() {
    for format in WireFormat::ALL {
        let mock = start(3).await;
        let provider = adapter(format, &mock);
        mock.reply_next(MockReply::ToolCalls(vec![tool_call(
            "get_weather",
            json!({"city": "Paris"}),
        )]));
        mock.reply_next(MockReply::Text("It is sunny in Paris.".to_owned()));

        let first = collect_response(provider.stream(&chat_request()).await.unwrap())
            .await
            .unwrap();
        let calls: &[ToolCall] = &first.tool_calls;
        let mut follow_up = chat_request();
        follow_up
            .messages
            .push(ChatMessage::assistant_tool_calls("", calls.to_vec()));
        follow_up.messages.push(ChatMessage::tool_result(
            calls[0].id.clone(),
            calls[0].name.clone(),
            "sunny",
        ));
        let second = collect_response(provider.stream(&follow_up).await.unwrap())
            .await
            .unwrap();

        assert_eq!(first.finish_reason, FinishReason::ToolCalls, "{format:?}");
        assert_eq!(calls.len(), 1, "{format:?}");
        assert_eq!(second.text, "It is sunny in Paris.", "{format:?}");
        assert_eq!(second.finish_reason, FinishReason::Stop, "{format:?}");
        let received = mock.received();
        assert_eq!(received.len(), 2, "{format:?}");
        let follow_up_body = received[1].body.to_string();
        assert!(
            follow_up_body.contains("sunny"),
            "{format:?}: {follow_up_body}"
        );
    }
}
