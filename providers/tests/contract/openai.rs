//! The OpenAI Chat Completions fixture, and the OpenAI wire format that the Groq fixture
//! shares with its own dialect.

use providers::{ApiKey, ChatMessage, ChatProvider, ChatRequest, ImageInput, OpenAi, Role};
use serde_json::{Value, json};

use crate::{
    ANSWER_DELTAS, ANSWER_TEXT, CACHED_INPUT_TOKENS, INPUT_TOKENS, MockBody, MockResponse,
    OUTPUT_TOKENS, ProviderFixture, REASONING_TOKENS, RETRY_AFTER_SECONDS, RecordedRequest,
    Scenario, header, sse_event,
};

/// The key every OpenAI-format adapter of the suite sends.
pub const API_KEY: &str = "sk-contract-test";

/// What an OpenAI-compatible provider changes in OpenAI's format.
pub struct Dialect {
    /// Path of the chat endpoint on the local server, such as `/v1/chat/completions`.
    pub chat_path: &'static str,
    /// Where a stream reports usage.
    pub stream_usage: StreamUsage,
}

/// Where a streamed response carries its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    /// A last chunk with no choices and a `usage` object, sent only when the request sets
    /// `stream_options.include_usage`.
    UsageChunk,
    /// `x_groq.usage` in the chunk that carries the finish reason.
    XGroq,
}

pub const OPENAI: Dialect = Dialect {
    chat_path: "/v1/chat/completions",
    stream_usage: StreamUsage::UsageChunk,
};

pub struct OpenAiFixture;

impl ProviderFixture for OpenAiFixture {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn adapter(&self, client: reqwest::Client, server_base: &str) -> Box<dyn ChatProvider> {
        let base_url = format!("{server_base}/v1");
        Box::new(OpenAi::new(client, base_url, ApiKey::new(API_KEY)))
    }

    fn respond(&self, scenario: &Scenario, request: &RecordedRequest) -> MockResponse {
        match scenario {
            Scenario::Refused => refusal(request),
            _ => respond(&OPENAI, scenario, request),
        }
    }

    fn check_request(&self, request: &RecordedRequest, sent: &ChatRequest, streaming: bool) {
        check_request(&OPENAI, request, sent, streaming);
    }

    fn error_statuses(&self) -> Vec<u16> {
        vec![400, 401, 403, 404, 429, 500, 503]
    }
}

/// Builds OpenAI's refusal: the `refusal` field in place of `content`, with finish reason
/// `stop`.
fn refusal(request: &RecordedRequest) -> MockResponse {
    let text = "I'm sorry, I can't help with that.";
    if !is_streaming(request) {
        let message = json!({"role": "assistant", "content": null, "refusal": text});
        return ok_json(completion(message, "stop", usage(0, 0)));
    }

    let mut events = vec![
        chunk(
            json!({"role": "assistant", "content": null, "refusal": ""}),
            None,
        ),
        chunk(json!({"refusal": "I'm sorry, "}), None),
        chunk(json!({"refusal": "I can't help with that."}), None),
        chunk(json!({}), Some("stop")),
    ];
    events.push(usage_chunk(usage(0, 0)));
    ok_sse(events, true)
}

pub fn is_streaming(request: &RecordedRequest) -> bool {
    request.body["stream"] == json!(true)
}

/// Builds the response to `scenario` in the OpenAI format as modified by `dialect`.
pub fn respond(dialect: &Dialect, scenario: &Scenario, request: &RecordedRequest) -> MockResponse {
    let streaming = is_streaming(request);
    match *scenario {
        Scenario::PlainAnswer | Scenario::StreamedAnswer => answer(dialect, streaming, usage(0, 0)),
        Scenario::CachedUsage => answer(
            dialect,
            streaming,
            usage(CACHED_INPUT_TOKENS, REASONING_TOKENS),
        ),
        Scenario::ToolCall => tool_calls(
            dialect,
            streaming,
            &[(
                "call_weather",
                "get_weather",
                &["{\"city\"", ":\"Par", "is\"}"],
            )],
        ),
        Scenario::ParallelToolCalls => tool_calls(
            dialect,
            streaming,
            &[
                ("call_weather", "get_weather", &["{\"city\":", "\"Paris\"}"]),
                ("call_time", "get_time", &["{\"zone\"", ":\"UTC\"}"]),
            ],
        ),
        Scenario::ToolCallWithoutArguments => {
            tool_calls(dialect, streaming, &[("call_list", "list_tools", &[""])])
        }
        Scenario::Refused => content_filter(dialect, streaming),
        Scenario::ErrorStatus(status) => error_status(status),
        Scenario::ContextTooLong => error_response(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages \
             resulted in 131072 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
        Scenario::ErrorMidStream => {
            let mut events = partial_answer();
            let error = json!({"error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error", "param": null, "code": null
            }});
            events.push(sse_event(None, &error.to_string()));
            chunked(events)
        }
        Scenario::CutStream => {
            let mut events = partial_answer();
            events.push(b"data: {\"id\":\"chatcmpl-contract\",\"object\":\"chat.compl".to_vec());
            chunked(events)
        }
    }
}

/// Builds the token usage of a reply, with the given cached and reasoning counts.
pub fn usage(cached_tokens: i64, reasoning_tokens: i64) -> Value {
    json!({
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// Builds a `chat.completion` object with one choice.
pub fn completion(message: Value, finish_reason: &str, usage: Value) -> Value {
    json!({
        "id": "chatcmpl-contract",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "contract-model",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": usage,
        "system_fingerprint": "fp_contract"
    })
}

/// Frames a `chat.completion.chunk` event with one choice.
pub fn chunk(delta: Value, finish_reason: Option<&str>) -> Vec<u8> {
    let chunk = json!({
        "id": "chatcmpl-contract",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "contract-model",
        "system_fingerprint": "fp_contract",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]
    });
    sse_event(None, &chunk.to_string())
}

/// Frames the usage chunk that OpenAI sends after the finish reason, with no choices.
fn usage_chunk(usage: Value) -> Vec<u8> {
    let chunk = json!({
        "id": "chatcmpl-contract",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "contract-model",
        "choices": [],
        "usage": usage
    });
    sse_event(None, &chunk.to_string())
}

/// Frames the end of a stream: the finish reason, and the usage where the dialect puts it,
/// which for OpenAI is a chunk of its own.
fn finish_events(dialect: &Dialect, finish_reason: &str, usage: Value) -> Vec<Vec<u8>> {
    match dialect.stream_usage {
        StreamUsage::UsageChunk => vec![chunk(json!({}), Some(finish_reason)), usage_chunk(usage)],
        StreamUsage::XGroq => {
            let mut usage = usage;
            usage["queue_time"] = json!(0.012);
            usage["prompt_time"] = json!(0.003);
            usage["completion_time"] = json!(0.02);
            usage["total_time"] = json!(0.023);
            let chunk = json!({
                "id": "chatcmpl-contract",
                "object": "chat.completion.chunk",
                "created": 1_767_225_600,
                "model": "contract-model",
                "system_fingerprint": "fp_contract",
                "choices": [{"index": 0, "delta": {}, "logprobs": null,
                             "finish_reason": finish_reason}],
                "x_groq": {"id": "req_contract", "usage": usage}
            });
            vec![sse_event(None, &chunk.to_string())]
        }
    }
}

fn answer(dialect: &Dialect, streaming: bool, usage: Value) -> MockResponse {
    if !streaming {
        let message = json!({"role": "assistant", "content": ANSWER_TEXT, "refusal": null});
        return ok_json(completion(message, "stop", usage));
    }

    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for delta in ANSWER_DELTAS {
        events.push(chunk(json!({"content": delta}), None));
    }
    events.extend(finish_events(dialect, "stop", usage));
    ok_sse(events, true)
}

/// Tool calls as `(id, name, argument fragments)`. A streamed call sends its id and name
/// first, then one chunk per fragment.
fn tool_calls(dialect: &Dialect, streaming: bool, calls: &[(&str, &str, &[&str])]) -> MockResponse {
    if !streaming {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, fragments)| {
                json!({"id": id, "type": "function",
                       "function": {"name": name, "arguments": fragments.concat()}})
            })
            .collect();
        let message = json!({"role": "assistant", "content": null, "tool_calls": calls});
        return ok_json(completion(message, "tool_calls", usage(0, 0)));
    }

    let mut events = vec![chunk(json!({"role": "assistant", "content": null}), None)];
    for (index, (id, name, fragments)) in calls.iter().enumerate() {
        let start = json!({"index": index, "id": id, "type": "function",
                           "function": {"name": name, "arguments": ""}});
        events.push(chunk(json!({"tool_calls": [start]}), None));
        for fragment in fragments.iter().filter(|fragment| !fragment.is_empty()) {
            let part = json!({"index": index, "function": {"arguments": fragment}});
            events.push(chunk(json!({"tool_calls": [part]}), None));
        }
    }
    events.extend(finish_events(dialect, "tool_calls", usage(0, 0)));
    ok_sse(events, true)
}

/// Builds a reply with the `content_filter` finish reason, which OpenAI documents for
/// content omitted by its filters.
fn content_filter(dialect: &Dialect, streaming: bool) -> MockResponse {
    if !streaming {
        let message = json!({"role": "assistant", "content": null});
        return ok_json(completion(message, "content_filter", usage(0, 0)));
    }
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    events.extend(finish_events(dialect, "content_filter", usage(0, 0)));
    ok_sse(events, true)
}

/// Frames the role chunk and the first two text deltas.
pub fn partial_answer() -> Vec<Vec<u8>> {
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for delta in &ANSWER_DELTAS[..2] {
        events.push(chunk(json!({"content": delta}), None));
    }
    events
}

fn error_status(status: u16) -> MockResponse {
    match status {
        400 => error_response(
            400,
            "Invalid value for 'temperature': must be between 0 and 2.",
            "invalid_request_error",
            None,
        ),
        401 => error_response(
            401,
            "Incorrect API key provided: sk-contr*****test.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => error_response(
            403,
            "Country, region, or territory not supported",
            "request_forbidden",
            Some("unsupported_country_region_territory"),
        ),
        404 => error_response(
            404,
            "The model `contract-model` does not exist or you do not have access to it.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => {
            let mut response = error_response(
                429,
                "Rate limit reached for contract-model on requests per min (RPM): Limit 3, \
                 Used 3, Requested 1.",
                "requests",
                Some("rate_limit_exceeded"),
            );
            response.headers.extend([
                ("retry-after".to_owned(), RETRY_AFTER_SECONDS.to_string()),
                ("x-ratelimit-limit-requests".to_owned(), "3".to_owned()),
                ("x-ratelimit-remaining-requests".to_owned(), "0".to_owned()),
            ]);
            response
        }
        500 => error_response(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        503 => error_response(
            503,
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
        ),
        _ => panic!("the OpenAI fixture has no body for HTTP status {status}"),
    }
}

/// Builds an error status with OpenAI's error body.
pub fn error_response(status: u16, message: &str, kind: &str, code: Option<&str>) -> MockResponse {
    MockResponse {
        status,
        headers: Vec::new(),
        body: MockBody::Json(json!({
            "error": {"message": message, "type": kind, "param": null, "code": code}
        })),
    }
}

pub fn ok_json(body: Value) -> MockResponse {
    MockResponse {
        status: 200,
        headers: Vec::new(),
        body: MockBody::Json(body),
    }
}

/// Builds a 200 event stream of `events`, ended by `data: [DONE]` when `done` is true.
pub fn ok_sse(mut events: Vec<Vec<u8>>, done: bool) -> MockResponse {
    if done {
        events.push(sse_event(None, "[DONE]"));
    }
    chunked(events)
}

/// Builds a 200 event stream of `events` as they are, with no end marker added.
pub fn chunked(events: Vec<Vec<u8>>) -> MockResponse {
    MockResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
        body: MockBody::Chunks(events),
    }
}

/// Checks the method, path, bearer token and the whole JSON body, built independently from
/// `sent` in the provider's documented shapes.
pub fn check_request(
    dialect: &Dialect,
    request: &RecordedRequest,
    sent: &ChatRequest,
    streaming: bool,
) {
    assert_eq!(request.method, "POST", "method");
    assert_eq!(request.path_and_query, dialect.chat_path, "path");
    assert_eq!(
        header(request, "authorization"),
        format!("Bearer {API_KEY}"),
        "authorization header"
    );
    assert!(
        header(request, "content-type").starts_with("application/json"),
        "content-type header"
    );

    let mut expected = json!({"model": sent.model, "messages": expected_messages(sent)});
    if let Some(temperature) = sent.temperature {
        expected["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = sent.max_tokens {
        expected["max_completion_tokens"] = json!(max_tokens);
    }
    if !sent.stop.is_empty() {
        expected["stop"] = json!(sent.stop);
    }
    if !sent.tools.is_empty() {
        let tools: Vec<Value> = sent
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters
                }})
            })
            .collect();
        expected["tools"] = json!(tools);
    }
    if streaming {
        expected["stream"] = json!(true);
        if dialect.stream_usage == StreamUsage::UsageChunk {
            expected["stream_options"] = json!({"include_usage": true});
        }
    }
    assert_eq!(request.body, expected, "request body");
}

fn expected_messages(sent: &ChatRequest) -> Vec<Value> {
    let mut messages = Vec::new();
    if let Some(system) = &sent.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(sent.messages.iter().map(expected_message));
    messages
}

fn expected_message(message: &ChatMessage) -> Value {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User if message.images.is_empty() => {
            json!({"role": "user", "content": message.content})
        }
        Role::User => {
            let mut parts = vec![json!({"type": "text", "text": message.content})];
            parts.extend(message.images.iter().map(|image| {
                let url = match image {
                    ImageInput::Url(url) => url.clone(),
                    ImageInput::Inline {
                        media_type,
                        data_base64,
                    } => format!("data:{media_type};base64,{data_base64}"),
                };
                json!({"type": "image_url", "image_url": {"url": url}})
            }));
            json!({"role": "user", "content": parts})
        }
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": message.content})
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function", "function": {
                        "name": call.name,
                        "arguments": call.arguments.to_string()
                    }})
                })
                .collect();
            let mut expected = json!({"role": "assistant", "tool_calls": calls});
            if !message.content.is_empty() {
                expected["content"] = json!(message.content);
            }
            expected
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content
        }),
    }
}
