//! The `tenantEvents` subscription: every kind of change in order, scoped to the tenant
//! and the subscriber's role, resumable from a cursor, filtered by kind, and followed
//! through another api replica.

use std::time::Duration;

use providers::ProviderKind;
use serde_json::{Value, json};
use tests::{
    TestApp, TestOptions,
    graphql_ws::{Connection, Received},
};

const EVENTS: &str = "subscription($after: String, $kinds: [TenantEventKind!]) {
    tenantEvents(after: $after, kinds: $kinds) {
        cursor kind at taskId agentRunId agentRunStatus conversationId messageId messageStatus
        provider providerStatus task { title } message { role } conversation { title } } }";

/// The start of every stream, so that a test reads all changes since its app started.
const FROM_THE_START: &str = "0-0,0-0";

/// Every kind but provider health, which the worker's probes change when it starts.
const TENANT_KINDS: [&str; 7] = [
    "TASK_CREATED",
    "TASK_UPDATED",
    "TASK_DELETED",
    "AGENT_RUN_CHANGED",
    "CONVERSATION_CREATED",
    "MESSAGE_CREATED",
    "MESSAGE_COMPLETED",
];

/// Starts an app without a worker, so that no probe changes the providers' health.
async fn without_worker() -> TestApp {
    TestApp::spawn_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

async fn subscribe(ws_url: &str, token: &str, variables: Value) -> Connection {
    let mut connection = Connection::open(ws_url, token).await.unwrap();
    connection
        .subscribe("live", EVENTS, variables)
        .await
        .unwrap();
    connection
}

/// Reads the next event of the subscription.
async fn next_event(connection: &mut Connection) -> Value {
    match connection.receive(Duration::from_secs(10)).await.unwrap() {
        Received::Message(message) if message["type"] == "next" => {
            assert!(message["payload"]["errors"].is_null(), "{message}");
            message["payload"]["data"]["tenantEvents"].clone()
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn create_task(app: &TestApp, token: &str, title: &str) -> String {
    let data = app
        .data(
            Some(token),
            "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }",
            json!({ "input": { "title": title } }),
        )
        .await;
    data["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_arrives_in_order_with_its_objects() {
    let app = TestApp::spawn().await.unwrap();
    let chat = app.start_chat("live@example.com", "Be brief.").await;
    let token = chat.owner.access_token.clone();
    let mut connection = subscribe(
        &app.ws_url(),
        &token,
        json!({ "after": FROM_THE_START, "kinds": TENANT_KINDS }),
    )
    .await;

    // Starting the chat created a conversation.
    let created = next_event(&mut connection).await;
    assert_eq!(created["kind"], "CONVERSATION_CREATED");
    assert_eq!(created["conversationId"], json!(chat.conversation_id));
    assert_eq!(created["conversation"]["title"], "Test chat");

    let task_id = create_task(&app, &token, "Watch me").await;
    app.data(
        Some(&token),
        "mutation($input: UpdateTaskInput!) { updateTask(input: $input) { task { id } } }",
        json!({ "input": { "id": task_id, "title": "Watched" } }),
    )
    .await;
    app.data(
        Some(&token),
        "mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedTaskId } }",
        json!({ "input": { "id": task_id } }),
    )
    .await;
    let task_created = next_event(&mut connection).await;
    let task_updated = next_event(&mut connection).await;
    let task_deleted = next_event(&mut connection).await;
    assert_eq!(
        [
            &task_created["kind"],
            &task_updated["kind"],
            &task_deleted["kind"]
        ],
        ["TASK_CREATED", "TASK_UPDATED", "TASK_DELETED"]
    );
    for event in [&task_created, &task_updated, &task_deleted] {
        assert_eq!(event["taskId"], json!(task_id));
    }
    // The object is read when the event is delivered, so the deleted task is gone.
    assert!(task_deleted["task"].is_null());
    let at = chrono::DateTime::parse_from_rfc3339(task_created["at"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - at.to_utc()).num_seconds().abs() < 60);

    let message_id = app
        .send_message(&token, &chat.conversation_id, "Hello")
        .await;
    let user_message = next_event(&mut connection).await;
    let reply = next_event(&mut connection).await;
    let completed = next_event(&mut connection).await;
    assert_eq!(user_message["kind"], "MESSAGE_CREATED");
    assert_eq!(user_message["message"]["role"], "USER");
    assert_eq!(reply["kind"], "MESSAGE_CREATED");
    assert_eq!(reply["messageId"], json!(message_id));
    assert_eq!(completed["kind"], "MESSAGE_COMPLETED");
    assert_eq!(completed["messageId"], json!(message_id));
    assert_eq!(completed["messageStatus"], "COMPLETED");
    assert_eq!(completed["conversationId"], json!(chat.conversation_id));

    let run = app
        .data(
            Some(&token),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) { agentRun { id } } }",
            json!({ "input": { "agentId": chat.agent_id, "prompt": "Go" } }),
        )
        .await;
    let run_id = run["executeAgent"]["agentRun"]["id"].clone();
    let mut statuses = Vec::new();
    while statuses.last().is_none_or(|status| status != "SUCCEEDED") {
        let event = next_event(&mut connection).await;
        assert_eq!(event["kind"], "AGENT_RUN_CHANGED");
        assert_eq!(event["agentRunId"], run_id);
        statuses.push(event["agentRunStatus"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["QUEUED", "RUNNING", "SUCCEEDED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_health_changes_reach_members_of_every_tenant() {
    let app = without_worker().await;
    let owner = app.register("health-live@example.com", "Health").await;
    let viewer = app
        .add_member(&owner.access_token, "health-viewer@example.com", "VIEWER")
        .await;
    let other = app.register("health-other@example.com", "Other").await;
    let kinds =
        json!({ "after": FROM_THE_START, "kinds": ["PROVIDER_HEALTH_CHANGED", "TASK_CREATED"] });
    let mut owner_events = subscribe(&app.ws_url(), &owner.access_token, kinds.clone()).await;
    let mut other_events = subscribe(&app.ws_url(), &other.access_token, kinds.clone()).await;
    let mut viewer_events = subscribe(&app.ws_url(), &viewer.access_token, kinds).await;

    let record =
        |ok| service::provider_health::record_outcome(&app.platform, ProviderKind::Anthropic, ok);
    record(true).await.unwrap();
    // The same status again is no change, and two failures do not degrade it yet.
    record(true).await.unwrap();
    record(false).await.unwrap();
    record(false).await.unwrap();
    record(false).await.unwrap();
    let task_id = create_task(&app, &owner.access_token, "After").await;

    for events in [&mut owner_events, &mut other_events] {
        let healthy = next_event(events).await;
        assert_eq!(healthy["kind"], "PROVIDER_HEALTH_CHANGED");
        assert_eq!(healthy["provider"], "ANTHROPIC");
        assert_eq!(healthy["providerStatus"], "HEALTHY");
        let degraded = next_event(events).await;
        assert_eq!(degraded["providerStatus"], "DEGRADED");
    }
    assert_eq!(
        next_event(&mut owner_events).await["taskId"],
        json!(task_id)
    );
    // The viewer role may not read provider health.
    assert_eq!(
        next_event(&mut viewer_events).await["taskId"],
        json!(task_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_scoped_by_tenant_and_role() {
    let app = without_worker().await;
    let chat = app.start_chat("scope-owner@example.com", "Be brief.").await;
    let owner = chat.owner.access_token.clone();
    let member = app
        .add_member(&owner, "scope-member@example.com", "MEMBER")
        .await;
    let viewer = app
        .add_member(&owner, "scope-viewer@example.com", "VIEWER")
        .await;
    let outsider = app.register("outsider@example.com", "Elsewhere").await;
    let from_start = json!({ "after": FROM_THE_START, "kinds": TENANT_KINDS });
    let mut member_events =
        subscribe(&app.ws_url(), &member.access_token, from_start.clone()).await;
    let mut viewer_events =
        subscribe(&app.ws_url(), &viewer.access_token, from_start.clone()).await;
    let mut outsider_events =
        subscribe(&app.ws_url(), &outsider.access_token, from_start.clone()).await;
    let mut owner_events = subscribe(&app.ws_url(), &owner, from_start).await;

    // The owner's conversation and messages: the owner sees them, the others do not.
    let message_id = app
        .send_message(&owner, &chat.conversation_id, "Private")
        .await;
    app.wait_for_reply(&owner, &message_id).await;
    let member_conversation = app
        .create_conversation(&member.access_token, &chat.agent_id)
        .await;
    let task_id = create_task(&app, &owner, "For everyone").await;

    let mut owner_kinds = Vec::new();
    loop {
        let event = next_event(&mut owner_events).await;
        owner_kinds.push(event["kind"].as_str().unwrap().to_owned());
        if event["kind"] == "TASK_CREATED" {
            break;
        }
    }
    assert_eq!(
        owner_kinds,
        [
            "CONVERSATION_CREATED",
            "MESSAGE_CREATED",
            "MESSAGE_CREATED",
            "MESSAGE_COMPLETED",
            "CONVERSATION_CREATED",
            "TASK_CREATED"
        ],
        "owners and admins see every conversation"
    );

    let own = next_event(&mut member_events).await;
    assert_eq!(own["kind"], "CONVERSATION_CREATED");
    assert_eq!(own["conversationId"], json!(member_conversation));
    let task = next_event(&mut member_events).await;
    assert_eq!(task["taskId"], json!(task_id));

    // A viewer sees the task but not the conversations of others.
    let task = next_event(&mut viewer_events).await;
    assert_eq!(task["kind"], "TASK_CREATED");
    assert_eq!(task["task"]["title"], "For everyone");

    // Another tenant's subscriber receives its own task only.
    let own_task = create_task(&app, &outsider.access_token, "Mine").await;
    let task = next_event(&mut outsider_events).await;
    assert_eq!(task["taskId"], json!(own_task));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_resume_filter_and_cross_replicas() {
    let app = without_worker().await;
    let owner = app.register("resume-live@example.com", "Resume").await;
    let token = owner.access_token.clone();
    let second_ws = format!(
        "{}/graphql/ws",
        app.start_second_api()
            .await
            .unwrap()
            .replacen("http", "ws", 1)
    );

    let first = create_task(&app, &token, "First").await;
    let mut connection = subscribe(&app.ws_url(), &token, json!({ "after": FROM_THE_START })).await;
    let event = next_event(&mut connection).await;
    assert_eq!(event["taskId"], json!(first));
    let cursor = event["cursor"].as_str().unwrap().to_owned();
    drop(connection);

    // Changed while disconnected, then read from the other replica from the cursor.
    let second = create_task(&app, &token, "Second").await;
    let third = create_task(&app, &token, "Third").await;
    let mut resumed = subscribe(&second_ws, &token, json!({ "after": cursor })).await;
    assert_eq!(next_event(&mut resumed).await["taskId"], json!(second));
    assert_eq!(next_event(&mut resumed).await["taskId"], json!(third));

    // Only the kinds asked for.
    let mut deletions = subscribe(
        &app.ws_url(),
        &token,
        json!({ "after": FROM_THE_START, "kinds": ["TASK_DELETED"] }),
    )
    .await;
    app.data(
        Some(&token),
        "mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedTaskId } }",
        json!({ "input": { "id": second } }),
    )
    .await;
    let deleted = next_event(&mut deletions).await;
    assert_eq!(deleted["kind"], "TASK_DELETED");
    assert_eq!(deleted["taskId"], json!(second));

    // Without a cursor the subscription starts with the next change: keep changing until
    // one arrives, which must not be an earlier one.
    let mut from_now = subscribe(&app.ws_url(), &token, json!({})).await;
    let mut created = Vec::new();
    let arrived = loop {
        created.push(create_task(&app, &token, "Now").await);
        if let Ok(Received::Message(message)) = from_now.receive(Duration::from_millis(300)).await {
            break message["payload"]["data"]["tenantEvents"].clone();
        }
        assert!(created.len() < 30, "no event arrived");
    };
    assert!(
        created.contains(&arrived["taskId"].as_str().unwrap().to_owned()),
        "{arrived}"
    );

    // A cursor that is not one is refused.
    let mut refused = Connection::open(&app.ws_url(), &token).await.unwrap();
    refused
        .subscribe("bad", EVENTS, json!({ "after": "yesterday" }))
        .await
        .unwrap();
    let Received::Message(message) = refused.receive(Duration::from_secs(5)).await.unwrap() else {
        panic!("expected a result");
    };
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["field"],
        "after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimmed_cursor_rejected() {
    let app = without_worker().await;
    let owner = app.register("trimmed@example.com", "Trimmed").await;
    let token = owner.access_token.clone();
    let first = create_task(&app, &token, "First").await;
    let mut connection = subscribe(&app.ws_url(), &token, json!({ "after": FROM_THE_START })).await;
    let event = next_event(&mut connection).await;
    assert_eq!(event["taskId"], json!(first));
    let cursor = event["cursor"].as_str().unwrap().to_owned();
    drop(connection);

    // More changes than the stream keeps push the cursor's successors out.
    let ctx = service::auth::authenticate(&app.platform, &token, "test".into())
        .await
        .unwrap();
    for n in 0..service::live::KEPT_PER_STREAM + 50 {
        let input = service::tasks::CreateTask {
            title: format!("Task {n}"),
            description: None,
            status: None,
            priority: None,
            due_at: None,
            assignee_id: None,
        };
        service::tasks::create(&app.platform, &ctx, input)
            .await
            .unwrap();
    }
    let stale = app
        .eventually(Duration::from_secs(20), || async {
            let mut connection = Connection::open(&app.ws_url(), &token).await.ok()?;
            connection
                .subscribe("old", EVENTS, json!({ "after": cursor }))
                .await
                .ok()?;
            match connection.receive(Duration::from_secs(5)).await.ok()? {
                Received::Message(message) if !message["payload"]["errors"].is_null() => {
                    Some(message)
                }
                _ => None,
            }
        })
        .await
        .unwrap();
    let error = &stale["payload"]["errors"][0];
    assert_eq!(error["extensions"]["field"], "after");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("1000 changes kept")
    );
}
