//! A conversation on each of the five providers through the real API: the tenant's key and
//! base URL point the provider's adapter at the mock, which speaks that provider's wire
//! format. Each provider streams a reply with exact usage and cost, fails on an error status
//! before the first token, and fails with estimated usage when its stream is cut.

use std::time::Duration;

use mock_provider::{MockFailure, WireFormat, prompt_tokens, reply_tokens};
use serde_json::{Value, json};
use tests::{MockConfig, TestApp, TestOptions, graphql_ws::collect_subscription};

/// One provider under test, with its model's price from the platform's table in
/// `providers/src/pricing.rs`.
struct ProviderCase {
    /// The GraphQL `Provider` value.
    provider: &'static str,
    format: WireFormat,
    model: &'static str,
    /// The tenant's key, which must reach the mock in the provider's own header.
    api_key: &'static str,
    /// The path of the provider's streaming chat endpoint.
    stream_path: &'static str,
    /// Micro-dollars per million input tokens.
    input_price: i64,
    /// Micro-dollars per million output tokens.
    output_price: i64,
}

const OPENAI: ProviderCase = ProviderCase {
    provider: "OPENAI",
    format: WireFormat::OpenAi,
    model: "gpt-4o-mini",
    api_key: "sk-tenant-openai-0001",
    stream_path: "/v1/chat/completions",
    input_price: 150_000,
    output_price: 600_000,
};

const ANTHROPIC: ProviderCase = ProviderCase {
    provider: "ANTHROPIC",
    format: WireFormat::Anthropic,
    model: "claude-haiku-4-5",
    api_key: "sk-ant-tenant-0001",
    stream_path: "/v1/messages",
    input_price: 1_000_000,
    output_price: 5_000_000,
};

const GEMINI: ProviderCase = ProviderCase {
    provider: "GEMINI",
    format: WireFormat::Gemini,
    model: "gemini-2.5-flash",
    api_key: "AIza-tenant-gemini-0001",
    stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    input_price: 300_000,
    output_price: 2_500_000,
};

const GROQ: ProviderCase = ProviderCase {
    provider: "GROQ",
    format: WireFormat::Groq,
    model: "llama-3.3-70b-versatile",
    api_key: "gsk-tenant-groq-0001",
    stream_path: "/openai/v1/chat/completions",
    input_price: 590_000,
    output_price: 790_000,
};

/// Every Ollama model is free. The key is sent as a bearer token, as to a proxy in front
/// of Ollama.
const OLLAMA: ProviderCase = ProviderCase {
    provider: "OLLAMA",
    format: WireFormat::Ollama,
    model: "llama3.2",
    api_key: "ollama-proxy-key-0001",
    stream_path: "/api/chat",
    input_price: 0,
    output_price: 0,
};

const INSTRUCTIONS: &str = "You are terse.";
const USER_MESSAGE: &str = "Hello there";

/// Input tokens of the prompt, by the mock's rule and by the platform's estimate alike: one
/// token per four characters of each message, rounded up. "You are terse." is 14 characters
/// (4 tokens) and "Hello there" 11 (3 tokens).
const INPUT_TOKENS: i64 = 4 + 3;

/// Content chunks in each reply, one output token each.
const REPLY_TOKENS: usize = 12;

const STREAM_QUERY: &str = "subscription($id: ID!) {
    messageStream(messageId: $id) {
        kind delta
        outcome { content status finishReason inputTokens outputTokens costMicros usageEstimated }
    } }";

const MESSAGE_QUERY: &str = "query($id: ID!) { message(id: $id) {
    status content finishReason error inputTokens outputTokens costMicros usageEstimated } }";

const USAGE_RECORDS_QUERY: &str = "{ usageRecords { edges { node {
    provider model inputTokens outputTokens costMicros priceKnown estimated messageId } } } }";

/// Returns the cost in micro-dollars of `input` and `output` tokens at the case's prices,
/// rounded half up once.
fn expected_cost(case: &ProviderCase, input: i64, output: i64) -> i64 {
    (input * case.input_price + output * case.output_price + 500_000) / 1_000_000
}

/// A tenant owner with a conversation on the case's provider and model.
struct ProviderChat {
    app: TestApp,
    token: String,
    conversation_id: String,
}

/// Starts an app whose tenants may point base URLs at 127.0.0.0/8, where the mock listens.
/// Then registers an owner, stores the case's key with the mock's base URL for the
/// provider, and creates an agent on the provider and a conversation with it.
async fn start_provider_chat(case: &ProviderCase) -> ProviderChat {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            tokens: REPLY_TOKENS,
            gap: Duration::from_millis(10),
            ..MockConfig::default()
        },
        env: vec![("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.0/8".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("owner@example.com", "Provider Org").await;
    let token = owner.access_token;

    let credential = app
        .data(
            Some(&token),
            "mutation($input: SetProviderCredentialInput!) {
                setProviderCredential(input: $input) { credential { provider baseUrl } } }",
            json!({ "input": {
                "provider": case.provider,
                "apiKey": case.api_key,
                "baseUrl": app.mock.base_url_for(case.format) } }),
        )
        .await;
    assert_eq!(
        credential["setProviderCredential"]["credential"]["provider"],
        case.provider
    );

    let agent = app
        .data(
            Some(&token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": {
                "name": "Provider agent", "instructions": INSTRUCTIONS,
                "provider": case.provider, "model": case.model } }),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    let conversation_id = app.create_conversation(&token, agent_id).await;

    ProviderChat {
        app,
        token,
        conversation_id,
    }
}

impl ProviderChat {
    async fn send(&self) -> String {
        self.app
            .send_message(&self.token, &self.conversation_id, USER_MESSAGE)
            .await
    }

    /// Follows the reply's stream to its end and returns the joined deltas and the outcome.
    async fn follow(&self, message_id: &str) -> (String, Value) {
        let events = collect_subscription(
            &self.app.ws_url(),
            &self.token,
            STREAM_QUERY,
            json!({ "id": message_id }),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        let text: String = events
            .iter()
            .map(|event| &event["data"]["messageStream"])
            .filter(|event| event["kind"] == "DELTA")
            .map(|event| event["delta"].as_str().unwrap())
            .collect();
        let done = &events.last().unwrap()["data"]["messageStream"];
        assert_eq!(done["kind"], "DONE", "{events:?}");
        (text, done["outcome"].clone())
    }

    /// Waits for the reply to finish and returns it with its error.
    async fn finished(&self, message_id: &str) -> Value {
        self.app.wait_for_reply(&self.token, message_id).await;
        let data = self
            .app
            .data(
                Some(&self.token),
                MESSAGE_QUERY,
                json!({ "id": message_id }),
            )
            .await;
        data["message"].clone()
    }

    async fn usage_records(&self) -> Vec<Value> {
        let data = self
            .app
            .data(Some(&self.token), USAGE_RECORDS_QUERY, json!({}))
            .await;
        data["usageRecords"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"].clone())
            .collect()
    }
}

/// Sends a message, follows the streamed reply and checks the outcome, the usage record and
/// the request the mock received.
async fn reply_streams_with_exact_usage(case: &ProviderCase) {
    let chat = start_provider_chat(case).await;
    let message_id = chat.send().await;

    let (text, outcome) = chat.follow(&message_id).await;

    let expected_text = reply_tokens(REPLY_TOKENS).concat();
    let output_tokens = REPLY_TOKENS as i64;
    let cost = expected_cost(case, INPUT_TOKENS, output_tokens);
    assert_eq!(text, expected_text);
    assert_eq!(outcome["content"], expected_text);
    assert_eq!(outcome["status"], "COMPLETED");
    assert_eq!(outcome["finishReason"], "STOP");
    assert_eq!(outcome["inputTokens"], INPUT_TOKENS);
    assert_eq!(outcome["outputTokens"], output_tokens);
    assert_eq!(outcome["costMicros"], cost);
    assert_eq!(outcome["usageEstimated"], false);

    let records = chat.usage_records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["provider"], case.provider);
    assert_eq!(record["model"], case.model);
    assert_eq!(record["inputTokens"], INPUT_TOKENS);
    assert_eq!(record["outputTokens"], output_tokens);
    assert_eq!(record["costMicros"], cost);
    assert_eq!(record["priceKnown"], true);
    assert_eq!(record["estimated"], false);
    assert_eq!(record["messageId"], message_id.as_str());

    let received = chat.app.mock.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.format, case.format);
    assert_eq!(request.path, case.stream_path);
    assert_eq!(request.api_key, case.api_key);
    assert_eq!(
        prompt_tokens(&request.body),
        INPUT_TOKENS,
        "{}",
        request.body
    );
    chat.app.shutdown().await;
}

/// Queues a 401 for the first request: the reply fails at once, is not retried, names the
/// rejected key and records no usage.
async fn auth_failure_fails_reply(case: &ProviderCase) {
    let chat = start_provider_chat(case).await;
    chat.app.mock.fail_next(MockFailure::Status {
        status: 401,
        code: None,
        retry_after: None,
    });
    let message_id = chat.send().await;

    let reply = chat.finished(&message_id).await;

    assert_eq!(reply["status"], "FAILED");
    assert_eq!(reply["finishReason"], "ERROR");
    assert_eq!(reply["content"], "");
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.starts_with("provider rejected the API key"),
        "{error}"
    );
    assert_eq!(reply["inputTokens"], Value::Null);
    assert_eq!(reply["costMicros"], Value::Null);
    assert_eq!(chat.app.mock.api_keys(), [case.api_key], "not retried");
    assert!(chat.usage_records().await.is_empty());
    chat.app.shutdown().await;
}

/// Cuts the stream after three chunks: the reply fails with the text received so far, and
/// its usage is estimated from the text at one token per four characters, because the
/// provider never reported usage.
async fn cut_stream_fails_with_estimate(case: &ProviderCase) {
    let chat = start_provider_chat(case).await;
    chat.app
        .mock
        .fail_next(MockFailure::CutMidStream { after_tokens: 3 });
    let message_id = chat.send().await;

    let (text, outcome) = chat.follow(&message_id).await;

    // "Hello from the" is 14 characters, so 4 tokens.
    let partial = "Hello from the";
    let output_tokens = 4;
    let cost = expected_cost(case, INPUT_TOKENS, output_tokens);
    assert_eq!(reply_tokens(3).concat(), partial);
    assert_eq!(text, partial);
    assert_eq!(outcome["content"], partial);
    assert_eq!(outcome["status"], "FAILED");
    assert_eq!(outcome["finishReason"], "ERROR");
    assert_eq!(outcome["usageEstimated"], true);
    assert_eq!(outcome["inputTokens"], INPUT_TOKENS);
    assert_eq!(outcome["outputTokens"], output_tokens);
    assert_eq!(outcome["costMicros"], cost);

    let reply = chat.finished(&message_id).await;
    let error = reply["error"].as_str().unwrap();
    assert!(error.starts_with("provider unavailable"), "{error}");

    let records = chat.usage_records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["provider"], case.provider);
    assert_eq!(record["estimated"], true);
    assert_eq!(record["inputTokens"], INPUT_TOKENS);
    assert_eq!(record["outputTokens"], output_tokens);
    assert_eq!(record["costMicros"], cost);
    assert_eq!(chat.app.mock.api_keys(), [case.api_key], "not retried");
    chat.app.shutdown().await;
}

#[tokio::test]
async fn openai_reply_streams_with_exact_usage() {
    reply_streams_with_exact_usage(&OPENAI).await;
}

#[tokio::test]
async fn openai_auth_failure_fails_reply() {
    auth_failure_fails_reply(&OPENAI).await;
}

#[tokio::test]
async fn openai_cut_stream_fails_with_estimate() {
    cut_stream_fails_with_estimate(&OPENAI).await;
}

#[tokio::test]
async fn anthropic_reply_streams_with_exact_usage() {
    reply_streams_with_exact_usage(&ANTHROPIC).await;
}

#[tokio::test]
async fn anthropic_auth_failure_fails_reply() {
    auth_failure_fails_reply(&ANTHROPIC).await;
}

#[tokio::test]
async fn anthropic_cut_stream_fails_with_estimate() {
    cut_stream_fails_with_estimate(&ANTHROPIC).await;
}

#[tokio::test]
async fn gemini_reply_streams_with_exact_usage() {
    reply_streams_with_exact_usage(&GEMINI).await;
}

#[tokio::test]
async fn gemini_auth_failure_fails_reply() {
    auth_failure_fails_reply(&GEMINI).await;
}

#[tokio::test]
async fn gemini_cut_stream_fails_with_estimate() {
    cut_stream_fails_with_estimate(&GEMINI).await;
}

#[tokio::test]
async fn groq_reply_streams_with_exact_usage() {
    reply_streams_with_exact_usage(&GROQ).await;
}

#[tokio::test]
async fn groq_auth_failure_fails_reply() {
    auth_failure_fails_reply(&GROQ).await;
}

#[tokio::test]
async fn groq_cut_stream_fails_with_estimate() {
    cut_stream_fails_with_estimate(&GROQ).await;
}

#[tokio::test]
async fn ollama_reply_streams_with_exact_usage() {
    reply_streams_with_exact_usage(&OLLAMA).await;
}

#[tokio::test]
async fn ollama_auth_failure_fails_reply() {
    auth_failure_fails_reply(&OLLAMA).await;
}

#[tokio::test]
async fn ollama_cut_stream_fails_with_estimate() {
    cut_stream_fails_with_estimate(&OLLAMA).await;
}
