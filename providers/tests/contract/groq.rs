//! The Groq fixture: OpenAI's wire format in Groq's dialect, with stream usage in
//! `x_groq.usage`, in-stream errors in `x_groq.error`, and Groq's own error statuses.

use providers::{ApiKey, ChatProvider, ChatRequest, Groq};
use serde_json::json;

use crate::openai::{
    API_KEY, Dialect, StreamUsage, check_request, chunked, error_response, partial_answer, respond,
};
use crate::{
    MockBody, MockResponse, ProviderFixture, RETRY_AFTER_SECONDS, RecordedRequest, Scenario,
    sse_event,
};

const GROQ: Dialect = Dialect {
    chat_path: "/openai/v1/chat/completions",
    stream_usage: StreamUsage::XGroq,
};

pub struct GroqFixture;

impl ProviderFixture for GroqFixture {
    fn name(&self) -> &'static str {
        "groq"
    }

    fn adapter(&self, client: reqwest::Client, server_base: &str) -> Box<dyn ChatProvider> {
        let base_url = format!("{server_base}/openai/v1");
        Box::new(Groq::new(client, base_url, ApiKey::new(API_KEY)))
    }

    fn respond(&self, scenario: &Scenario, request: &RecordedRequest) -> MockResponse {
        match scenario {
            Scenario::ErrorStatus(status) => error_status(*status),
            Scenario::ErrorMidStream => {
                let mut events = partial_answer();
                let chunk = json!({
                    "id": "chatcmpl-contract",
                    "object": "chat.completion.chunk",
                    "created": 1_767_225_600,
                    "model": "contract-model",
                    "choices": [],
                    "x_groq": {"id": "req_contract", "error": "Internal Server Error"}
                });
                events.push(sse_event(None, &chunk.to_string()));
                chunked(events)
            }
            _ => respond(&GROQ, scenario, request),
        }
    }

    fn check_request(&self, request: &RecordedRequest, sent: &ChatRequest, streaming: bool) {
        check_request(&GROQ, request, sent, streaming);
    }

    fn error_statuses(&self) -> Vec<u16> {
        vec![400, 401, 404, 413, 422, 429, 498, 500, 502, 503]
    }
}

fn error_status(status: u16) -> MockResponse {
    match status {
        400 => error_response(
            400,
            "'messages.0' : for 'role:user' the following must be satisfied \
             [('messages.0.content' : value must be a string)]",
            "invalid_request_error",
            None,
        ),
        401 => error_response(
            401,
            "Invalid API Key",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        404 => error_response(
            404,
            "The model `contract-model` does not exist or you do not have access to it.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        // Groq returns 413 when one request alone exceeds the tokens-per-minute limit, which
        // waiting does not fix.
        413 => error_response(
            413,
            "Request too large for model `contract-model` in organization `org_contract` \
             service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 9000, \
             please reduce your message size and try again.",
            "tokens",
            Some("rate_limit_exceeded"),
        ),
        422 => error_response(422, "Unprocessable Entity", "invalid_request_error", None),
        429 => {
            let mut response = error_response(
                429,
                "Rate limit reached for model `contract-model` in organization `org_contract` \
                 service tier `on_demand` on requests per minute (RPM): Limit 30, Used 30, \
                 Requested 1. Please try again in 7s.",
                "requests",
                Some("rate_limit_exceeded"),
            );
            response.headers.extend([
                ("retry-after".to_owned(), RETRY_AFTER_SECONDS.to_string()),
                ("x-ratelimit-limit-requests".to_owned(), "14400".to_owned()),
                ("x-ratelimit-remaining-requests".to_owned(), "0".to_owned()),
            ]);
            response
        }
        498 => error_response(
            498,
            "Flex tier capacity exceeded. This is a temporary error due to high demand; \
             please try again later.",
            "capacity_exceeded",
            None,
        ),
        500 => error_response(500, "Internal Server Error", "internal_server_error", None),
        // A gateway in front of the API responds with HTML, not Groq's JSON error body.
        502 => MockResponse {
            status: 502,
            headers: vec![("content-type".to_owned(), "text/html".to_owned())],
            body: MockBody::Chunks(vec![
                b"<html><body><h1>502 Bad Gateway</h1></body></html>\n".to_vec(),
            ]),
        },
        503 => error_response(503, "Service Unavailable", "internal_server_error", None),
        _ => panic!("the Groq fixture has no body for HTTP status {status}"),
    }
}
