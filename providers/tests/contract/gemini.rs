//! The Google Gemini fixture: `generateContent` and `streamGenerateContent?alt=sse` responses,
//! Google error bodies, and the request shape Gemini documents.

use providers::{ApiKey, ChatMessage, ChatProvider, ChatRequest, Gemini, ImageInput, Role};
use serde_json::{Value, json};

use crate::{
    ANSWER_DELTAS, ANSWER_TEXT, CACHED_INPUT_TOKENS, INPUT_TOKENS, MockBody, MockResponse,
    OUTPUT_TOKENS, ProviderFixture, REASONING_TOKENS, RETRY_AFTER_SECONDS, RecordedRequest,
    Scenario, header, sse_event,
};

const API_KEY: &str = "AIzaSy-contract-test";

/// The path prefix the adapter's base URL ends with, as in Gemini's public API.
const API_VERSION_PATH: &str = "/v1beta";

/// The thought signature the adapter puts on the first function call of a model turn.
const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

pub struct GeminiFixture;

impl ProviderFixture for GeminiFixture {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn adapter(&self, client: reqwest::Client, server_base: &str) -> Box<dyn ChatProvider> {
        let base_url = format!("{server_base}{API_VERSION_PATH}");
        Box::new(Gemini::new(client, base_url, ApiKey::new(API_KEY)))
    }

    fn respond(&self, scenario: &Scenario, request: &RecordedRequest) -> MockResponse {
        let streaming = is_streaming(request);
        match *scenario {
            Scenario::PlainAnswer | Scenario::StreamedAnswer => answer(streaming, usage(0, 0)),
            Scenario::CachedUsage => {
                answer(streaming, usage(CACHED_INPUT_TOKENS, REASONING_TOKENS))
            }
            Scenario::ToolCall => tool_calls(
                streaming,
                &[json!({"name": "get_weather", "args": {"city": "Paris"}})],
            ),
            // Newer models send call ids; the parallel calls check that they are kept.
            Scenario::ParallelToolCalls => tool_calls(
                streaming,
                &[
                    json!({"id": "fc-weather", "name": "get_weather", "args": {"city": "Paris"}}),
                    json!({"id": "fc-time", "name": "get_time", "args": {"zone": "UTC"}}),
                ],
            ),
            Scenario::ToolCallWithoutArguments => {
                tool_calls(streaming, &[json!({"name": "list_tools"})])
            }
            Scenario::Refused => blocked_prompt(streaming),
            Scenario::ErrorStatus(status) => error_status(status),
            Scenario::ContextTooLong => error_response(
                400,
                "The input token count (1200000) exceeds the maximum number of tokens allowed \
                 (1048576).",
                "INVALID_ARGUMENT",
                json!([]),
            ),
            Scenario::ErrorMidStream => {
                let mut events = partial_answer();
                let error = json!({"error": {
                    "code": 500,
                    "message": "An internal error has occurred. Please retry or report in \
                                https://developers.generativeai.google/guide/troubleshooting",
                    "status": "INTERNAL"
                }});
                events.push(event(&error));
                ok_sse(events)
            }
            Scenario::CutStream => {
                let mut events = partial_answer();
                events.push(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"te".to_vec());
                ok_sse(events)
            }
        }
    }

    fn check_request(&self, request: &RecordedRequest, sent: &ChatRequest, streaming: bool) {
        let method = if streaming {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        assert_eq!(request.method, "POST", "method");
        assert_eq!(
            request.path_and_query,
            format!("{API_VERSION_PATH}/models/{}:{method}", sent.model),
            "path"
        );
        assert_eq!(header(request, "x-goog-api-key"), API_KEY, "API key header");
        assert!(
            request.headers.get("authorization").is_none(),
            "authorization header sent next to the API key"
        );
        assert!(
            header(request, "content-type").starts_with("application/json"),
            "content-type header"
        );
        assert_eq!(request.body, expected_body(sent), "request body");
    }

    fn error_statuses(&self) -> Vec<u16> {
        vec![400, 401, 403, 404, 429, 500, 503, 504]
    }
}

fn is_streaming(request: &RecordedRequest) -> bool {
    request.path_and_query.contains(":streamGenerateContent")
}

/// Builds the `usageMetadata` of a reply. Gemini counts reasoning apart from the reply, so the
/// candidates count is the output minus the reasoning tokens, and it leaves out zero counts.
fn usage(cached_tokens: i64, reasoning_tokens: i64) -> Value {
    let mut usage = json!({
        "promptTokenCount": INPUT_TOKENS,
        "candidatesTokenCount": OUTPUT_TOKENS - reasoning_tokens,
        "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": INPUT_TOKENS}]
    });
    if cached_tokens > 0 {
        usage["cachedContentTokenCount"] = json!(cached_tokens);
        usage["cacheTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": cached_tokens}]);
    }
    if reasoning_tokens > 0 {
        usage["thoughtsTokenCount"] = json!(reasoning_tokens);
    }
    usage
}

/// Builds a `GenerateContentResponse` with one candidate made of `parts`.
fn response(parts: Value, finish_reason: Option<&str>, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(reason) = finish_reason {
        candidate["finishReason"] = json!(reason);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "contract-model",
        "responseId": "contract-response-1"
    })
}

/// Frames one server-sent event as Gemini does, with CRLF line endings.
fn event(data: &Value) -> Vec<u8> {
    let frame = String::from_utf8(sse_event(None, &data.to_string())).unwrap();
    frame.replace('\n', "\r\n").into_bytes()
}

/// Builds the running usage of a stream after `candidates` reply tokens, without reasoning.
fn running_usage(candidates: i64) -> Value {
    json!({
        "promptTokenCount": INPUT_TOKENS,
        "candidatesTokenCount": candidates,
        "totalTokenCount": INPUT_TOKENS + candidates
    })
}

/// Responds with [`ANSWER_TEXT`]. A stream sends one delta per response with running usage totals, and the
/// last response carries the finish reason and the final usage.
fn answer(streaming: bool, usage: Value) -> MockResponse {
    if !streaming {
        return ok_json(response(
            json!([{"text": ANSWER_TEXT}]),
            Some("STOP"),
            usage,
        ));
    }

    let last = ANSWER_DELTAS.len() - 1;
    let events = ANSWER_DELTAS
        .iter()
        .enumerate()
        .map(|(position, delta)| {
            let parts = json!([{"text": delta}]);
            if position == last {
                event(&response(parts, Some("STOP"), usage.clone()))
            } else {
                let tokens = i64::try_from(position).unwrap() + 1;
                event(&response(parts, None, running_usage(tokens)))
            }
        })
        .collect();
    ok_sse(events)
}

/// Responds with function calls, which Gemini sends whole. A stream sends one call per response and then a
/// response with an empty text part, the finish reason and the usage.
fn tool_calls(streaming: bool, calls: &[Value]) -> MockResponse {
    let parts: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(position, call)| function_call_part(position, call))
        .collect();
    if !streaming {
        return ok_json(response(json!(parts), Some("STOP"), usage(0, 0)));
    }

    let mut events: Vec<Vec<u8>> = parts
        .into_iter()
        .map(|part| event(&response(json!([part]), None, running_usage(3))))
        .collect();
    events.push(event(&response(
        json!([{"text": ""}]),
        Some("STOP"),
        usage(0, 0),
    )));
    ok_sse(events)
}

/// Builds a `functionCall` part. Thinking models sign the first call of a response.
fn function_call_part(position: usize, call: &Value) -> Value {
    let mut part = json!({ "functionCall": call });
    if position == 0 {
        part["thoughtSignature"] = json!("CiQBcsjafEpm2V0mNY3bX0SdQk5");
    }
    part
}

/// Responds to a blocked prompt: `promptFeedback.blockReason` and no candidates.
fn blocked_prompt(streaming: bool) -> MockResponse {
    let body = json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {
            "promptTokenCount": INPUT_TOKENS,
            "totalTokenCount": INPUT_TOKENS,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": INPUT_TOKENS}]
        },
        "modelVersion": "contract-model",
        "responseId": "contract-response-1"
    });
    if streaming {
        ok_sse(vec![event(&body)])
    } else {
        ok_json(body)
    }
}

/// Builds the events of the first two text deltas, without a finish reason.
fn partial_answer() -> Vec<Vec<u8>> {
    ANSWER_DELTAS[..2]
        .iter()
        .zip(1..)
        .map(|(delta, tokens)| {
            event(&response(
                json!([{ "text": delta }]),
                None,
                running_usage(tokens),
            ))
        })
        .collect()
}

fn error_status(status: u16) -> MockResponse {
    match status {
        400 => error_response(
            400,
            "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
            "INVALID_ARGUMENT",
            json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{
                    "field": "generation_config.temperature",
                    "description": "Invalid value at 'generation_config.temperature'"
                }]
            }]),
        ),
        401 => error_response(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
            json!([]),
        ),
        403 => error_response(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
            "PERMISSION_DENIED",
            json!([]),
        ),
        404 => error_response(
            404,
            "models/contract-model is not found for API version v1beta, or is not supported \
             for generateContent.",
            "NOT_FOUND",
            json!([]),
        ),
        429 => error_response(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "RESOURCE_EXHAUSTED",
            json!([
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{
                        "quotaMetric":
                            "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaValue": "10"
                    }]
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": format!("{RETRY_AFTER_SECONDS}s")
                }
            ]),
        ),
        500 => error_response(
            500,
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
            "INTERNAL",
            json!([]),
        ),
        503 => error_response(
            503,
            "The service is currently unavailable.",
            "UNAVAILABLE",
            json!([]),
        ),
        504 => error_response(
            504,
            "Deadline expired before operation could complete.",
            "DEADLINE_EXCEEDED",
            json!([]),
        ),
        _ => panic!("the Gemini fixture has no body for HTTP status {status}"),
    }
}

/// Builds an error status with Google's error body.
fn error_response(status: u16, message: &str, code_name: &str, details: Value) -> MockResponse {
    let mut error = json!({"code": status, "message": message, "status": code_name});
    if details
        .as_array()
        .is_some_and(|details| !details.is_empty())
    {
        error["details"] = details;
    }
    MockResponse {
        status,
        headers: Vec::new(),
        body: MockBody::Json(json!({ "error": error })),
    }
}

fn ok_json(body: Value) -> MockResponse {
    MockResponse {
        status: 200,
        headers: Vec::new(),
        body: MockBody::Json(body),
    }
}

fn ok_sse(events: Vec<Vec<u8>>) -> MockResponse {
    MockResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
        body: MockBody::Chunks(events),
    }
}

/// Builds the body Gemini expects for `sent`, independently of the adapter, for the shapes
/// the suite's requests use.
fn expected_body(sent: &ChatRequest) -> Value {
    let mut body = json!({ "contents": expected_contents(sent) });
    if let Some(system) = &sent.system {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }

    let mut config = json!({});
    if let Some(temperature) = sent.temperature {
        config["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = sent.max_tokens {
        config["maxOutputTokens"] = json!(max_tokens);
    }
    if !sent.stop.is_empty() {
        config["stopSequences"] = json!(sent.stop);
    }
    if config != json!({}) {
        body["generationConfig"] = config;
    }

    if !sent.tools.is_empty() {
        let declarations: Vec<Value> = sent
            .tools
            .iter()
            .map(|tool| {
                let mut declaration = json!({"name": tool.name, "description": tool.description});
                let has_properties = tool.parameters["properties"]
                    .as_object()
                    .is_some_and(|properties| !properties.is_empty());
                if has_properties {
                    declaration["parameters"] = tool.parameters.clone();
                }
                declaration
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": declarations }]);
    }
    body
}

/// Builds one turn per message, except that consecutive messages of the same role share a
/// turn.
fn expected_contents(sent: &ChatRequest) -> Vec<Value> {
    let mut contents: Vec<Value> = Vec::new();
    for message in &sent.messages {
        let (role, parts) = expected_turn(message);
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                let merged = last["parts"].as_array_mut().unwrap();
                merged.extend(parts);
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    contents
}

fn expected_turn(message: &ChatMessage) -> (&'static str, Vec<Value>) {
    match message.role {
        Role::User => {
            let mut parts = Vec::new();
            if !message.content.is_empty() {
                parts.push(json!({"text": message.content}));
            }
            parts.extend(message.images.iter().map(|image| match image {
                ImageInput::Inline {
                    media_type,
                    data_base64,
                } => json!({"inlineData": {"mimeType": media_type, "data": data_base64}}),
                ImageInput::Url(_) => panic!("the suite's requests send no image URLs"),
            }));
            ("user", parts)
        }
        Role::Assistant => {
            let mut parts = Vec::new();
            if !message.content.is_empty() {
                parts.push(json!({"text": message.content}));
            }
            for (position, call) in message.tool_calls.iter().enumerate() {
                let mut part = json!({"functionCall": {
                    "id": call.id, "name": call.name, "args": call.arguments
                }});
                if position == 0 {
                    part["thoughtSignature"] = json!(SKIP_THOUGHT_SIGNATURE);
                }
                parts.push(part);
            }
            ("model", parts)
        }
        Role::Tool => {
            // Gemini takes a JSON object as the response, so other output is wrapped.
            let output = match serde_json::from_str::<Value>(&message.content) {
                Ok(object @ Value::Object(_)) => object,
                _ => json!({"content": message.content}),
            };
            let part = json!({"functionResponse": {
                "id": message.tool_call_id,
                "name": message.tool_name,
                "response": output
            }});
            ("user", vec![part])
        }
        Role::System => panic!("the suite's requests send no system-role messages"),
    }
}
