//! Every provider adapter of the `providers` crate against the mock over real HTTP: the
//! adapters find the mock's routes, pass its key checks, read its replies and usage, and
//! classify its injected failures.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use mock_provider::{
    MockConfig, MockFailure, MockProvider, WireFormat, prompt_tokens, reply_tokens,
};
use providers::{
    Anthropic, ApiKey, ChatMessage, ChatProvider, ChatRequest, FinishReason, Gemini, Groq,
    HttpSettings, Ollama, OpenAi, ProviderError, StreamEvent, collect_response, http_client,
};

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
