//! Rejected input gets BAD_USER_INPUT naming the field, and writes nothing.

use serde_json::{Value, json};
use tests::{TestApp, error_code};

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
const CREATE_AGENT: &str =
    "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }";
const CREATE_CONVERSATION: &str = "mutation($input: CreateConversationInput!) {
    createConversation(input: $input) { conversation { id } } }";
const SEND_MESSAGE: &str = "mutation($input: SendMessageInput!) {
    sendMessage(input: $input) { assistantMessage { id } } }";
const CREATE_TASK: &str =
    "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }";

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT COUNT(*)::bigint AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn register_rejects_bad_fields() {
    let app = TestApp::spawn().await.unwrap();
    let valid = json!({ "email": "ok@example.com", "password": "long enough pw",
                        "fullName": "Ok", "tenantName": "Ok Org" });
    let cases = [
        ("email", json!("not-an-email")),
        ("password", json!("short")),
        ("password", json!("p".repeat(129))),
        ("fullName", json!("   ")),
        ("tenantName", json!("t".repeat(201))),
    ];
    for (name, value) in cases {
        let mut input = valid.clone();
        input[name] = value;
        let body = app.graphql(None, REGISTER, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
        assert_eq!(field(&body), name, "{body}");
    }
    assert_eq!(count(&app, "tenants").await, 0);
    assert_eq!(count(&app, "users").await, 0);

    app.graphql(None, REGISTER, json!({ "input": valid.clone() }))
        .await;
    let duplicate = app.graphql(None, REGISTER, json!({ "input": valid })).await;
    assert_eq!(error_code(&duplicate), "BAD_USER_INPUT");
    assert_eq!(field(&duplicate), "email");
    // The duplicate's tenant was rolled back with its user.
    assert_eq!(count(&app, "tenants").await, 1);
    assert_eq!(count(&app, "users").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn agent_conversation_message_task_reject_bad_fields() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("input@example.com", "Input Org").await;
    let token = Some(owner.access_token.as_str());

    let agent = json!({ "name": "A", "instructions": "Help.", "provider": "OPENAI", "model": "gpt-4o-mini" });
    let agent_cases = [
        ("name", json!("")),
        ("name", json!("n".repeat(201))),
        ("instructions", json!(" ")),
        ("model", json!("")),
        ("temperature", json!(3.5)),
        ("maxTokens", json!(0)),
    ];
    for (name, value) in agent_cases {
        let mut input = agent.clone();
        input[name] = value;
        let body = app
            .graphql(token, CREATE_AGENT, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
        assert_eq!(field(&body), name, "{body}");
    }
    assert_eq!(count(&app, "agents").await, 0);

    let unknown_agent = app
        .graphql(
            token,
            CREATE_CONVERSATION,
            json!({ "input": { "title": "T", "agentId": uuid::Uuid::now_v7().to_string() } }),
        )
        .await;
    assert_eq!(error_code(&unknown_agent), "BAD_USER_INPUT");
    assert_eq!(field(&unknown_agent), "agentId");
    let no_model = app
        .graphql(
            token,
            CREATE_CONVERSATION,
            json!({ "input": { "title": "T", "provider": "OPENAI" } }),
        )
        .await;
    assert_eq!(field(&no_model), "model");
    assert_eq!(count(&app, "conversations").await, 0);

    let agent_id = app.create_agent(&owner.access_token, "Help.").await;
    let conversation_id = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    for content in [json!(""), json!("   "), json!("x".repeat(100_001))] {
        let body = app
            .graphql(
                token,
                SEND_MESSAGE,
                json!({ "input": { "conversationId": conversation_id, "content": content } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), "content");
    }
    assert_eq!(count(&app, "messages").await, 0);

    let unknown_assignee = app
        .graphql(
            token,
            CREATE_TASK,
            json!({ "input": { "title": "Do", "assigneeId": uuid::Uuid::now_v7().to_string() } }),
        )
        .await;
    assert_eq!(error_code(&unknown_assignee), "BAD_USER_INPUT");
    assert_eq!(field(&unknown_assignee), "assigneeId");
    let empty_title = app
        .graphql(token, CREATE_TASK, json!({ "input": { "title": "" } }))
        .await;
    assert_eq!(field(&empty_title), "title");
    assert_eq!(count(&app, "tasks").await, 0);

    let bad_page = app
        .graphql(
            token,
            "{ agents(first: 101) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad_page), "BAD_USER_INPUT");
    assert_eq!(field(&bad_page), "first");
    let bad_cursor = app
        .graphql(
            token,
            "{ agents(after: \"nonsense\") { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&bad_cursor), "after");
    app.shutdown().await;
}

#[tokio::test]
async fn tasks_crud_with_filters_and_pages() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("tasks@example.com", "Task Org").await;
    let token = Some(owner.access_token.as_str());
    let mut ids = Vec::new();
    for (title, priority) in [("one", "LOW"), ("two", "HIGH"), ("three", "HIGH")] {
        let data = app
            .data(
                token,
                CREATE_TASK,
                json!({ "input": { "title": title, "priority": priority,
                                   "assigneeId": owner.user_id } }),
            )
            .await;
        ids.push(
            data["createTask"]["task"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    let updated = app
        .data(
            token,
            "mutation($input: UpdateTaskInput!) { updateTask(input: $input) {
                task { status priority dueAt assignee { id } } } }",
            json!({ "input": { "id": ids[1], "status": "DONE", "dueAt": "2027-01-02T03:04:05Z",
                               "assigneeId": null } }),
        )
        .await;
    let task = &updated["updateTask"]["task"];
    assert_eq!(task["status"], "DONE");
    assert_eq!(task["priority"], "HIGH");
    assert_eq!(task["dueAt"], "2027-01-02T03:04:05+00:00");
    assert_eq!(task["assignee"], Value::Null);

    let high = app
        .data(
            token,
            "{ tasks(filter: { priority: HIGH }) { edges { node { title assignee { id } } } } }",
            json!({}),
        )
        .await;
    let titles: Vec<&str> = high["tasks"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["three", "two"]);
    assert_eq!(
        high["tasks"]["edges"][0]["node"]["assignee"]["id"],
        owner.user_id.as_str()
    );

    let first_page = app
        .data(
            token,
            "{ tasks(first: 2) { edges { cursor node { title } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_page["tasks"]["pageInfo"]["hasNextPage"], true);
    let cursor = first_page["tasks"]["edges"][1]["cursor"].as_str().unwrap();
    let second_page = app
        .data(
            token,
            "query($after: String) { tasks(first: 2, after: $after) {
                edges { node { title } } pageInfo { hasNextPage } } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(second_page["tasks"]["edges"][0]["node"]["title"], "one");
    assert_eq!(second_page["tasks"]["pageInfo"]["hasNextPage"], false);

    let deleted = app
        .data(
            token,
            "mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedTaskId } }",
            json!({ "input": { "id": ids[0] } }),
        )
        .await;
    assert_eq!(deleted["deleteTask"]["deletedTaskId"], ids[0].as_str());
    assert_eq!(count(&app, "tasks").await, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_codes() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("syntax@example.com", "Syntax Org").await;
    let token = Some(owner.access_token.as_str());

    let bad_date = app
        .graphql(
            token,
            CREATE_TASK,
            json!({ "input": { "title": "t", "dueAt": "tomorrow" } }),
        )
        .await;
    assert_eq!(error_code(&bad_date), "BAD_USER_INPUT", "{bad_date}");
    let unknown_enum = app
        .graphql(
            token,
            "mutation { createTask(input: { title: \"t\", priority: CRITICAL }) { task { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&unknown_enum),
        "BAD_USER_INPUT",
        "{unknown_enum}"
    );
    assert_eq!(field(&unknown_enum), "priority", "{unknown_enum}");
    // A date that passes validation as a string and fails when read names its field too.
    assert_eq!(field(&bad_date), "dueAt", "{bad_date}");
    let syntax = app.graphql(token, "{ agents { ", json!({})).await;
    assert_eq!(error_code(&syntax), "BAD_USER_INPUT", "{syntax}");
    assert_eq!(field(&syntax), "");

    // Values that do not fit their type are refused before anything runs, naming the
    // input field, in variables and in the query alike.
    let create_key = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
        secret } }";
    let cases = [
        (json!({ "name": "k", "scopes": ["BOGUS"] }), "scopes"),
        (
            json!({ "name": "k", "scopes": ["READ"], "expiresAt": "soon" }),
            "expiresAt",
        ),
        (json!({ "name": "k" }), "scopes"),
        (
            json!({ "name": "k", "scopes": ["READ"], "requestsPerMinute": 1.5 }),
            "requestsPerMinute",
        ),
        (
            json!({ "name": "k", "scopes": ["READ"], "tokensPerMinute": 99_999_999_999_999_999_999.0 }),
            "tokensPerMinute",
        ),
    ];
    for (input, expected) in cases {
        let body = app
            .graphql(token, create_key, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), expected, "{body}");
    }
    let inline = app
        .graphql(
            token,
            "mutation { createApiKey(input: { name: \"k\", scopes: [READ],
                requestsPerMinute: 1.5 }) { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&inline), "requestsPerMinute", "{inline}");
    assert_eq!(count(&app, "api_keys").await, 0);

    let response = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("request body is not a valid GraphQL request"),
        "{message}"
    );
    assert_eq!(count(&app, "tasks").await, 0);
    app.shutdown().await;
}
