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
