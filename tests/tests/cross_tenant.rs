//! Every operation that takes an id, called with another tenant's ids, reaches nothing:
//! the id it acts on reads as NOT_FOUND, an id inside an input as BAD_USER_INPUT, and a
//! filter by a foreign id matches no row. A test fails on any id-taking operation of the
//! schema that the table below lacks.

use std::{collections::BTreeSet, time::Duration};

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{TestApp, TestOptions, error_code, graphql_ws};

/// The outcome of an operation called with another tenant's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    NotFound,
    BadInput,
    /// A list filtered by the foreign id comes back empty.
    Empty,
    /// Only platform administrators may call it, and they act across tenants by design.
    PlatformAdminOnly,
}

/// Every root field with an `ID` argument, directly or inside an input object.
const ID_OPERATIONS: &[(&str, Expected)] = &[
    ("agent", Expected::NotFound),
    ("auditLogs", Expected::Empty),
    ("conversation", Expected::NotFound),
    ("message", Expected::NotFound),
    ("task", Expected::NotFound),
    ("tasks", Expected::Empty),
    ("login", Expected::BadInput),
    ("setTenantPlan", Expected::PlatformAdminOnly),
    ("suspendTenant", Expected::PlatformAdminOnly),
    ("reactivateTenant", Expected::PlatformAdminOnly),
    ("updateAgent", Expected::NotFound),
    ("deleteAgent", Expected::NotFound),
    ("revokeApiKey", Expected::NotFound),
    ("createConversation", Expected::BadInput),
    ("renameConversation", Expected::NotFound),
    ("deleteConversation", Expected::NotFound),
    ("sendMessage", Expected::NotFound),
    ("stopGeneration", Expected::NotFound),
    ("revokeInvitation", Expected::NotFound),
    ("changeMemberRole", Expected::NotFound),
    ("removeMember", Expected::NotFound),
    ("revokeSession", Expected::NotFound),
    ("switchTenant", Expected::NotFound),
    ("createTask", Expected::BadInput),
    ("updateTask", Expected::NotFound),
    ("deleteTask", Expected::NotFound),
    ("messageStream", Expected::NotFound),
    ("tool", Expected::NotFound),
    ("updateTool", Expected::NotFound),
    ("deleteTool", Expected::NotFound),
    ("executeAgent", Expected::NotFound),
    ("agentRun", Expected::NotFound),
    ("agentRuns", Expected::Empty),
    ("agentStats", Expected::NotFound),
    ("responseCacheStats", Expected::NotFound),
    ("cancelAgentRun", Expected::NotFound),
    ("agentRunEvents", Expected::NotFound),
    ("webhook", Expected::NotFound),
    ("updateWebhook", Expected::NotFound),
    ("deleteWebhook", Expected::NotFound),
    ("rotateWebhookSecret", Expected::NotFound),
    ("testWebhook", Expected::NotFound),
    ("redeliverWebhookMessage", Expected::NotFound),
];

const TYPES: &str = "{ __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { name kind
        fields { name args { name type { ...TypeRef } } }
        inputFields { name type { ...TypeRef } } } } }
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name
        ofType { kind name } } } }";

fn named_type(type_ref: &Value) -> &str {
    match type_ref["name"].as_str() {
        Some(name) => name,
        None => named_type(&type_ref["ofType"]),
    }
}

/// Returns whether a type, or an input object reachable from it, has an `ID` field.
fn takes_id(types: &[Value], name: &str, seen: &mut BTreeSet<String>) -> bool {
    if name == "ID" {
        return true;
    }
    if !seen.insert(name.to_owned()) {
        return false;
    }
    let Some(ty) = types.iter().find(|ty| ty["name"] == name) else {
        return false;
    };
    ty["inputFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|field| takes_id(types, named_type(&field["type"]), seen))
}

#[tokio::test]
async fn every_id_operation_listed() {
    let app = TestApp::spawn().await.unwrap();
    let schema = app.data(None, TYPES, json!({})).await;
    let schema = &schema["__schema"];
    let types = schema["types"].as_array().unwrap();
    let mut found = BTreeSet::new();
    for root in ["queryType", "mutationType", "subscriptionType"] {
        let root_name = schema[root]["name"].as_str().unwrap();
        let root_type = types.iter().find(|ty| ty["name"] == root_name).unwrap();
        for field in root_type["fields"].as_array().unwrap() {
            let takes = field["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|arg| takes_id(types, named_type(&arg["type"]), &mut BTreeSet::new()));
            if takes {
                found.insert(field["name"].as_str().unwrap().to_owned());
            }
        }
    }
    let listed: BTreeSet<String> = ID_OPERATIONS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let missing: Vec<&String> = found.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "id-taking operations without a case: {missing:?}"
    );
    let stale: Vec<&String> = listed.difference(&found).collect();
    assert!(
        stale.is_empty(),
        "cases of operations that take no id: {stale:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn foreign_ids_reach_nothing() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("PLATFORM_ADMINS".into(), "nobody@example.com".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let chat = app.start_chat("alice-x@example.com", "Secret.").await;
    let alice = &chat.owner;
    let alice_token = Some(alice.access_token.as_str());
    let message_id = app
        .send_message(&alice.access_token, &chat.conversation_id, "private")
        .await;
    app.wait_for_reply(&alice.access_token, &message_id).await;
    let colleague = app
        .add_member(&alice.access_token, "colleague-x@example.com", "MEMBER")
        .await;
    let task = app
        .data(
            alice_token,
            "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }",
            json!({ "input": { "title": "Alice's", "assigneeId": colleague.user_id } }),
        )
        .await;
    let task_id = task["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invitation = app
        .data(
            alice_token,
            "mutation { inviteMember(input: { email: \"later@example.com\", role: VIEWER }) {
                invitation { id } } }",
            json!({}),
        )
        .await;
    let invitation_id = invitation["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = app
        .data(
            alice_token,
            "mutation { createApiKey(input: { name: \"k\", scopes: [READ] }) { apiKey { id } } }",
            json!({}),
        )
        .await;
    let key_id = key["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions = app
        .data(alice_token, "{ mySessions { id } }", json!({}))
        .await;
    let session_id = sessions["mySessions"][0]["id"].as_str().unwrap().to_owned();

    let tool = app
        .data(
            alice_token,
            "mutation { createTool(input: { name: \"lookup\", description: \"d\",
                parameters: { type: \"object\" }, url: \"https://tools.example.com/x\" }) {
                tool { id } } }",
            json!({}),
        )
        .await;
    let tool_id = tool["createTool"]["tool"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = app
        .data(
            alice_token,
            "mutation($id: ID!) { executeAgent(input: { agentId: $id, prompt: \"p\" }) {
                agentRun { id } } }",
            json!({ "id": chat.agent_id }),
        )
        .await;
    let run_id = run["executeAgent"]["agentRun"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Webhooks are a feature of the pro plan. The endpoint is a loopback host, which the
    // platform refuses to send to, so the test sends nothing.
    app.db
        .execute_unprepared(&format!(
            "UPDATE subscriptions SET plan = 'pro' WHERE tenant_id = '{}'",
            alice.tenant_id
        ))
        .await
        .unwrap();
    let webhook = app
        .data(
            alice_token,
            "mutation { createWebhook(input: { url: \"http://localhost:9/hook\",
                events: [API_KEY_CREATED] }) { webhook { id } } }",
            json!({}),
        )
        .await;
    let webhook_id = webhook["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tested = app
        .data(
            alice_token,
            "mutation($id: ID!) { testWebhook(input: { id: $id }) { message { id } } }",
            json!({ "id": webhook_id }),
        )
        .await;
    let webhook_message_id = tested["testWebhook"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mallory = app.register("mallory-x@example.com", "Mallory").await;
    let token = Some(mallory.access_token.as_str());
    let agent = chat.agent_id.as_str();
    let conversation = chat.conversation_id.as_str();
    let tenant = alice.tenant_id.as_str();
    let user = colleague.user_id.as_str();
    let cases: Vec<(&str, String, Value)> = vec![
        (
            "agent",
            "query($id: ID!) { agent(id: $id) { id } }".into(),
            json!({ "id": agent }),
        ),
        (
            "auditLogs",
            "query($id: ID!) { auditLogs(filter: { targetId: $id }) {
            edges { node { id } } } }"
                .into(),
            json!({ "id": agent }),
        ),
        (
            "conversation",
            "query($id: ID!) { conversation(id: $id) { id } }".into(),
            json!({ "id": conversation }),
        ),
        (
            "message",
            "query($id: ID!) { message(id: $id) { id } }".into(),
            json!({ "id": message_id }),
        ),
        (
            "task",
            "query($id: ID!) { task(id: $id) { id } }".into(),
            json!({ "id": task_id }),
        ),
        (
            "tasks",
            "query($id: ID!) { tasks(filter: { assigneeId: $id }) {
            edges { node { id } } } }"
                .into(),
            json!({ "id": user }),
        ),
        (
            "login",
            "mutation($id: ID!) { login(input: { email: \"mallory-x@example.com\",
            password: \"correct horse battery\", tenantId: $id }) { accessToken } }"
                .into(),
            json!({ "id": tenant }),
        ),
        (
            "setTenantPlan",
            "mutation($id: ID!) { setTenantPlan(input: { tenantId: $id,
            plan: ENTERPRISE }) { tenant { id } } }"
                .into(),
            json!({ "id": tenant }),
        ),
        (
            "suspendTenant",
            "mutation($id: ID!) { suspendTenant(input: { tenantId: $id }) {
            tenant { id } } }"
                .into(),
            json!({ "id": tenant }),
        ),
        (
            "reactivateTenant",
            "mutation($id: ID!) { reactivateTenant(input: { tenantId: $id }) {
            tenant { id } } }"
                .into(),
            json!({ "id": tenant }),
        ),
        (
            "updateAgent",
            "mutation($id: ID!) { updateAgent(input: { id: $id, name: \"x\" }) {
            agent { id } } }"
                .into(),
            json!({ "id": agent }),
        ),
        (
            "deleteAgent",
            "mutation($id: ID!) { deleteAgent(input: { id: $id }) {
            deletedAgentId } }"
                .into(),
            json!({ "id": agent }),
        ),
        (
            "revokeApiKey",
            "mutation($id: ID!) { revokeApiKey(input: { id: $id }) {
            apiKey { id } } }"
                .into(),
            json!({ "id": key_id }),
        ),
        (
            "createConversation",
            "mutation($id: ID!) { createConversation(input: {
            title: \"t\", agentId: $id }) { conversation { id } } }"
                .into(),
            json!({ "id": agent }),
        ),
        (
            "renameConversation",
            "mutation($id: ID!) { renameConversation(input: { id: $id,
            title: \"x\" }) { conversation { id } } }"
                .into(),
            json!({ "id": conversation }),
        ),
        (
            "deleteConversation",
            "mutation($id: ID!) { deleteConversation(input: { id: $id }) {
            deletedConversationId } }"
                .into(),
            json!({ "id": conversation }),
        ),
        (
            "sendMessage",
            "mutation($id: ID!) { sendMessage(input: { conversationId: $id,
            content: \"hi\" }) { assistantMessage { id } } }"
                .into(),
            json!({ "id": conversation }),
        ),
        (
            "stopGeneration",
            "mutation($id: ID!) { stopGeneration(input: { messageId: $id }) {
            message { id } } }"
                .into(),
            json!({ "id": message_id }),
        ),
        (
            "revokeInvitation",
            "mutation($id: ID!) { revokeInvitation(input: { id: $id }) {
            invitation { id } } }"
                .into(),
            json!({ "id": invitation_id }),
        ),
        (
            "changeMemberRole",
            "mutation($id: ID!) { changeMemberRole(input: { userId: $id,
            role: VIEWER }) { member { role } } }"
                .into(),
            json!({ "id": user }),
        ),
        (
            "removeMember",
            "mutation($id: ID!) { removeMember(input: { userId: $id }) {
            member { role } } }"
                .into(),
            json!({ "id": user }),
        ),
        (
            "revokeSession",
            "mutation($id: ID!) { revokeSession(input: { id: $id }) {
            session { id } } }"
                .into(),
            json!({ "id": session_id }),
        ),
        (
            "switchTenant",
            "mutation($id: ID!) { switchTenant(input: { tenantId: $id }) {
            accessToken } }"
                .into(),
            json!({ "id": tenant }),
        ),
        (
            "createTask",
            "mutation($id: ID!) { createTask(input: { title: \"t\",
            assigneeId: $id }) { task { id } } }"
                .into(),
            json!({ "id": user }),
        ),
        (
            "updateTask",
            "mutation($id: ID!) { updateTask(input: { id: $id, title: \"x\" }) {
            task { id } } }"
                .into(),
            json!({ "id": task_id }),
        ),
        (
            "deleteTask",
            "mutation($id: ID!) { deleteTask(input: { id: $id }) {
            deletedTaskId } }"
                .into(),
            json!({ "id": task_id }),
        ),
        (
            "tool",
            "query($id: ID!) { tool(id: $id) { id } }".into(),
            json!({ "id": tool_id }),
        ),
        (
            "updateTool",
            "mutation($id: ID!) { updateTool(input: { id: $id, name: \"x\" }) {
            tool { id } } }"
                .into(),
            json!({ "id": tool_id }),
        ),
        (
            "deleteTool",
            "mutation($id: ID!) { deleteTool(input: { id: $id }) { deletedToolId } }".into(),
            json!({ "id": tool_id }),
        ),
        (
            "executeAgent",
            "mutation($id: ID!) { executeAgent(input: { agentId: $id, prompt: \"p\" }) {
            agentRun { id } } }"
                .into(),
            json!({ "id": agent }),
        ),
        (
            "agentRun",
            "query($id: ID!) { agentRun(id: $id) { id } }".into(),
            json!({ "id": run_id }),
        ),
        (
            "agentRuns",
            "query($id: ID!) { agentRuns(agentId: $id) { edges { node { id } } } }".into(),
            json!({ "id": agent }),
        ),
        (
            "agentStats",
            "query($id: ID!) { agentStats(agentId: $id) { runs } }".into(),
            json!({ "id": agent }),
        ),
        (
            "responseCacheStats",
            "query($id: ID!) { responseCacheStats(agentId: $id) { lookups } }".into(),
            json!({ "id": agent }),
        ),
        (
            "cancelAgentRun",
            "mutation($id: ID!) { cancelAgentRun(input: { id: $id }) { agentRun { id } } }".into(),
            json!({ "id": run_id }),
        ),
        (
            "webhook",
            "query($id: ID!) { webhook(id: $id) { id } }".into(),
            json!({ "id": webhook_id }),
        ),
        (
            "updateWebhook",
            "mutation($id: ID!) { updateWebhook(input: { id: $id, enabled: false }) {
            webhook { id } } }"
                .into(),
            json!({ "id": webhook_id }),
        ),
        (
            "deleteWebhook",
            "mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedWebhookId } }".into(),
            json!({ "id": webhook_id }),
        ),
        (
            "rotateWebhookSecret",
            "mutation($id: ID!) { rotateWebhookSecret(input: { id: $id }) { secret } }".into(),
            json!({ "id": webhook_id }),
        ),
        (
            "testWebhook",
            "mutation($id: ID!) { testWebhook(input: { id: $id }) { message { id } } }".into(),
            json!({ "id": webhook_id }),
        ),
        (
            "redeliverWebhookMessage",
            "mutation($id: ID!) { redeliverWebhookMessage(input: { messageId: $id }) {
            message { id } } }"
                .into(),
            json!({ "id": webhook_message_id }),
        ),
    ];

    let mut failures = Vec::new();
    for (name, document, variables) in &cases {
        let expected = ID_OPERATIONS
            .iter()
            .find(|(listed, _)| listed == name)
            .map(|(_, expected)| *expected)
            .unwrap();
        let body = app.graphql(token, document, variables.clone()).await;
        let code = error_code(&body);
        let ok = match expected {
            Expected::NotFound => code == "NOT_FOUND",
            Expected::BadInput => code == "BAD_USER_INPUT",
            Expected::PlatformAdminOnly => code == "FORBIDDEN",
            Expected::Empty => {
                body["errors"].is_null()
                    && body["data"]
                        .as_object()
                        .and_then(|data| data.values().next())
                        .map(|list| list["edges"] == json!([]))
                        .unwrap_or(false)
            }
        };
        if !ok {
            failures.push(format!("{name}: expected {expected:?}, got {body}"));
        }
    }

    // The subscription, over WebSocket.
    let stream = graphql_ws::collect_subscription(
        &app.ws_url(),
        &mallory.access_token,
        "subscription($id: ID!) { messageStream(messageId: $id) { kind } }",
        json!({ "id": message_id }),
        Duration::from_secs(10),
    )
    .await;
    match stream {
        Ok(payloads) if error_code(&payloads[0]) == "NOT_FOUND" => {}
        other => failures.push(format!("messageStream: expected NotFound, got {other:?}")),
    }
    let run_events = graphql_ws::collect_subscription(
        &app.ws_url(),
        &mallory.access_token,
        "subscription($id: ID!) { agentRunEvents(runId: $id) { kind } }",
        json!({ "id": run_id }),
        Duration::from_secs(10),
    )
    .await;
    match run_events {
        Ok(payloads) if error_code(&payloads[0]) == "NOT_FOUND" => {}
        other => failures.push(format!("agentRunEvents: expected NotFound, got {other:?}")),
    }
    let covered = cases.len() + 2;
    assert_eq!(
        covered,
        ID_OPERATIONS.len(),
        "every listed operation needs a call"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing of Alice's changed.
    let still = app
        .data(
            alice_token,
            "query($agent: ID!, $conversation: ID!) { agent(id: $agent) { name }
                conversation(id: $conversation) { title } }",
            json!({ "agent": agent, "conversation": conversation }),
        )
        .await;
    assert_eq!(still["agent"]["name"], "Helper");
    assert_eq!(still["conversation"]["title"], "Test chat");
    let members = app
        .data(
            alice_token,
            "{ members { edges { node { role } } } }",
            json!({}),
        )
        .await;
    let roles: Vec<&Value> = members["members"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| &edge["node"]["role"])
        .collect();
    assert_eq!(roles, [&json!("OWNER"), &json!("MEMBER")]);
    app.shutdown().await;
}
