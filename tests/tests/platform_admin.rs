//! Platform administrators change plans and limits, and suspend and reactivate tenants;
//! plan limits on agents and features name the plan.

use serde_json::{Value, json};
use tests::{TestApp, TestOptions, error_code, error_message};

const OPERATOR: &str = "operator@example.com";
const SET_PLAN: &str = "mutation($input: SetTenantPlanInput!) { setTenantPlan(input: $input) {
    tenant { id plan status memberCount limits { requestsPerMinute tokensPerMonth maxAgents
        apiKeys webhooks } } } }";
const ME: &str = "{ me { role } }";

async fn spawn() -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: vec![("PLATFORM_ADMINS".into(), OPERATOR.to_uppercase())],
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn plan_change_applies_limits() {
    let app = spawn().await;
    let operator = app.login(OPERATOR).await;
    let customer = app.register("customer@example.com", "Customer").await;

    let before = app
        .data(
            Some(&customer.access_token),
            "{ plan { plan limits { requestsPerMinute tokensPerMonth apiKeys webhooks } } }",
            json!({}),
        )
        .await;
    assert_eq!(before["plan"]["plan"], "FREE");
    assert_eq!(before["plan"]["limits"]["requestsPerMinute"], 60);
    assert_eq!(before["plan"]["limits"]["webhooks"], false);

    let changed = app
        .data(
            Some(&operator.access_token),
            SET_PLAN,
            json!({ "input": { "tenantId": customer.tenant_id, "plan": "CUSTOM",
                               "tokensPerMonth": 5000, "maxAgents": 1, "apiKeys": false } }),
        )
        .await;
    let tenant = &changed["setTenantPlan"]["tenant"];
    assert_eq!(tenant["plan"], "CUSTOM");
    assert_eq!(tenant["memberCount"], 1);
    assert_eq!(tenant["limits"]["tokensPerMonth"], 5000);
    assert_eq!(tenant["limits"]["requestsPerMinute"], Value::Null);
    assert_eq!(tenant["limits"]["maxAgents"], 1);
    assert_eq!(tenant["limits"]["apiKeys"], false);
    assert_eq!(tenant["limits"]["webhooks"], true);

    // The customer's API keys are off now, and the message names the plan.
    let key = app
        .graphql(
            Some(&customer.access_token),
            "mutation { createApiKey(input: { name: \"ci\", scopes: [READ] }) { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&key), "FORBIDDEN", "{key}");
    assert!(error_message(&key).contains("custom plan"), "{key}");

    let negative = app
        .graphql(
            Some(&operator.access_token),
            SET_PLAN,
            json!({ "input": { "tenantId": customer.tenant_id, "plan": "PRO", "maxAgents": -1 } }),
        )
        .await;
    assert_eq!(
        negative["errors"][0]["extensions"]["field"], "maxAgents",
        "{negative}"
    );

    let listed = app
        .data(
            Some(&operator.access_token),
            "{ tenants { edges { node { name plan } } } }",
            json!({}),
        )
        .await;
    let names: Vec<&str> = listed["tenants"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Operations", "Customer"]);

    let by_customer = app
        .graphql(
            Some(&customer.access_token),
            "{ tenants { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&by_customer), "FORBIDDEN", "{by_customer}");

    // The customer's own audit log shows who changed the plan.
    let logs = app
        .data(
            Some(&customer.access_token),
            "{ auditLogs(filter: { action: \"tenant.plan_change\" }) {
                edges { node { actorUserId targetId summary } } } }",
            json!({}),
        )
        .await;
    let rows = logs["auditLogs"]["edges"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["node"]["actorUserId"], operator.user_id.as_str());
    assert_eq!(rows[0]["node"]["targetId"], customer.tenant_id.as_str());
    assert_eq!(rows[0]["node"]["summary"]["plan"], "custom");
    assert_eq!(rows[0]["node"]["summary"]["maxAgents"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn listed_address_cannot_be_claimed() {
    let app = spawn().await;
    // The harness created the listed account, as an operator does before listing it. A
    // second registration of the address, in any letter case, is refused.
    let claim = app
        .graphql(
            None,
            "mutation { register(input: { email: \"Operator@Example.com\",
                password: \"a long password\", fullName: \"X\", tenantName: \"X\" }) {
                accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&claim), "BAD_USER_INPUT", "{claim}");
    assert!(error_message(&claim).contains("PLATFORM_ADMINS"), "{claim}");
    app.shutdown().await;
}

#[tokio::test]
async fn suspension_blocks_then_reactivation_restores() {
    let app = spawn().await;
    let operator = app.login(OPERATOR).await;
    let chat = app.start_chat("suspended@example.com", "Hi.").await;
    let token = chat.owner.access_token.clone();
    let key = app
        .data(
            Some(&token),
            "mutation { createApiKey(input: { name: \"ci\", scopes: [READ] }) { secret } }",
            json!({}),
        )
        .await;
    let secret = key["createApiKey"]["secret"].as_str().unwrap().to_owned();
    // The key is cached by its first use.
    let cached = app.data(Some(&secret), ME, json!({})).await;
    assert_eq!(cached["me"]["role"], "VIEWER");

    let suspended = app
        .data(
            Some(&operator.access_token),
            "mutation($input: TenantIdInput!) { suspendTenant(input: $input) {
                tenant { status } } }",
            json!({ "input": { "tenantId": chat.owner.tenant_id } }),
        )
        .await;
    assert_eq!(suspended["suspendTenant"]["tenant"]["status"], "SUSPENDED");

    for credential in [&token, &secret] {
        let blocked = app.graphql(Some(credential), ME, json!({})).await;
        assert_eq!(error_code(&blocked), "FORBIDDEN", "{blocked}");
        assert!(error_message(&blocked).contains("suspended"), "{blocked}");
    }
    let login = app
        .graphql(
            None,
            "mutation { login(input: { email: \"suspended@example.com\",
                password: \"correct horse battery\" }) { accessToken } }",
            json!({}),
        )
        .await;
    assert!(error_message(&login).contains("suspended"), "{login}");
    let refresh = app
        .graphql(
            None,
            "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) { accessToken } }",
            json!({ "input": { "refreshToken": chat.owner.refresh_token } }),
        )
        .await;
    assert!(error_message(&refresh).contains("suspended"), "{refresh}");

    // Nothing was deleted: after reactivation the conversation is still there.
    app.data(
        Some(&operator.access_token),
        "mutation($input: TenantIdInput!) { reactivateTenant(input: $input) {
            tenant { status } } }",
        json!({ "input": { "tenantId": chat.owner.tenant_id } }),
    )
    .await;
    let conversation = app
        .data(
            Some(&token),
            "query($id: ID!) { conversation(id: $id) { id } }",
            json!({ "id": chat.conversation_id }),
        )
        .await;
    assert_eq!(
        conversation["conversation"]["id"],
        chat.conversation_id.as_str()
    );
    let with_key = app.data(Some(&secret), ME, json!({})).await;
    assert_eq!(with_key["me"]["role"], "VIEWER");
    app.shutdown().await;
}

#[tokio::test]
async fn agent_and_member_counts_limited() {
    let app = spawn().await;
    let operator = app.login(OPERATOR).await;
    let customer = app.register("small@example.com", "Small").await;
    let token = customer.access_token.as_str();
    app.data(
        Some(&operator.access_token),
        SET_PLAN,
        json!({ "input": { "tenantId": customer.tenant_id, "plan": "PRO",
                           "maxAgents": 1, "maxMembers": 2 } }),
    )
    .await;

    app.create_agent(token, "First.").await;
    let second = app
        .graphql(
            Some(token),
            "mutation { createAgent(input: { name: \"Second\", instructions: \"Hi.\",
                provider: OPENAI, model: \"gpt-4o-mini\" }) { agent { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&second), "FORBIDDEN", "{second}");
    assert!(
        error_message(&second).contains("pro plan allows 1 agents"),
        "{second}"
    );

    // The owner and one pending invitation fill two places.
    let invite = "mutation($input: InviteMemberInput!) { inviteMember(input: $input) { token } }";
    let first = app
        .graphql(
            Some(token),
            invite,
            json!({ "input": { "email": "one@example.com", "role": "MEMBER" } }),
        )
        .await;
    assert_eq!(first["errors"], Value::Null, "{first}");
    let over = app
        .graphql(
            Some(token),
            invite,
            json!({ "input": { "email": "two@example.com", "role": "MEMBER" } }),
        )
        .await;
    assert_eq!(error_code(&over), "FORBIDDEN", "{over}");
    assert!(
        error_message(&over).contains("pro plan allows 2 members"),
        "{over}"
    );
    // Inviting the same address again replaces its invitation, so it still fits.
    let again = app
        .graphql(
            Some(token),
            invite,
            json!({ "input": { "email": "one@example.com", "role": "VIEWER" } }),
        )
        .await;
    assert_eq!(again["errors"], Value::Null, "{again}");
    app.shutdown().await;
}
