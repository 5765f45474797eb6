//! The context window of a reply: an agent's own message count, and older messages left
//! out until the prompt fits the model's context.

use serde_json::{Value, json};
use tests::TestApp;

async fn agent_chat(app: &TestApp, email: &str, settings: Value) -> (String, String) {
    let owner = app.register(email, "Window").await;
    let mut input = json!({ "name": "Windowed", "instructions": "Keep it short.",
                            "provider": "OPENAI", "model": "gpt-4o-mini" });
    if let (Some(input), Some(settings)) = (input.as_object_mut(), settings.as_object()) {
        input.extend(settings.clone());
    }
    let agent = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) {
                agent { id contextMessages contextWindowTokens } } }",
            json!({ "input": input }),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    let conversation = app.create_conversation(&owner.access_token, agent_id).await;
    (owner.access_token, conversation)
}

/// Sends `content` and waits for the reply.
async fn exchange(app: &TestApp, token: &str, conversation: &str, content: &str) {
    let reply = app.send_message(token, conversation, content).await;
    app.wait_for_reply(token, &reply).await;
}

fn sent_contents(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] != "system")
        .map(|message| message["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn agent_message_count_applies() {
    let app = TestApp::spawn().await.unwrap();
    let (token, conversation) =
        agent_chat(&app, "count@example.com", json!({ "contextMessages": 3 })).await;
    for content in ["one", "two", "three"] {
        exchange(&app, &token, &conversation, content).await;
    }

    let last = app.mock.requests().pop().unwrap();
    let contents = sent_contents(&last);
    // The question before, its reply, and the new question.
    assert_eq!(contents.len(), 3, "{contents:?}");
    assert_eq!(contents[0], "two");
    assert!(contents[1].starts_with("Hello from the mock provider."));
    assert_eq!(contents[2], "three");
    app.shutdown().await;
}

#[tokio::test]
async fn oldest_messages_dropped_to_fit() {
    let app = TestApp::spawn().await.unwrap();
    // 1,300 tokens of context less a 1,000-token reply leaves 300 for the prompt.
    let settings = json!({ "contextWindowTokens": 1300, "maxTokens": 1000 });
    let (token, conversation) = agent_chat(&app, "fit@example.com", settings).await;
    let long = "a".repeat(1200);
    exchange(&app, &token, &conversation, &long).await;
    exchange(&app, &token, &conversation, "short question").await;

    let last = app.mock.requests().pop().unwrap();
    assert_eq!(last["messages"][0]["role"], "system");
    assert_eq!(last["messages"][0]["content"], "Keep it short.");
    let contents = sent_contents(&last);
    assert!(!contents.contains(&long), "{contents:?}");
    assert_eq!(contents.last().unwrap(), "short question");
    // The reply to the long message still fits and is kept.
    assert_eq!(contents.len(), 2, "{contents:?}");

    let invalid = app
        .graphql(
            Some(&token),
            "mutation { createAgent(input: { name: \"x\", instructions: \"y\", provider: OPENAI,
                model: \"m\", contextWindowTokens: 10 }) { agent { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        invalid["errors"][0]["extensions"]["field"],
        "contextWindowTokens"
    );
    app.shutdown().await;
}
