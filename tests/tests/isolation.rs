//! A user of one tenant cannot reach another tenant's data, and members see only their
//! own conversations.

use serde_json::json;
use tests::{TestApp, error_code};

#[tokio::test]
async fn other_tenants_ids_read_as_not_found() {
    let app = TestApp::spawn().await.unwrap();
    let alice = app.register("alice@example.com", "Alice Org").await;
    let mallory = app.register("mallory@example.com", "Mallory Org").await;

    let agent_id = app
        .create_agent(&alice.access_token, "Secret instructions.")
        .await;
    let conversation_id = app
        .create_conversation(&alice.access_token, &agent_id)
        .await;
    let message_id = app
        .send_message(&alice.access_token, &conversation_id, "private")
        .await;
    app.wait_for_reply(&alice.access_token, &message_id).await;
    let task = app
        .data(
            Some(&alice.access_token),
            "mutation { createTask(input: { title: \"Alice's task\" }) { task { id } } }",
            json!({}),
        )
        .await;
    let task_id = task["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let token = Some(mallory.access_token.as_str());
    let reads = [
        ("query($id: ID!) { agent(id: $id) { id } }", &agent_id),
        (
            "query($id: ID!) { conversation(id: $id) { id } }",
            &conversation_id,
        ),
        ("query($id: ID!) { message(id: $id) { id } }", &message_id),
        ("query($id: ID!) { task(id: $id) { id } }", &task_id),
        (
            "mutation($id: ID!) { updateAgent(input: { id: $id, name: \"x\" }) { agent { id } } }",
            &agent_id,
        ),
        (
            "mutation($id: ID!) { deleteAgent(input: { id: $id }) { deletedAgentId } }",
            &agent_id,
        ),
        (
            "mutation($id: ID!) { sendMessage(input: { conversationId: $id, content: \"hi\" }) {
                assistantMessage { id } } }",
            &conversation_id,
        ),
        (
            "mutation($id: ID!) { deleteTask(input: { id: $id }) { deletedTaskId } }",
            &task_id,
        ),
        (
            "mutation($id: ID!) { stopGeneration(input: { messageId: $id }) { message { id } } }",
            &message_id,
        ),
    ];
    for (operation, id) in reads {
        let body = app.graphql(token, operation, json!({ "id": id })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{operation}: {body}");
    }

    // An id of another tenant inside an input reads like an unknown id.
    let foreign_agent = app
        .graphql(
            token,
            "mutation($id: ID!) { createConversation(input: { title: \"t\", agentId: $id }) {
                conversation { id } } }",
            json!({ "id": agent_id }),
        )
        .await;
    assert_eq!(error_code(&foreign_agent), "BAD_USER_INPUT");
    let foreign_assignee = app
        .graphql(
            token,
            "mutation($id: ID!) { createTask(input: { title: \"t\", assigneeId: $id }) { task { id } } }",
            json!({ "id": alice.user_id }),
        )
        .await;
    assert_eq!(error_code(&foreign_assignee), "BAD_USER_INPUT");

    let lists = app
        .data(
            token,
            "{ agents { edges { node { id } } } conversations { edges { node { id } } }
               tasks { edges { node { id } } } usageRecords { edges { node { id } } } }",
            json!({}),
        )
        .await;
    for list in ["agents", "conversations", "tasks", "usageRecords"] {
        assert_eq!(
            lists[list]["edges"].as_array().unwrap().len(),
            0,
            "{list}: {lists}"
        );
    }

    // Alice's data is untouched by Mallory's attempts.
    let still_there = app
        .data(
            Some(&alice.access_token),
            "query($id: ID!) { agent(id: $id) { name } }",
            json!({ "id": agent_id }),
        )
        .await;
    assert_eq!(still_there["agent"]["name"], "Helper");
    app.shutdown().await;
}

/// Adds an existing user to a tenant with a role, as an invitation will.
async fn add_member(app: &TestApp, tenant_id: &str, user_id: &str, role: &str) {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO memberships (id, tenant_id, user_id, role, created_at)
             VALUES ($1, $2, $3, $4, now())",
            [
                uuid::Uuid::now_v7().into(),
                tenant_id.parse::<uuid::Uuid>().unwrap().into(),
                user_id.parse::<uuid::Uuid>().unwrap().into(),
                role.into(),
            ],
        ))
        .await
        .unwrap();
}

async fn login_to(app: &TestApp, email: &str, tenant_id: &str) -> tests::Session {
    let data = app
        .data(
            None,
            "mutation($input: LoginInput!) { login(input: $input) {
                accessToken refreshToken user { id } tenant { id } role } }",
            json!({ "input": { "email": email, "password": "correct horse battery",
                               "tenantId": tenant_id } }),
        )
        .await;
    tests::Session::from_payload(&data["login"])
}

#[tokio::test]
async fn conversations_private_to_creator_and_admins() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("boss@example.com", "Shared Org").await;
    let member = app.register("worker@example.com", "Worker Home").await;
    let viewer = app.register("reader@example.com", "Reader Home").await;
    add_member(&app, &owner.tenant_id, &member.user_id, "member").await;
    add_member(&app, &owner.tenant_id, &viewer.user_id, "viewer").await;
    let member = login_to(&app, "worker@example.com", &owner.tenant_id).await;
    let viewer = login_to(&app, "reader@example.com", &owner.tenant_id).await;
    assert_eq!(member.tenant_id, owner.tenant_id);

    let agent_id = app.create_agent(&owner.access_token, "Shared agent.").await;
    let owners_chat = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let members_chat = app
        .create_conversation(&member.access_token, &agent_id)
        .await;

    // Agents are visible to every member.
    let agent = app
        .data(
            Some(&viewer.access_token),
            "query($id: ID!) { agent(id: $id) { id } }",
            json!({ "id": agent_id }),
        )
        .await;
    assert_eq!(agent["agent"]["id"], agent_id.as_str());

    let conversation = "query($id: ID!) { conversation(id: $id) { id } }";
    let hidden = app
        .graphql(
            Some(&member.access_token),
            conversation,
            json!({ "id": owners_chat }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    let own = app
        .data(
            Some(&member.access_token),
            conversation,
            json!({ "id": members_chat }),
        )
        .await;
    assert_eq!(own["conversation"]["id"], members_chat.as_str());
    let as_owner = app
        .data(
            Some(&owner.access_token),
            conversation,
            json!({ "id": members_chat }),
        )
        .await;
    assert_eq!(as_owner["conversation"]["id"], members_chat.as_str());

    let listed = app
        .data(
            Some(&member.access_token),
            "{ conversations { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&str> = listed["conversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [members_chat.as_str()]);

    // Viewers read but do not write.
    let forbidden = app
        .graphql(
            Some(&viewer.access_token),
            "mutation { createTask(input: { title: \"nope\" }) { task { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    app.shutdown().await;
}
