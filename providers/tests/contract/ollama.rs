//! The Ollama fixture: `/api/chat` responses as one JSON object or as newline-delimited
//! JSON, and Ollama's `{"error": "..."}` bodies.
//!
//! Ollama has no content filter and reports no cached or reasoning tokens, so the fixture
//! declares [`Scenario::Refused`] and [`Scenario::CachedUsage`] unsupported.

use providers::{ChatMessage, ChatProvider, ChatRequest, ImageInput, Ollama, Role};
use serde_json::{Value, json};

use crate::requests::MODEL;
use crate::{
    ANSWER_DELTAS, ANSWER_TEXT, INPUT_TOKENS, MockBody, MockResponse, OUTPUT_TOKENS,
    ProviderFixture, RETRY_AFTER_SECONDS, RecordedRequest, Scenario, header,
};

/// Size of the pieces the NDJSON body is sent in, smaller than every line, so that each
/// line arrives split across reads.
const CHUNK_BYTES: usize = 48;

pub struct OllamaFixture;

impl ProviderFixture for OllamaFixture {
    fn name(&self) -> &'static str {
        "ollama"
    }

    /// Builds an adapter without a key, as for a local Ollama server.
    fn adapter(&self, client: reqwest::Client, server_base: &str) -> Box<dyn ChatProvider> {
        Box::new(Ollama::new(client, server_base, None))
    }

    fn respond(&self, scenario: &Scenario, request: &RecordedRequest) -> MockResponse {
        let streaming = request.body["stream"] == json!(true);
        match *scenario {
            Scenario::PlainAnswer | Scenario::StreamedAnswer => answer(streaming),
            // Ollama 0.12.10 and later send a call id and the call's index.
            Scenario::ToolCall => tool_calls(
                streaming,
                vec![json!({
                    "id": "call_lyywui55",
                    "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}
                })],
            ),
            // Older servers send no ids, so the adapter generates them.
            Scenario::ParallelToolCalls => tool_calls(
                streaming,
                vec![
                    json!({"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}),
                    json!({"function": {"name": "get_time", "arguments": {"zone": "UTC"}}}),
                ],
            ),
            // Ollama's server is written in Go, which encodes a nil map as `null`, so a call
            // whose arguments the server never filled arrives this way.
            Scenario::ToolCallWithoutArguments => tool_calls(
                streaming,
                vec![json!({"function": {"name": "list_tools", "arguments": null}})],
            ),
            Scenario::CachedUsage | Scenario::Refused => {
                panic!("the Ollama fixture does not support {scenario:?}")
            }
            Scenario::ErrorStatus(status) => error_status(status),
            Scenario::ContextTooLong => {
                error_response(400, "the input length exceeds the context length")
            }
            Scenario::ErrorMidStream => {
                let mut lines = partial_answer();
                lines.push(json!({"error": "an error was encountered while running the model"}));
                ndjson(&lines, b"")
            }
            Scenario::CutStream => {
                ndjson(&partial_answer(), b"{\"model\":\"contract-model\",\"crea")
            }
        }
    }

    fn check_request(&self, request: &RecordedRequest, sent: &ChatRequest, streaming: bool) {
        assert_eq!(request.method, "POST", "method");
        assert_eq!(request.path_and_query, "/api/chat", "path");
        assert!(
            request.headers.get("authorization").is_none(),
            "an adapter without a key sent an authorization header"
        );
        assert!(
            header(request, "content-type").starts_with("application/json"),
            "content-type header"
        );
        assert_eq!(request.body, expected_body(sent, streaming), "request body");
    }

    /// Returns the statuses docs.ollama.com lists (400, 404, 429, 500, 502), 401 from a
    /// remote server that needs a sign-in, and 503 from a server whose request queue is full.
    fn error_statuses(&self) -> Vec<u16> {
        vec![400, 401, 404, 429, 500, 502, 503]
    }

    fn supports(&self, scenario: &Scenario) -> bool {
        !matches!(scenario, Scenario::CachedUsage | Scenario::Refused)
    }

    fn reports_reasoning_tokens(&self) -> bool {
        false
    }
}

/// Builds a line of a streamed response, or with `done: true` the whole non-streamed body.
fn chat_object(message: Value, done: bool) -> Value {
    json!({
        "model": MODEL,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "message": message,
        "done": done
    })
}

/// Builds the final object: finish reason, token counts and durations in nanoseconds.
fn final_object(message: Value) -> Value {
    let mut object = chat_object(message, true);
    object["done_reason"] = json!("stop");
    object["total_duration"] = json!(512_000_000);
    object["load_duration"] = json!(2_000_000);
    object["prompt_eval_count"] = json!(INPUT_TOKENS);
    object["prompt_eval_duration"] = json!(60_000_000);
    object["eval_count"] = json!(OUTPUT_TOKENS);
    object["eval_duration"] = json!(400_000_000);
    object
}

fn assistant(content: &str) -> Value {
    json!({"role": "assistant", "content": content})
}

fn answer(streaming: bool) -> MockResponse {
    if !streaming {
        return ok_json(final_object(assistant(ANSWER_TEXT)));
    }

    let mut lines: Vec<Value> = ANSWER_DELTAS
        .iter()
        .map(|delta| chat_object(assistant(delta), false))
        .collect();
    lines.push(final_object(assistant("")));
    ndjson(&lines, b"")
}

/// Builds a response with complete tool calls. Ollama never splits a call, so a stream sends
/// one line per call and then the final line, whose `done_reason` is `stop` as for text.
fn tool_calls(streaming: bool, calls: Vec<Value>) -> MockResponse {
    let message =
        |calls: Vec<Value>| json!({"role": "assistant", "content": "", "tool_calls": calls});
    if !streaming {
        return ok_json(final_object(message(calls)));
    }

    let mut lines: Vec<Value> = calls
        .into_iter()
        .map(|call| chat_object(message(vec![call]), false))
        .collect();
    lines.push(final_object(assistant("")));
    ndjson(&lines, b"")
}

/// Returns the lines of the first two of [`ANSWER_DELTAS`].
fn partial_answer() -> Vec<Value> {
    ANSWER_DELTAS[..2]
        .iter()
        .map(|delta| chat_object(assistant(delta), false))
        .collect()
}

fn error_status(status: u16) -> MockResponse {
    match status {
        400 => error_response(400, "invalid character '}' looking for beginning of value"),
        // A remote server's sign-in error carries the URL to sign in at next to the message.
        401 => MockResponse {
            status: 401,
            headers: Vec::new(),
            body: MockBody::Json(json!({
                "error": "unauthorized",
                "signin_url": "https://ollama.com/connect?name=contract&key=contract-key"
            })),
        },
        404 => error_response(404, &format!("model '{MODEL}' not found")),
        429 => {
            let mut response = error_response(429, "too many requests");
            response
                .headers
                .push(("retry-after".to_owned(), RETRY_AFTER_SECONDS.to_string()));
            response
        }
        500 => error_response(500, "the model failed to generate a response"),
        502 => error_response(502, "cloud model is unreachable"),
        503 => error_response(
            503,
            "server busy, please try again.  maximum pending requests exceeded",
        ),
        _ => panic!("the Ollama fixture has no body for HTTP status {status}"),
    }
}

/// Builds an error status with Ollama's error body.
fn error_response(status: u16, message: &str) -> MockResponse {
    MockResponse {
        status,
        headers: Vec::new(),
        body: MockBody::Json(json!({ "error": message })),
    }
}

fn ok_json(body: Value) -> MockResponse {
    MockResponse {
        status: 200,
        headers: Vec::new(),
        body: MockBody::Json(body),
    }
}

/// Builds a 200 NDJSON stream of `lines`, each ended by a newline, then `tail` (bytes of an
/// unfinished line, or nothing), sent in pieces of [`CHUNK_BYTES`].
fn ndjson(lines: &[Value], tail: &[u8]) -> MockResponse {
    let mut body = Vec::new();
    for line in lines {
        body.extend_from_slice(line.to_string().as_bytes());
        body.push(b'\n');
    }
    body.extend_from_slice(tail);

    MockResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/x-ndjson".to_owned())],
        body: MockBody::Chunks(body.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect()),
    }
}

/// Builds the whole expected request body from `sent`, in Ollama's documented shapes and
/// independently of the adapter's code.
fn expected_body(sent: &ChatRequest, streaming: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &sent.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(sent.messages.iter().map(expected_message));

    let mut expected = json!({"model": sent.model, "messages": messages, "stream": streaming});
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

    let mut options = json!({});
    if let Some(temperature) = sent.temperature {
        options["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = sent.max_tokens {
        options["num_predict"] = json!(max_tokens);
    }
    if !sent.stop.is_empty() {
        options["stop"] = json!(sent.stop);
    }
    if options != json!({}) {
        expected["options"] = options;
    }
    expected
}

fn expected_message(message: &ChatMessage) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut expected = json!({"role": role, "content": message.content});

    if !message.images.is_empty() {
        let images: Vec<&str> = message
            .images
            .iter()
            .map(|image| match image {
                ImageInput::Inline { data_base64, .. } => data_base64.as_str(),
                ImageInput::Url(url) => url
                    .split_once(";base64,")
                    .map(|(_, data)| data)
                    .unwrap_or_else(|| panic!("the suite sent an image URL Ollama cannot take")),
            })
            .collect();
        expected["images"] = json!(images);
    }
    if !message.tool_calls.is_empty() {
        let calls: Vec<Value> = message
            .tool_calls
            .iter()
            .map(|call| json!({"function": {"name": call.name, "arguments": call.arguments}}))
            .collect();
        expected["tool_calls"] = json!(calls);
    }
    if message.role == Role::Tool {
        expected["tool_name"] = json!(message.tool_name);
    }
    expected
}
