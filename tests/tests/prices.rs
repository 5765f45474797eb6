//! Tenant model prices replace the platform's table for that tenant only, and the spend
//! query sums usage records with unknown prices kept apart from known costs.

use mock_provider::{MockConfig, prompt_tokens};
use serde_json::{Value, json};
use tests::{TestApp, error_code};

const SET_PRICE: &str = "mutation($input: SetModelPriceInput!) { setModelPrice(input: $input) {
    price { provider model inputPerMillion outputPerMillion cachedInputPerMillion source } } }";
const DELETE_PRICE: &str = "mutation($input: DeleteModelPriceInput!) {
    deleteModelPrice(input: $input) { provider model price { model inputPerMillion source } } }";
const MODEL_PRICE: &str = "query($provider: Provider!, $model: String!) {
    modelPrice(provider: $provider, model: $model) { model inputPerMillion outputPerMillion
        cachedInputPerMillion source } }";
const SPEND: &str = "query($from: DateTime, $to: DateTime) { spend(from: $from, to: $to) {
    from to
    total { inputTokens outputTokens costMicros recordCount unpricedRecordCount
        unpricedInputTokens unpricedOutputTokens estimatedRecordCount }
    byModel { provider model costMicros recordCount unpricedRecordCount inputTokens } } }";

/// Output tokens of every reply of the mock with its default settings.
const REPLY_TOKENS: i64 = 12;

fn price_input(model: &str, input: i64, output: i64, cached: Option<i64>) -> Value {
    json!({ "input": { "provider": "OPENAI", "model": model, "inputPerMillion": input,
                       "outputPerMillion": output, "cachedInputPerMillion": cached } })
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
}

/// Creates an agent and a conversation on `model` and returns the conversation id.
async fn conversation_on(app: &TestApp, token: &str, model: &str) -> String {
    let agent = app
        .data(
            Some(token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "name": "Priced", "instructions": "Hi.", "provider": "OPENAI",
                               "model": model } }),
        )
        .await;
    let agent_id = agent["createAgent"]["agent"]["id"].as_str().unwrap();
    app.create_conversation(token, agent_id).await
}

/// Sends one message, waits for the reply, and returns it with the prompt tokens the mock
/// counted for its request.
async fn reply_with_prompt_tokens(
    app: &TestApp,
    token: &str,
    conversation_id: &str,
) -> (Value, i64) {
    let message_id = app.send_message(token, conversation_id, "Hello").await;
    let reply = app.wait_for_reply(token, &message_id).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    let request = app.mock.requests().last().cloned().unwrap();
    (reply, prompt_tokens(&request))
}

#[test]
fn mock_reply_length_matches() {
    assert_eq!(MockConfig::default().tokens as i64, REPLY_TOKENS);
}

#[tokio::test]
async fn tenant_price_bills_its_replies_only() {
    let app = TestApp::spawn().await.unwrap();
    let priced = app.register("priced@example.com", "Priced").await;
    let other = app.register("other@example.com", "Other").await;
    let token = priced.access_token.as_str();

    let set = app
        .data(
            Some(token),
            SET_PRICE,
            price_input("gpt-4o-mini", 1_000_000, 2_000_000, None),
        )
        .await;
    let price = &set["setModelPrice"]["price"];
    assert_eq!(price["provider"], "OPENAI");
    assert_eq!(price["model"], "gpt-4o-mini");
    assert_eq!(price["inputPerMillion"], 1_000_000);
    assert_eq!(price["outputPerMillion"], 2_000_000);
    assert_eq!(price["cachedInputPerMillion"], Value::Null);
    assert_eq!(price["source"], "TENANT");

    // A dated snapshot uses the price of its base model.
    let snapshot = app
        .data(
            Some(token),
            MODEL_PRICE,
            json!({ "provider": "OPENAI", "model": "gpt-4o-mini-2024-07-18" }),
        )
        .await;
    assert_eq!(snapshot["modelPrice"]["model"], "gpt-4o-mini");
    assert_eq!(snapshot["modelPrice"]["source"], "TENANT");
    let for_other = app
        .data(
            Some(&other.access_token),
            MODEL_PRICE,
            json!({ "provider": "OPENAI", "model": "gpt-4o-mini" }),
        )
        .await;
    assert_eq!(for_other["modelPrice"]["source"], "PLATFORM");
    assert_eq!(for_other["modelPrice"]["inputPerMillion"], 150_000);

    // One dollar and two dollars per million tokens: one and two micro-dollars per token.
    let conversation = conversation_on(&app, token, "gpt-4o-mini").await;
    let (reply, input_tokens) = reply_with_prompt_tokens(&app, token, &conversation).await;
    assert_eq!(reply["inputTokens"], input_tokens, "{reply}");
    assert_eq!(reply["outputTokens"], REPLY_TOKENS, "{reply}");
    assert_eq!(reply["costMicros"], input_tokens + 2 * REPLY_TOKENS);

    // The other tenant is billed at the platform's price: 0.15 and 0.6 micro-dollars per token.
    let other_conversation = conversation_on(&app, &other.access_token, "gpt-4o-mini").await;
    let (other_reply, other_input) =
        reply_with_prompt_tokens(&app, &other.access_token, &other_conversation).await;
    let platform_cost = (other_input * 150_000 + REPLY_TOKENS * 600_000 + 500_000) / 1_000_000;
    assert_eq!(other_reply["costMicros"], platform_cost);

    let deleted = app
        .data(
            Some(token),
            DELETE_PRICE,
            json!({ "input": { "provider": "OPENAI", "model": "gpt-4o-mini" } }),
        )
        .await;
    let payload = &deleted["deleteModelPrice"];
    assert_eq!(payload["model"], "gpt-4o-mini");
    assert_eq!(payload["price"]["source"], "PLATFORM");
    assert_eq!(payload["price"]["inputPerMillion"], 150_000);

    let (after_delete, input_tokens) = reply_with_prompt_tokens(&app, token, &conversation).await;
    let platform_cost = (input_tokens * 150_000 + REPLY_TOKENS * 600_000 + 500_000) / 1_000_000;
    assert_eq!(after_delete["costMicros"], platform_cost);
    app.shutdown().await;
}

#[tokio::test]
async fn spend_separates_unpriced_usage() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("spend@example.com", "Spend").await;
    let token = owner.access_token.as_str();
    let conversation = conversation_on(&app, token, "gpt-unlisted").await;

    let (first, first_input) = reply_with_prompt_tokens(&app, token, &conversation).await;
    assert_eq!(first["costMicros"], Value::Null);

    // 0.3 micro-dollars per input token and 0.05 per output token: cheaper than one
    // micro-dollar per token, so only the rounded sum is billed.
    let set = app
        .data(
            Some(token),
            SET_PRICE,
            price_input("gpt-unlisted", 300_000, 50_000, Some(30_000)),
        )
        .await;
    assert_eq!(
        set["setModelPrice"]["price"]["cachedInputPerMillion"],
        30_000
    );
    let (second, second_input) = reply_with_prompt_tokens(&app, token, &conversation).await;
    let second_cost = (second_input * 300_000 + REPLY_TOKENS * 50_000 + 500_000) / 1_000_000;
    assert_eq!(second["costMicros"], second_cost);

    let spend = app.data(Some(token), SPEND, json!({})).await;
    let total = &spend["spend"]["total"];
    assert_eq!(total["recordCount"], 2);
    assert_eq!(total["unpricedRecordCount"], 1);
    assert_eq!(total["unpricedInputTokens"], first_input);
    assert_eq!(total["unpricedOutputTokens"], REPLY_TOKENS);
    assert_eq!(total["inputTokens"], first_input + second_input);
    assert_eq!(total["outputTokens"], 2 * REPLY_TOKENS);
    assert_eq!(total["costMicros"], second_cost);
    assert_eq!(total["estimatedRecordCount"], 0);
    let by_model = spend["spend"]["byModel"].as_array().unwrap();
    assert_eq!(by_model.len(), 1);
    assert_eq!(by_model[0]["provider"], "OPENAI");
    assert_eq!(by_model[0]["model"], "gpt-unlisted");
    assert_eq!(by_model[0]["recordCount"], 2);
    assert_eq!(by_model[0]["unpricedRecordCount"], 1);

    // A range that ends before the records were made contains none of them.
    let earlier = app
        .data(
            Some(token),
            SPEND,
            json!({ "from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(earlier["spend"]["total"]["recordCount"], 0);
    assert_eq!(earlier["spend"]["byModel"], json!([]));
    let from = earlier["spend"]["from"].as_str().unwrap();
    assert!(from.starts_with("2020-01-01T00:00:00"), "{from}");
    app.shutdown().await;
}

#[tokio::test]
async fn model_prices_list_replaces_entries() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("list@example.com", "List").await;
    let token = Some(owner.access_token.as_str());
    let list = "query($provider: Provider) { modelPrices(provider: $provider) {
        provider model inputPerMillion source } }";

    let before = app.data(token, list, json!({ "provider": "OPENAI" })).await;
    let before = before["modelPrices"].as_array().unwrap().clone();
    let gpt_4o: Vec<&Value> = before.iter().filter(|p| p["model"] == "gpt-4o").collect();
    assert_eq!(gpt_4o.len(), 1);
    assert_eq!(gpt_4o[0]["source"], "PLATFORM");
    assert_eq!(gpt_4o[0]["inputPerMillion"], 2_500_000);
    assert!(before.iter().all(|price| price["provider"] == "OPENAI"));

    app.data(
        token,
        SET_PRICE,
        price_input("gpt-4o", 2_000_000, 8_000_000, None),
    )
    .await;
    let ollama = json!({ "input": { "provider": "OLLAMA", "model": "llama3.2",
        "inputPerMillion": 10_000, "outputPerMillion": 20_000 } });
    app.data(token, SET_PRICE, ollama).await;

    let after = app.data(token, list, json!({ "provider": "OPENAI" })).await;
    let after = after["modelPrices"].as_array().unwrap().clone();
    assert_eq!(after.len(), before.len());
    let gpt_4o: Vec<&Value> = after.iter().filter(|p| p["model"] == "gpt-4o").collect();
    assert_eq!(gpt_4o.len(), 1);
    assert_eq!(gpt_4o[0]["source"], "TENANT");
    assert_eq!(gpt_4o[0]["inputPerMillion"], 2_000_000);

    let all = app.data(token, list, json!({})).await;
    let all = all["modelPrices"].as_array().unwrap();
    let ollama: Vec<&Value> = all.iter().filter(|p| p["provider"] == "OLLAMA").collect();
    assert_eq!(ollama.len(), 1);
    assert_eq!(ollama[0]["model"], "llama3.2");
    assert!(all.iter().any(|price| price["provider"] == "ANTHROPIC"));
    app.shutdown().await;
}

#[tokio::test]
async fn bad_price_input_names_field() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("bad-price@example.com", "Bad").await;
    let token = Some(owner.access_token.as_str());

    let cases = [
        (price_input("gpt-4o", -1, 0, None), "inputPerMillion"),
        (
            price_input("gpt-4o", 0, 1_000_000_000_001, None),
            "outputPerMillion",
        ),
        (
            price_input("gpt-4o", 0, 0, Some(-5)),
            "cachedInputPerMillion",
        ),
        (price_input("   ", 0, 0, None), "model"),
        (price_input(&"m".repeat(201), 0, 0, None), "model"),
        (price_input("models/", 0, 0, None), "model"),
    ];
    for (input, expected_field) in cases {
        let body = app.graphql(token, SET_PRICE, input).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), expected_field, "{body}");
    }
    let tenant_prices = app
        .data(token, "{ modelPrices { source } }", json!({}))
        .await;
    assert!(
        tenant_prices["modelPrices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|price| price["source"] == "PLATFORM"),
        "a rejected input was stored: {tenant_prices}"
    );

    let missing = app
        .graphql(
            token,
            DELETE_PRICE,
            json!({ "input": { "provider": "OPENAI", "model": "gpt-4o" } }),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND", "{missing}");

    let reversed = app
        .graphql(
            token,
            SPEND,
            json!({ "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(field(&reversed), "to", "{reversed}");
    let too_long = app
        .graphql(
            token,
            SPEND,
            json!({ "from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(field(&too_long), "from", "{too_long}");
    app.shutdown().await;
}

#[tokio::test]
async fn spend_breaks_down_by_day_agent_user() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("breakdown@example.com", "Breakdown").await;
    let member = app
        .add_member(
            &owner.access_token,
            "breakdown-member@example.com",
            "MEMBER",
        )
        .await;
    let first_agent = app.create_agent(&owner.access_token, "First.").await;
    let second_agent = app.create_agent(&owner.access_token, "Second.").await;

    let owner_conversation = app
        .create_conversation(&owner.access_token, &first_agent)
        .await;
    for _ in 0..2 {
        reply_with_prompt_tokens(&app, &owner.access_token, &owner_conversation).await;
    }
    let member_conversation = app
        .create_conversation(&member.access_token, &second_agent)
        .await;
    reply_with_prompt_tokens(&app, &member.access_token, &member_conversation).await;

    let spend = app
        .data(
            Some(&owner.access_token),
            "{ spend { total { recordCount costMicros }
                byDay { day recordCount costMicros }
                byAgent { agentId recordCount }
                byUser { userId recordCount } } }",
            json!({}),
        )
        .await;
    let spend = &spend["spend"];
    assert_eq!(spend["total"]["recordCount"], 3);

    let days = spend["byDay"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{spend}");
    assert_eq!(days[0]["recordCount"], 3);
    assert_eq!(days[0]["costMicros"], spend["total"]["costMicros"]);
    let today = chrono::Utc::now().format("%Y-%m-%dT00:00:00").to_string();
    assert!(
        days[0]["day"].as_str().unwrap().starts_with(&today),
        "{spend}"
    );

    let count_for = |list: &Value, key: &str, id: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|entry| entry[key] == id)
            .map(|entry| entry["recordCount"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(spend["byAgent"].as_array().unwrap().len(), 2);
    assert_eq!(count_for(&spend["byAgent"], "agentId", &first_agent), 2);
    assert_eq!(count_for(&spend["byAgent"], "agentId", &second_agent), 1);
    assert_eq!(spend["byUser"].as_array().unwrap().len(), 2);
    assert_eq!(count_for(&spend["byUser"], "userId", &owner.user_id), 2);
    assert_eq!(count_for(&spend["byUser"], "userId", &member.user_id), 1);
    app.shutdown().await;
}
