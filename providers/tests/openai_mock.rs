//! The OpenAI adapter against the in-process mock provider, over real HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use mock_provider::{MockConfig, MockFailure, MockProvider, prompt_tokens, reply_tokens};
use providers::{
    ApiKey, ChatMessage, ChatProvider, ChatRequest, FinishReason, HttpSettings, OpenAi,
    ProviderError, ProviderKind, StreamEvent, collect_response, http_client,
};
use serde_json::json;

fn adapter(base_url: String, settings: &HttpSettings) -> OpenAi {
    let client = http_client(settings).unwrap();
    OpenAi::new(client, base_url, ApiKey::new("sk-test"))
}

fn chat_request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".to_owned(),
        system: Some("You are a test agent.".to_owned()),
        messages: vec![ChatMessage::user("Say hello to the integration test.")],
        ..ChatRequest::default()
    }
}

async fn start(config: MockConfig) -> (MockProvider, OpenAi) {
    let mock = MockProvider::start(config).await.unwrap();
    let openai = adapter(mock.base_url(), &HttpSettings::default());
    (mock, openai)
}

/// Streams a request and returns every item until the stream ends.
async fn stream_items(
    openai: &OpenAi,
    request: &ChatRequest,
) -> Vec<Result<StreamEvent, ProviderError>> {
    openai.stream(request).await.unwrap().collect().await
}

fn texts(count: usize) -> Vec<Result<StreamEvent, ProviderError>> {
    reply_tokens(count)
        .into_iter()
        .map(|token| Ok(StreamEvent::TextDelta(token)))
        .collect()
}

#[tokio::test]
async fn stream_returns_mock_reply() {
    let (mock, openai) = start(MockConfig::default()).await;

    let response = collect_response(openai.stream(&chat_request()).await.unwrap())
        .await
        .unwrap();

    let sent = &mock.requests()[0];
    assert_eq!(openai.kind(), ProviderKind::OpenAi);
    assert_eq!(response.text, reply_tokens(12).concat());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    let usage = response.usage.unwrap();
    assert_eq!(usage.input_tokens, prompt_tokens(sent));
    assert_eq!(usage.output_tokens, 12);
    assert_eq!(usage.cached_input_tokens, Some(0));
}

#[tokio::test]
async fn stream_events_in_wire_order() {
    let (_mock, openai) = start(MockConfig {
        tokens: 3,
        ..MockConfig::default()
    })
    .await;

    let items = stream_items(&openai, &chat_request()).await;

    let mut expected = texts(3);
    expected.push(Ok(StreamEvent::Finish(FinishReason::Stop)));
    assert_eq!(items[..4], expected[..]);
    assert_eq!(items.len(), 5);
    assert!(
        matches!(items[4], Ok(StreamEvent::Usage(_))),
        "last item: {:?}",
        items[4]
    );
}

#[tokio::test]
async fn stream_request_body_sent() {
    let (mock, openai) = start(MockConfig::default()).await;
    let request = ChatRequest {
        temperature: Some(0.5),
        stop: vec!["\n\n".to_owned()],
        ..chat_request()
    };

    stream_items(&openai, &request).await;

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0];
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are a test agent."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Say hello to the integration test."})
    );
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["stop"], json!(["\n\n"]));
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn complete_returns_mock_reply() {
    let (mock, openai) = start(MockConfig {
        tokens: 7,
        ..MockConfig::default()
    })
    .await;

    let response = openai.complete(&chat_request()).await.unwrap();

    let sent = &mock.requests()[0];
    assert_eq!(sent.get("stream"), None);
    assert_eq!(response.text, reply_tokens(7).concat());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert!(response.tool_calls.is_empty());
    let usage = response.usage.unwrap();
    assert_eq!(usage.input_tokens, prompt_tokens(sent));
    assert_eq!(usage.output_tokens, 7);
}

#[tokio::test]
async fn max_tokens_ends_with_length() {
    let (mock, openai) = start(MockConfig::default()).await;
    let request = ChatRequest {
        max_tokens: Some(5),
        ..chat_request()
    };

    let streamed = collect_response(openai.stream(&request).await.unwrap())
        .await
        .unwrap();
    let completed = openai.complete(&request).await.unwrap();

    assert_eq!(mock.requests()[0]["max_completion_tokens"], 5);
    for response in [streamed, completed] {
        assert_eq!(response.text, reply_tokens(5).concat());
        assert_eq!(response.finish_reason, FinishReason::Length);
        assert_eq!(response.usage.unwrap().output_tokens, 5);
    }
}

#[tokio::test]
async fn probe_succeeds() {
    let (_mock, openai) = start(MockConfig::default()).await;

    assert_eq!(openai.probe().await, Ok(()));
}

#[tokio::test]
async fn empty_key_is_authentication_error() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let openai = OpenAi::new(
        http_client(&HttpSettings::default()).unwrap(),
        mock.base_url(),
        ApiKey::new(""),
    );

    let probe = openai.probe().await.unwrap_err();
    let stream = openai.stream(&chat_request()).await.err().unwrap();

    assert!(
        matches!(probe, ProviderError::Authentication(_)),
        "probe: {probe:?}"
    );
    assert!(
        matches!(stream, ProviderError::Authentication(_)),
        "stream: {stream:?}"
    );
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn wrong_path_is_not_found() {
    let mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let openai = adapter(
        format!("http://{}/v2/", mock.addr()),
        &HttpSettings::default(),
    );

    let error = openai.probe().await.unwrap_err();

    assert_eq!(
        error,
        ProviderError::NotFound(
            "Invalid URL (GET /v2/models) (HTTP status 404 Not Found)".to_owned()
        )
    );
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let (mock, openai) = start(MockConfig::default()).await;
    mock.fail_next(MockFailure::Status {
        status: 429,
        code: Some("rate_limit_exceeded".to_owned()),
        retry_after: Some(Duration::from_millis(1500)),
    });

    let error = openai.stream(&chat_request()).await.err().unwrap();

    assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));
    assert!(
        matches!(error, ProviderError::RateLimited { .. }),
        "error: {error:?}"
    );
    let response = openai.complete(&chat_request()).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn status_failures_mapped() {
    let (mock, openai) = start(MockConfig::default()).await;
    let cases: [(u16, Option<&str>, &str); 4] = [
        (400, Some("context_length_exceeded"), "context_too_long"),
        (400, None, "invalid_request"),
        (500, None, "unavailable"),
        (529, None, "overloaded"),
    ];

    for (status, code, expected) in cases {
        mock.fail_next(MockFailure::Status {
            status,
            code: code.map(str::to_owned),
            retry_after: None,
        });
        let error = openai.complete(&chat_request()).await.unwrap_err();
        assert_eq!(error.code(), expected, "status {status}: {error:?}");
    }
}

#[tokio::test]
async fn error_mid_stream_is_last_item() {
    let (mock, openai) = start(MockConfig::default()).await;
    mock.fail_next(MockFailure::ErrorMidStream { after_tokens: 3 });

    let items = stream_items(&openai, &chat_request()).await;

    assert_eq!(items.len(), 4);
    assert_eq!(items[..3], texts(3)[..]);
    assert!(
        matches!(&items[3], Err(ProviderError::Unavailable(_))),
        "last item: {:?}",
        items[3]
    );
}

#[tokio::test]
async fn cut_stream_is_unavailable() {
    let (mock, openai) = start(MockConfig::default()).await;
    mock.fail_next(MockFailure::CutMidStream { after_tokens: 2 });

    let items = stream_items(&openai, &chat_request()).await;

    assert_eq!(items.len(), 3);
    assert_eq!(items[..2], texts(2)[..]);
    assert!(
        matches!(&items[2], Err(ProviderError::Unavailable(_))),
        "last item: {:?}",
        items[2]
    );
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let openai = adapter(format!("http://{addr}/v1"), &HttpSettings::default());

    let error = openai.probe().await.unwrap_err();

    assert!(
        matches!(&error, ProviderError::Unavailable(message) if message.contains("onnect")),
        "error: {error:?}"
    );
}

#[tokio::test]
async fn silence_longer_than_read_timeout() {
    let config = MockConfig {
        time_to_first_token: Duration::from_secs(30),
        ..MockConfig::default()
    };
    let mock = MockProvider::start(config).await.unwrap();
    let settings = HttpSettings {
        read_timeout: Duration::from_millis(300),
        ..HttpSettings::default()
    };
    let openai = adapter(mock.base_url(), &settings);

    let streamed = stream_items(&openai, &chat_request()).await;
    let completed = openai.complete(&chat_request()).await.unwrap_err();

    assert_eq!(streamed, vec![Err(ProviderError::Timeout)]);
    assert_eq!(completed, ProviderError::Timeout);
}

#[tokio::test]
async fn read_timeout_is_not_a_total_timeout() {
    // Six chunks 300 ms apart take 1.5 s in total, longer than the 1 s read timeout.
    let config = MockConfig {
        tokens: 6,
        gap: Duration::from_millis(300),
        ..MockConfig::default()
    };
    let mock = MockProvider::start(config).await.unwrap();
    let settings = HttpSettings {
        read_timeout: Duration::from_secs(1),
        ..HttpSettings::default()
    };
    let openai = adapter(mock.base_url(), &settings);

    let response = collect_response(openai.stream(&chat_request()).await.unwrap())
        .await
        .unwrap();

    assert_eq!(response.text, reply_tokens(6).concat());
}
