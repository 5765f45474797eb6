//! The Anthropic Messages API fixture: JSON messages, the SSE event sequence from
//! `message_start` to `message_stop`, and Anthropic's error bodies.

use providers::{Anthropic, ApiKey, ChatMessage, ChatProvider, ChatRequest, ImageInput, Role};
use serde_json::{Value, json};

use crate::{
    ANSWER_DELTAS, ANSWER_TEXT, CACHED_INPUT_TOKENS, INPUT_TOKENS, MockBody, MockResponse,
    OUTPUT_TOKENS, ProviderFixture, RETRY_AFTER_SECONDS, RecordedRequest, Scenario, header,
    sse_event,
};

const API_KEY: &str = "sk-ant-contract-test";

/// The `anthropic-version` header the adapter must send.
const API_VERSION: &str = "2023-06-01";

/// The `max_tokens` the adapter sends when the request sets none, because Anthropic
/// requires the field.
const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct AnthropicFixture;

impl ProviderFixture for AnthropicFixture {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn adapter(&self, client: reqwest::Client, server_base: &str) -> Box<dyn ChatProvider> {
        Box::new(Anthropic::new(client, server_base, ApiKey::new(API_KEY)))
    }

    fn respond(&self, scenario: &Scenario, request: &RecordedRequest) -> MockResponse {
        let streaming = request.body["stream"] == json!(true);
        match *scenario {
            Scenario::PlainAnswer | Scenario::StreamedAnswer => {
                answer(streaming, usage(INPUT_TOKENS, 0))
            }
            // Anthropic's input_tokens leaves out cache reads, so the prompt's 12 tokens are
            // 2 uncached and 10 read from the cache.
            Scenario::CachedUsage => answer(
                streaming,
                usage(INPUT_TOKENS - CACHED_INPUT_TOKENS, CACHED_INPUT_TOKENS),
            ),
            Scenario::ToolCall => tool_use(
                streaming,
                &[(
                    "toolu_01A09q90qw90lq917835lq9",
                    "get_weather",
                    &["{\"city\"", ": \"Par", "is\"}"],
                )],
            ),
            Scenario::ParallelToolCalls => tool_use(
                streaming,
                &[
                    (
                        "toolu_01A09q90qw90lq917835lq9",
                        "get_weather",
                        &["{\"city\": ", "\"Paris\"}"],
                    ),
                    (
                        "toolu_01B8ck4dJ2e3fGh5iJk6lMn7",
                        "get_time",
                        &["{\"zone\"", ": \"UTC\"}"],
                    ),
                ],
            ),
            Scenario::ToolCallWithoutArguments => tool_use(
                streaming,
                &[("toolu_01C7xYz8aBc9dEf0gHi1jKl2", "list_tools", &[""])],
            ),
            Scenario::Refused => refusal(streaming),
            Scenario::ErrorStatus(status) => error_status(status),
            Scenario::ContextTooLong => error_response(
                400,
                "invalid_request_error",
                "prompt is too long: 208310 tokens > 200000 maximum",
            ),
            Scenario::ErrorMidStream => {
                let mut events = partial_answer();
                let error = json!({"type": "error",
                                   "error": {"type": "overloaded_error", "message": "Overloaded"}});
                events.push(event(&error));
                event_stream(events)
            }
            Scenario::CutStream => {
                let mut events = partial_answer();
                events.push(b"event: content_block_delta\ndata: {\"type\":\"content_blo".to_vec());
                event_stream(events)
            }
        }
    }

    fn check_request(&self, request: &RecordedRequest, sent: &ChatRequest, streaming: bool) {
        assert_eq!(request.method, "POST", "method");
        assert_eq!(request.path_and_query, "/v1/messages", "path");
        assert_eq!(header(request, "x-api-key"), API_KEY, "x-api-key header");
        assert_eq!(
            header(request, "anthropic-version"),
            API_VERSION,
            "anthropic-version header"
        );
        assert!(
            header(request, "content-type").starts_with("application/json"),
            "content-type header"
        );
        assert!(
            request.headers.get("authorization").is_none(),
            "authorization header sent to Anthropic"
        );

        assert_eq!(request.body, expected_body(sent, streaming), "request body");
    }

    /// Lists the statuses of Anthropic's error documentation, except 402 `billing_error`,
    /// which the suite has no common outcome for.
    fn error_statuses(&self) -> Vec<u16> {
        vec![400, 401, 403, 404, 413, 429, 500, 504, 529]
    }

    /// Anthropic counts thinking tokens in `output_tokens` and reports no separate count.
    fn reports_reasoning_tokens(&self) -> bool {
        false
    }
}

/// Builds Anthropic's `usage` object for a reply of [`OUTPUT_TOKENS`] tokens.
fn usage(input_tokens: i64, cache_read_tokens: i64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cache_read_tokens,
        "output_tokens": OUTPUT_TOKENS
    })
}

/// Builds a complete `message` object.
fn message(content: Value, stop_reason: Option<&str>, usage: Value) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "contract-model",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage
    })
}

/// Frames one server-sent event named after the payload's `type`, as Anthropic sends them.
fn event(payload: &Value) -> Vec<u8> {
    let name = payload["type"].as_str().expect("stream payload has a type");
    sse_event(Some(name), &payload.to_string())
}

/// Builds `message_start`, whose usage carries the input counts and a first output count
/// of 1, followed by a `ping`.
fn message_start(usage: &Value) -> Vec<Vec<u8>> {
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let start = message(json!([]), None, start_usage);
    vec![
        event(&json!({"type": "message_start", "message": start})),
        event(&json!({"type": "ping"})),
    ]
}

/// Builds `message_delta` with the stop reason and the final output count, then
/// `message_stop`.
fn message_end(stop_reason: &str, usage: &Value) -> Vec<Vec<u8>> {
    vec![
        event(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": usage["output_tokens"]}
        })),
        event(&json!({"type": "message_stop"})),
    ]
}

fn text_block_start(index: u32) -> Vec<u8> {
    event(&json!({"type": "content_block_start", "index": index,
                  "content_block": {"type": "text", "text": ""}}))
}

fn text_delta(index: u32, text: &str) -> Vec<u8> {
    event(&json!({"type": "content_block_delta", "index": index,
                  "delta": {"type": "text_delta", "text": text}}))
}

fn block_stop(index: u32) -> Vec<u8> {
    event(&json!({"type": "content_block_stop", "index": index}))
}

fn answer(streaming: bool, usage: Value) -> MockResponse {
    if !streaming {
        let content = json!([{"type": "text", "text": ANSWER_TEXT}]);
        return ok_json(message(content, Some("end_turn"), usage));
    }

    let mut events = message_start(&usage);
    events.push(text_block_start(0));
    for delta in ANSWER_DELTAS {
        events.push(text_delta(0, delta));
    }
    events.push(block_stop(0));
    events.extend(message_end("end_turn", &usage));
    event_stream(events)
}

/// Answers with tool calls given as `(id, name, argument fragments)`. A streamed call is a
/// `tool_use` block whose arguments arrive as `input_json_delta` fragments, and a call
/// without arguments sends one empty fragment.
fn tool_use(streaming: bool, calls: &[(&str, &str, &[&str])]) -> MockResponse {
    let usage = usage(INPUT_TOKENS, 0);
    if !streaming {
        let content: Vec<Value> = calls
            .iter()
            .map(|(id, name, fragments)| {
                let input = match fragments.concat() {
                    arguments if arguments.is_empty() => json!({}),
                    arguments => serde_json::from_str(&arguments).expect("fragments are JSON"),
                };
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            })
            .collect();
        return ok_json(message(json!(content), Some("tool_use"), usage));
    }

    let mut events = message_start(&usage);
    for (index, (id, name, fragments)) in (0u32..).zip(calls) {
        events.push(event(&json!({
            "type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}
        })));
        for fragment in *fragments {
            events.push(event(&json!({
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": fragment}
            })));
        }
        events.push(block_stop(index));
    }
    events.extend(message_end("tool_use", &usage));
    event_stream(events)
}

/// Answers with the `refusal` stop reason, which Anthropic sets when it stops a response
/// for safety reasons, here after a short text.
fn refusal(streaming: bool) -> MockResponse {
    let usage = usage(INPUT_TOKENS, 0);
    let text = "I can't help with that.";
    if !streaming {
        let content = json!([{"type": "text", "text": text}]);
        return ok_json(message(content, Some("refusal"), usage));
    }

    let mut events = message_start(&usage);
    events.push(text_block_start(0));
    events.push(text_delta(0, text));
    events.push(block_stop(0));
    events.extend(message_end("refusal", &usage));
    event_stream(events)
}

/// Builds `message_start`, a text block and the first two text deltas.
fn partial_answer() -> Vec<Vec<u8>> {
    let mut events = message_start(&usage(INPUT_TOKENS, 0));
    events.push(text_block_start(0));
    for delta in &ANSWER_DELTAS[..2] {
        events.push(text_delta(0, delta));
    }
    events
}

fn error_status(status: u16) -> MockResponse {
    let (kind, message) = match status {
        400 => (
            "invalid_request_error",
            "temperature: range: 0..1 must contain the value",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "model: contract-model"),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests \
             per minute.",
        ),
        500 => ("api_error", "Internal server error"),
        504 => (
            "timeout_error",
            "Request timed out before a response was produced.",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => panic!("the Anthropic fixture has no body for HTTP status {status}"),
    };

    let mut response = error_response(status, kind, message);
    if status == 429 {
        response.headers.extend([
            ("retry-after".to_owned(), RETRY_AFTER_SECONDS.to_string()),
            (
                "anthropic-ratelimit-requests-limit".to_owned(),
                "50".to_owned(),
            ),
            (
                "anthropic-ratelimit-requests-remaining".to_owned(),
                "0".to_owned(),
            ),
        ]);
    }
    response
}

/// Builds an error status with Anthropic's error body.
fn error_response(status: u16, kind: &str, message: &str) -> MockResponse {
    MockResponse {
        status,
        headers: vec![(
            "request-id".to_owned(),
            "req_011CSHoEeqs5C35K2UUqR7Fy".to_owned(),
        )],
        body: MockBody::Json(json!({
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"
        })),
    }
}

fn ok_json(body: Value) -> MockResponse {
    MockResponse {
        status: 200,
        headers: Vec::new(),
        body: MockBody::Json(body),
    }
}

fn event_stream(events: Vec<Vec<u8>>) -> MockResponse {
    MockResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
        body: MockBody::Chunks(events),
    }
}

/// Builds the whole expected JSON body from `sent` in Anthropic's documented shapes.
fn expected_body(sent: &ChatRequest, streaming: bool) -> Value {
    let mut system: Vec<&str> = sent.system.iter().map(String::as_str).collect();
    let mut messages: Vec<Value> = Vec::new();
    for message in &sent.messages {
        if message.role == Role::System {
            system.push(&message.content);
            continue;
        }
        let (role, blocks) = expected_turn(message);
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                let content = last["content"].as_array_mut().expect("content is an array");
                content.extend(blocks);
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    }

    let mut expected = json!({
        "model": sent.model,
        "max_tokens": sent.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages
    });
    if !system.is_empty() {
        expected["system"] = json!(system.join("\n\n"));
    }
    if let Some(temperature) = sent.temperature {
        expected["temperature"] = json!(temperature);
    }
    if !sent.stop.is_empty() {
        expected["stop_sequences"] = json!(sent.stop);
    }
    if !sent.tools.is_empty() {
        let tools: Vec<Value> = sent
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters
                })
            })
            .collect();
        expected["tools"] = json!(tools);
    }
    if streaming {
        expected["stream"] = json!(true);
    }
    expected
}

/// Returns the role and content blocks of one message: images before text in a user turn,
/// text before `tool_use` in an assistant turn, and a tool result as a user turn.
fn expected_turn(message: &ChatMessage) -> (&'static str, Vec<Value>) {
    let text =
        || (!message.content.is_empty()).then(|| json!({"type": "text", "text": message.content}));
    match message.role {
        Role::User => {
            let mut blocks: Vec<Value> = message.images.iter().map(expected_image).collect();
            blocks.extend(text());
            ("user", blocks)
        }
        Role::Assistant => {
            let mut blocks: Vec<Value> = text().into_iter().collect();
            blocks.extend(message.tool_calls.iter().map(|call| {
                json!({"type": "tool_use", "id": call.id, "name": call.name,
                       "input": call.arguments})
            }));
            ("assistant", blocks)
        }
        Role::Tool => {
            let result = json!({
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content
            });
            ("user", vec![result])
        }
        Role::System => unreachable!("system messages join the system prompt"),
    }
}

fn expected_image(image: &ImageInput) -> Value {
    let source = match image {
        ImageInput::Url(url) => json!({"type": "url", "url": url}),
        ImageInput::Inline {
            media_type,
            data_base64,
        } => json!({"type": "base64", "media_type": media_type, "data": data_base64}),
    };
    json!({"type": "image", "source": source})
}
