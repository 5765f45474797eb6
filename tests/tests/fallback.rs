//! An agent's fallback provider generates the reply when the primary fails to open its stream.

use mock_provider::{MockConfig, reply_tokens};
use serde_json::{Value, json};
use tests::{Session, TestApp, TestOptions, error_code};

/// Port 1 on loopback normally has no listener, so connections to it are refused.
const CLOSED_GROQ_URL: &str = "http://127.0.0.1:1/openai/v1";

const CREATE_AGENT: &str = "mutation($input: CreateAgentInput!) {
    createAgent(input: $input) { agent { id fallbackProvider fallbackModel } } }";

const UPDATE_AGENT: &str = "mutation($input: UpdateAgentInput!) {
    updateAgent(input: $input) { agent { id fallbackProvider fallbackModel } } }";

async fn spawn_with_closed_groq() -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: vec![
            ("GROQ_BASE_URL".into(), CLOSED_GROQ_URL.into()),
            ("GROQ_API_KEY".into(), "gsk-test".into()),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

/// Creates a Groq agent with `fallback` merged into its input and returns the agent.
async fn create_groq_agent(app: &TestApp, owner: &Session, fallback: Value) -> Value {
    let mut input = json!({
        "name": "Fallback helper", "instructions": "Be brief.",
        "provider": "GROQ", "model": "llama-3.1-8b-instant",
    });
    if let (Some(input), Some(fallback)) = (input.as_object_mut(), fallback.as_object()) {
        input.extend(fallback.clone());
    }
    let data = app
        .data(
            Some(&owner.access_token),
            CREATE_AGENT,
            json!({ "input": input }),
        )
        .await;
    data["createAgent"]["agent"].clone()
}

/// Creates a conversation with the agent, sends one message and returns the finished reply.
async fn chat_once(app: &TestApp, owner: &Session, agent_id: &str) -> Value {
    let conversation_id = app.create_conversation(&owner.access_token, agent_id).await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    app.wait_for_reply(&owner.access_token, &message_id).await
}

#[tokio::test]
async fn fallback_answers_when_primary_unreachable() {
    let app = spawn_with_closed_groq().await;
    let owner = app
        .register("fallback@example.com", "Fallback tenant")
        .await;
    let agent = create_groq_agent(
        &app,
        &owner,
        json!({ "fallbackProvider": "OPENAI", "fallbackModel": "gpt-4o-mini" }),
    )
    .await;
    assert_eq!(agent["fallbackProvider"], "OPENAI");
    assert_eq!(agent["fallbackModel"], "gpt-4o-mini");

    let agent_id = agent["id"].as_str().unwrap();
    let reply = chat_once(&app, &owner, agent_id).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    assert_eq!(reply["finishReason"], "STOP");
    assert_eq!(
        reply["content"],
        reply_tokens(MockConfig::default().tokens).concat()
    );

    let requests = app.mock.requests();
    assert_eq!(requests.len(), 1, "the fallback is called once");
    assert_eq!(requests[0]["model"], "gpt-4o-mini");

    let records = app
        .data(
            Some(&owner.access_token),
            "{ usageRecords { edges { node { provider model estimated } } } }",
            json!({}),
        )
        .await;
    let edges = records["usageRecords"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    let record = &edges[0]["node"];
    assert_eq!(record["provider"], "OPENAI");
    assert_eq!(record["model"], "gpt-4o-mini");
    assert_eq!(record["estimated"], false);
    app.shutdown().await;
}

#[tokio::test]
async fn unreachable_primary_without_fallback_fails() {
    let app = spawn_with_closed_groq().await;
    let owner = app.register("nofallback@example.com", "No fallback").await;
    let agent = create_groq_agent(&app, &owner, json!({})).await;
    assert_eq!(agent["fallbackProvider"], Value::Null);
    assert_eq!(agent["fallbackModel"], Value::Null);

    let reply = chat_once(&app, &owner, agent["id"].as_str().unwrap()).await;
    assert_eq!(reply["status"], "FAILED");
    assert_eq!(reply["finishReason"], "ERROR");
    assert!(app.mock.requests().is_empty(), "the mock is never called");
    app.shutdown().await;
}

#[tokio::test]
async fn half_set_fallback_rejected_on_create() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("halfcreate@example.com", "Half create").await;
    let cases = [
        (json!({ "fallbackProvider": "OPENAI" }), "fallbackModel"),
        (
            json!({ "fallbackModel": "gpt-4o-mini" }),
            "fallbackProvider",
        ),
        (
            json!({ "fallbackProvider": "OPENAI", "fallbackModel": "  " }),
            "fallbackModel",
        ),
        (
            json!({ "fallbackProvider": "OPENAI", "fallbackModel": "m".repeat(201) }),
            "fallbackModel",
        ),
    ];
    for (fallback, field) in cases {
        let mut input = json!({
            "name": "Half", "instructions": "Be brief.",
            "provider": "OPENAI", "model": "gpt-4o-mini",
        });
        if let (Some(input), Some(fallback)) = (input.as_object_mut(), fallback.as_object()) {
            input.extend(fallback.clone());
        }
        let body = app
            .graphql(
                Some(&owner.access_token),
                CREATE_AGENT,
                json!({ "input": input }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{fallback}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{fallback}: {body}"
        );
    }

    let agents = app
        .data(
            Some(&owner.access_token),
            "{ agents { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(agents["agents"]["edges"], json!([]), "no agent was created");
    app.shutdown().await;
}

#[tokio::test]
async fn fallback_updated_and_removed() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("update@example.com", "Update fallback").await;
    let agent = create_groq_agent(
        &app,
        &owner,
        json!({ "fallbackProvider": "OPENAI", "fallbackModel": "gpt-4o-mini" }),
    )
    .await;
    let id = agent["id"].as_str().unwrap();
    let token = Some(owner.access_token.as_str());

    // The model changes alone and keeps the stored provider.
    let data = app
        .data(
            token,
            UPDATE_AGENT,
            json!({ "input": { "id": id, "fallbackModel": "gpt-4o" } }),
        )
        .await;
    assert_eq!(data["updateAgent"]["agent"]["fallbackProvider"], "OPENAI");
    assert_eq!(data["updateAgent"]["agent"]["fallbackModel"], "gpt-4o");

    // Removing only the provider would leave a model without one.
    let body = app
        .graphql(
            token,
            UPDATE_AGENT,
            json!({ "input": { "id": id, "fallbackProvider": null } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "fallbackProvider");

    let data = app
        .data(
            token,
            UPDATE_AGENT,
            json!({ "input": { "id": id, "fallbackProvider": null, "fallbackModel": null } }),
        )
        .await;
    assert_eq!(
        data["updateAgent"]["agent"]["fallbackProvider"],
        Value::Null
    );
    assert_eq!(data["updateAgent"]["agent"]["fallbackModel"], Value::Null);
    app.shutdown().await;
}
