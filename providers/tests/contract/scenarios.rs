//! The scenario tests: each runs every fixture and asserts one normalised outcome for all.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use providers::{
    ChatProvider, ChatRequest, ChatResponse, FinishReason, HttpSettings, ProviderError,
    ResponseAccumulator, StreamEvent, Usage, http_client,
};
use serde_json::{Value, json};

use crate::requests::{conversation_request, tool_request};
use crate::server::{BodyEnding, MockServer};
use crate::{
    ANSWER_DELTAS, ANSWER_TEXT, CACHED_INPUT_TOKENS, INPUT_TOKENS, OUTPUT_TOKENS, ProviderFixture,
    REASONING_TOKENS, RETRY_AFTER_SECONDS, Scenario, fixtures,
};

type Item = Result<StreamEvent, ProviderError>;

/// Runs `check` for every fixture, each in its own task so that one failing adapter does
/// not hide the others, and fails naming every fixture whose check panicked.
async fn for_each_fixture<F, Fut>(label: &str, check: F)
where
    F: Fn(Arc<dyn ProviderFixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut failed = Vec::new();
    for fixture in fixtures() {
        let fixture: Arc<dyn ProviderFixture> = Arc::from(fixture);
        let name = fixture.name();
        if tokio::spawn(check(fixture)).await.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "{label} failed for {failed:?}. The panic messages above name the cause."
    );
}

/// Runs `check` for every fixture that supports `scenario`, and reports the others as
/// skipped.
async fn for_each_supporting<F, Fut>(scenario: Scenario, check: F)
where
    F: Fn(Arc<dyn ProviderFixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let label = format!("{scenario:?}");
    for_each_fixture(&label, |fixture| {
        let supported = fixture.supports(&scenario);
        if !supported {
            eprintln!(
                "{}: {label} skipped, the provider cannot produce it",
                fixture.name()
            );
        }
        let run = supported.then(|| check(fixture));
        async move {
            if let Some(run) = run {
                run.await;
            }
        }
    })
    .await;
}

/// One fixture's adapter, pointed at a local server that plays one scenario.
struct Contract {
    fixture: Arc<dyn ProviderFixture>,
    server: MockServer,
    adapter: Box<dyn ChatProvider>,
}

impl Contract {
    async fn start(fixture: Arc<dyn ProviderFixture>, scenario: Scenario) -> Self {
        Self::start_with_ending(fixture, scenario, BodyEnding::Complete).await
    }

    async fn start_with_ending(
        fixture: Arc<dyn ProviderFixture>,
        scenario: Scenario,
        ending: BodyEnding,
    ) -> Self {
        let server = MockServer::start(Arc::clone(&fixture), scenario, ending).await;
        let client = http_client(&HttpSettings::default()).unwrap();
        let adapter = fixture.adapter(client, server.base_url());
        Self {
            fixture,
            server,
            adapter,
        }
    }

    fn name(&self) -> &'static str {
        self.fixture.name()
    }

    async fn complete(&self, sent: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let before = self.server.requests().len();
        let result = self.adapter.complete(sent).await;
        self.check_new_request(before, sent, false, &result);
        result
    }

    /// Streams `sent` and collects every item, or returns the error `stream()` returned.
    async fn stream(&self, sent: &ChatRequest) -> Result<Vec<Item>, ProviderError> {
        let before = self.server.requests().len();
        let result = self.adapter.stream(sent).await;
        let items = match result {
            Ok(stream) => Ok(stream.collect().await),
            Err(error) => Err(error),
        };
        self.check_new_request(before, sent, true, &items);
        items
    }

    async fn stream_items(&self, sent: &ChatRequest) -> Vec<Item> {
        let name = self.name();
        self.stream(sent)
            .await
            .unwrap_or_else(|error| panic!("{name}: stream() failed: {error:?}"))
    }

    async fn complete_response(&self, sent: &ChatRequest) -> ChatResponse {
        let name = self.name();
        self.complete(sent)
            .await
            .unwrap_or_else(|error| panic!("{name}: complete() failed: {error:?}"))
    }

    /// Checks that the adapter sent exactly one request and that it is what the provider
    /// expects. `outcome` is the call's result, shown when the count is wrong.
    fn check_new_request(
        &self,
        before: usize,
        sent: &ChatRequest,
        streaming: bool,
        outcome: &dyn Debug,
    ) {
        let requests = self.server.requests();
        assert_eq!(
            requests.len(),
            before + 1,
            "{}: number of HTTP requests sent for one call, which returned {outcome:?}",
            self.name()
        );
        self.fixture
            .check_request(&requests[before], sent, streaming);
    }
}

fn text_deltas(items: &[Item]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::TextDelta(text)) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn finish_reasons(items: &[Item]) -> Vec<FinishReason> {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::Finish(reason)) => Some(*reason),
            _ => None,
        })
        .collect()
}

/// Folds a stream that must have ended without an error into a response.
fn accumulate(name: &str, items: &[Item]) -> ChatResponse {
    let mut accumulator = ResponseAccumulator::new();
    for item in items {
        match item {
            Ok(event) => accumulator.push(event),
            Err(error) => panic!("{name}: stream failed: {error:?}; items: {items:?}"),
        }
    }
    accumulator.into_response()
}

/// Checks the stream events that every successful stream shares: no empty text delta and
/// exactly one finish reason.
fn assert_stream_shape(name: &str, items: &[Item], finish: FinishReason) {
    assert!(
        !text_deltas(items).contains(&""),
        "{name}: empty text delta in {items:?}"
    );
    assert_eq!(
        finish_reasons(items),
        vec![finish],
        "{name}: finish reasons of the stream"
    );
}

fn answer_usage() -> Usage {
    Usage {
        input_tokens: INPUT_TOKENS,
        output_tokens: OUTPUT_TOKENS,
        ..Usage::default()
    }
}

/// Checks input and output tokens. Cached and reasoning counts are the business of
/// [`Scenario::CachedUsage`], because providers that report them report zeros here.
fn assert_answer_usage(name: &str, usage: Option<Usage>) {
    let usage = usage.unwrap_or_else(|| panic!("{name}: answer has no usage"));
    assert_eq!(usage.input_tokens, INPUT_TOKENS, "{name}: input tokens");
    assert_eq!(usage.output_tokens, OUTPUT_TOKENS, "{name}: output tokens");
}

fn assert_answer(name: &str, response: &ChatResponse) {
    assert_eq!(response.text, ANSWER_TEXT, "{name}: answer text");
    assert!(
        response.tool_calls.is_empty(),
        "{name}: unexpected tool calls {:?}",
        response.tool_calls
    );
    assert_eq!(response.finish_reason, FinishReason::Stop, "{name}: finish");
    assert_answer_usage(name, response.usage);
}

/// Checks names and arguments in order, and that ids are present and distinct, because
/// providers without call ids get generated ones.
fn assert_tool_calls(name: &str, response: &ChatResponse, expected: &[(&str, Value)]) {
    let calls: Vec<(&str, &Value)> = response
        .tool_calls
        .iter()
        .map(|call| (call.name.as_str(), &call.arguments))
        .collect();
    let expected: Vec<(&str, &Value)> = expected
        .iter()
        .map(|(tool, arguments)| (*tool, arguments))
        .collect();
    assert_eq!(calls, expected, "{name}: tool call names and arguments");

    let ids: HashSet<&str> = response
        .tool_calls
        .iter()
        .map(|call| call.id.as_str())
        .collect();
    assert!(!ids.contains(""), "{name}: tool call without id");
    assert_eq!(
        ids.len(),
        response.tool_calls.len(),
        "{name}: tool call ids are not unique: {:?}",
        response.tool_calls
    );
    assert_eq!(
        response.finish_reason,
        FinishReason::ToolCalls,
        "{name}: finish"
    );
    assert_eq!(response.text, "", "{name}: text next to the tool calls");
}

/// Runs a tool scenario with `complete()` and with `stream()` and checks the calls.
async fn check_tool_scenario(scenario: Scenario, expected: Vec<(&'static str, Value)>) {
    for_each_supporting(scenario, |fixture| {
        let expected = expected.clone();
        async move {
            let contract = Contract::start(fixture, scenario).await;
            let name = contract.name();
            let sent = tool_request();

            let completed = contract.complete_response(&sent).await;
            let items = contract.stream_items(&sent).await;

            assert_tool_calls(&format!("{name} complete()"), &completed, &expected);
            let streamed = accumulate(name, &items);
            assert_stream_shape(name, &items, FinishReason::ToolCalls);
            assert_tool_calls(&format!("{name} stream()"), &streamed, &expected);
        }
    })
    .await;
}

#[tokio::test]
async fn plain_answer() {
    for_each_supporting(Scenario::PlainAnswer, |fixture| async move {
        let contract = Contract::start(fixture, Scenario::PlainAnswer).await;

        let response = contract.complete_response(&conversation_request()).await;

        assert_eq!(
            contract.adapter.kind().as_str(),
            contract.name(),
            "adapter kind"
        );
        assert_answer(contract.name(), &response);
    })
    .await;
}

#[tokio::test]
async fn streamed_answer() {
    for_each_supporting(Scenario::StreamedAnswer, |fixture| async move {
        let contract = Contract::start(fixture, Scenario::StreamedAnswer).await;
        let name = contract.name();

        let items = contract.stream_items(&conversation_request()).await;

        assert_eq!(text_deltas(&items), ANSWER_DELTAS, "{name}: text deltas");
        assert_stream_shape(name, &items, FinishReason::Stop);
        let last_usage = items.iter().rev().find_map(|item| match item {
            Ok(StreamEvent::Usage(usage)) => Some(*usage),
            _ => None,
        });
        assert_answer_usage(&format!("{name} last usage event"), last_usage);
        assert_answer(name, &accumulate(name, &items));
    })
    .await;
}

#[tokio::test]
async fn tool_call() {
    let expected = vec![("get_weather", json!({"city": "Paris"}))];
    check_tool_scenario(Scenario::ToolCall, expected).await;
}

#[tokio::test]
async fn parallel_tool_calls() {
    let expected = vec![
        ("get_weather", json!({"city": "Paris"})),
        ("get_time", json!({"zone": "UTC"})),
    ];
    check_tool_scenario(Scenario::ParallelToolCalls, expected).await;
}

#[tokio::test]
async fn tool_call_without_arguments() {
    let expected = vec![("list_tools", json!({}))];
    check_tool_scenario(Scenario::ToolCallWithoutArguments, expected).await;
}

#[tokio::test]
async fn cached_usage() {
    for_each_supporting(Scenario::CachedUsage, |fixture| async move {
        let reasoning_tokens = fixture
            .reports_reasoning_tokens()
            .then_some(REASONING_TOKENS);
        let expected = Usage {
            cached_input_tokens: Some(CACHED_INPUT_TOKENS),
            reasoning_tokens,
            ..answer_usage()
        };
        let contract = Contract::start(fixture, Scenario::CachedUsage).await;
        let name = contract.name();
        let sent = conversation_request();

        let completed = contract.complete_response(&sent).await;
        let items = contract.stream_items(&sent).await;

        assert_answer(&format!("{name} complete()"), &completed);
        assert_eq!(completed.usage, Some(expected), "{name}: complete() usage");
        let streamed = accumulate(name, &items);
        assert_stream_shape(name, &items, FinishReason::Stop);
        assert_answer(&format!("{name} stream()"), &streamed);
        assert_eq!(streamed.usage, Some(expected), "{name}: stream() usage");
    })
    .await;
}

/// The refusal text differs between providers (some send none), so only the finish reason
/// and the absence of tool calls are common.
#[tokio::test]
async fn refused() {
    for_each_supporting(Scenario::Refused, |fixture| async move {
        let contract = Contract::start(fixture, Scenario::Refused).await;
        let name = contract.name();
        let sent = conversation_request();

        let completed = contract.complete_response(&sent).await;
        let items = contract.stream_items(&sent).await;

        let streamed = accumulate(name, &items);
        assert_stream_shape(name, &items, FinishReason::ContentFilter);
        for response in [completed, streamed] {
            assert_eq!(
                response.finish_reason,
                FinishReason::ContentFilter,
                "{name}: finish of {response:?}"
            );
            assert!(
                response.tool_calls.is_empty(),
                "{name}: tool calls in {response:?}"
            );
        }
    })
    .await;
}

/// Returns the error each documented status maps to, named by [`ProviderError::code`].
fn expected_error_code(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_request",
        401 => "authentication",
        403 => "permission",
        404 => "not_found",
        429 => "rate_limited",
        // Groq's 498 means its flex tier is out of capacity; 529 is Anthropic's overload.
        498 | 529 => "overloaded",
        500 | 502 | 503 => "unavailable",
        504 => "timeout",
        _ => panic!("the suite has no expected error for HTTP status {status}"),
    }
}

fn assert_error(name: &str, error: &ProviderError, code: &str, retry_after: Option<Duration>) {
    assert_eq!(error.code(), code, "{name}: error kind of {error:?}");
    assert_eq!(
        error.retry_after(),
        retry_after,
        "{name}: retry-after of {error:?}"
    );
}

#[tokio::test]
async fn error_statuses() {
    for_each_fixture("ErrorStatus", |fixture| async move {
        for status in fixture.error_statuses() {
            let scenario = Scenario::ErrorStatus(status);
            let contract = Contract::start(Arc::clone(&fixture), scenario).await;
            let name = format!("{} status {status}", contract.name());
            let code = expected_error_code(status);
            let retry_after = (status == 429).then(|| Duration::from_secs(RETRY_AFTER_SECONDS));
            let sent = conversation_request();

            let completed = contract.complete(&sent).await;
            let streamed = contract.stream(&sent).await;

            let completed = completed.expect_err(&format!("{name}: complete() succeeded"));
            assert_error(&format!("{name} complete()"), &completed, code, retry_after);
            let streamed = streamed.expect_err(&format!("{name}: stream() succeeded"));
            assert_error(&format!("{name} stream()"), &streamed, code, retry_after);
        }
    })
    .await;
}

#[tokio::test]
async fn context_too_long() {
    for_each_supporting(Scenario::ContextTooLong, |fixture| async move {
        let contract = Contract::start(fixture, Scenario::ContextTooLong).await;
        let name = contract.name();
        let sent = conversation_request();

        let completed = contract.complete(&sent).await;
        let streamed = contract.stream(&sent).await;

        let completed = completed.expect_err(&format!("{name}: complete() succeeded"));
        assert_error(name, &completed, "context_too_long", None);
        let streamed = streamed.expect_err(&format!("{name}: stream() succeeded"));
        assert_error(name, &streamed, "context_too_long", None);
    })
    .await;
}

/// Checks that a failed stream carries the first two deltas, reports no finish reason and
/// ends with one error, which it returns.
fn assert_failed_stream<'a>(name: &str, items: &'a [Item]) -> &'a ProviderError {
    assert_eq!(
        text_deltas(items),
        ANSWER_DELTAS[..2],
        "{name}: text deltas before the failure"
    );
    assert_eq!(finish_reasons(items), [], "{name}: finish reasons");
    let errors: Vec<&ProviderError> = items
        .iter()
        .filter_map(|item| item.as_ref().err())
        .collect();
    assert_eq!(errors.len(), 1, "{name}: errors in {items:?}");
    assert!(
        items.last().is_some_and(Result::is_err),
        "{name}: the error is not the last item of {items:?}"
    );
    errors[0]
}

#[tokio::test]
async fn error_mid_stream() {
    for_each_supporting(Scenario::ErrorMidStream, |fixture| async move {
        let contract = Contract::start(fixture, Scenario::ErrorMidStream).await;
        let name = contract.name();

        let items = contract.stream_items(&conversation_request()).await;

        let error = assert_failed_stream(name, &items);
        assert!(
            matches!(
                error,
                ProviderError::Unavailable(_) | ProviderError::Overloaded(_)
            ),
            "{name}: a server-side failure in the stream gave {error:?}"
        );
    })
    .await;
}

/// Runs the cut twice: once the body ends cleanly after the partial SSE or NDJSON data, and
/// once the server drops the connection in the middle of the chunked body.
#[tokio::test]
async fn cut_stream() {
    for_each_supporting(Scenario::CutStream, |fixture| async move {
        for ending in [BodyEnding::Complete, BodyEnding::Abort] {
            let fixture = Arc::clone(&fixture);
            let contract = Contract::start_with_ending(fixture, Scenario::CutStream, ending).await;
            let name = format!("{} body ending {ending:?}", contract.name());

            let items = contract.stream_items(&conversation_request()).await;

            let error = assert_failed_stream(&name, &items);
            assert!(
                matches!(error, ProviderError::Unavailable(_)),
                "{name}: a cut stream gave {error:?}"
            );
        }
    })
    .await;
}
