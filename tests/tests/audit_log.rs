//! The audit log: one row per state-changing mutation, written with the change or not at all,
//! free of secrets, readable by admins only, filtered, and separate per tenant.

use std::{collections::HashSet, time::Duration};

use entity::audit_log;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Statement};
use serde_json::{Value, json};
use tests::{MEMBER_PASSWORD, MockConfig, Session, TestApp, TestOptions, error_code};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";
const AUDIT_LOGS: &str = "query($filter: AuditLogFilter, $first: Int, $after: String) {
    auditLogs(filter: $filter, first: $first, after: $after) {
        edges { cursor node { id actorType actorUserId actorApiKeyId action targetType targetId
                              requestId ipAddress summary createdAt } }
        pageInfo { hasNextPage } } }";

/// Returns options whose mock replies stream long enough for a test to stop them.
fn slow_replies() -> TestOptions {
    TestOptions {
        mock: MockConfig {
            tokens: 400,
            gap: Duration::from_millis(50),
            ..MockConfig::default()
        },
        ..TestOptions::default()
    }
}

fn id(text: &str) -> Uuid {
    text.parse().unwrap_or_else(|_| panic!("not an id: {text}"))
}

fn uuid(value: &Value) -> Uuid {
    id(value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}")))
}

async fn all_rows(app: &TestApp) -> Vec<audit_log::Model> {
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

async fn row_count(app: &TestApp) -> usize {
    all_rows(app).await.len()
}

/// The rows that appeared since the last call.
struct NewRows<'a> {
    app: &'a TestApp,
    seen: HashSet<Uuid>,
}

impl<'a> NewRows<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            seen: HashSet::new(),
        }
    }

    /// Returns the one row written since the last call, failing unless there is exactly
    /// one and it records `action`.
    async fn one(&mut self, action: &str) -> audit_log::Model {
        let fresh: Vec<audit_log::Model> = all_rows(self.app)
            .await
            .into_iter()
            .filter(|row| !self.seen.contains(&row.id))
            .collect();
        self.seen.extend(fresh.iter().map(|row| row.id));
        assert_eq!(fresh.len(), 1, "{action}: {fresh:#?}");
        let row = fresh.into_iter().next().unwrap();
        assert_eq!(row.action, action);
        row
    }
}

/// Checks the tenant, actor and target of a row made by a signed-in user with a request id.
fn check_row(
    row: &audit_log::Model,
    tenant: Uuid,
    actor: Uuid,
    target_type: &str,
    target_id: Uuid,
) {
    let action = &row.action;
    assert_eq!(row.tenant_id, tenant, "{action}");
    assert_eq!(row.actor_type, audit_log::ActorType::User, "{action}");
    assert_eq!(row.actor_user_id, Some(actor), "{action}");
    assert_eq!(row.actor_api_key_id, None, "{action}");
    assert_eq!(row.target_type, target_type, "{action}");
    assert_eq!(row.target_id, target_id, "{action}");
    let request_id = row.request_id.as_deref().unwrap_or("");
    assert!(!request_id.is_empty(), "{action} has no request id");
}

async fn invite(app: &TestApp, token: &str, email: &str, role: &str) -> (Uuid, String) {
    let data = app
        .data(
            Some(token),
            "mutation($input: InviteMemberInput!) { inviteMember(input: $input) {
                token invitation { id } } }",
            json!({ "input": { "email": email, "role": role } }),
        )
        .await;
    let invited = &data["inviteMember"];
    (
        uuid(&invited["invitation"]["id"]),
        invited["token"].as_str().unwrap().to_owned(),
    )
}

async fn accept(app: &TestApp, token: &str, email: &str) -> Session {
    let data = app
        .data(
            None,
            "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) {
                accessToken refreshToken user { id } tenant { id } role } }",
            json!({ "input": { "token": token, "fullName": email,
                               "password": MEMBER_PASSWORD } }),
        )
        .await;
    Session::from_payload(&data["acceptInvitation"])
}

async fn create_task(app: &TestApp, token: &str, title: &str) -> Uuid {
    let data = app
        .data(
            Some(token),
            "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { id } } }",
            json!({ "input": { "title": title } }),
        )
        .await;
    uuid(&data["createTask"]["task"]["id"])
}

async fn audit_logs(app: &TestApp, token: &str, filter: Value) -> Value {
    app.graphql(Some(token), AUDIT_LOGS, json!({ "filter": filter }))
        .await
}

/// Returns the actions of a successful `auditLogs` response, in the order listed.
fn actions(body: &Value) -> Vec<String> {
    assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
    body["data"]["auditLogs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn content_mutations_write_one_row_each() {
    let app = TestApp::spawn_with(slow_replies()).await.unwrap();
    let mut rows = NewRows::new(&app);
    let owner = app.register("audit-owner@example.com", "Audited").await;
    let token = owner.access_token.as_str();
    let tenant = id(&owner.tenant_id);
    let user = id(&owner.user_id);

    let registered = rows.one("tenant.register").await;
    assert_eq!(registered.tenant_id, tenant);
    assert_eq!(registered.actor_user_id, Some(user));
    assert_eq!(registered.target_type, "tenant");
    assert_eq!(registered.target_id, tenant);
    // The api gives a request without an x-request-id an id of its own.
    let request_id = registered.request_id.as_deref().unwrap_or_default();
    assert!(Uuid::parse_str(request_id).is_ok(), "{request_id:?}");
    assert_eq!(registered.ip_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(registered.summary["tenantName"], "Audited");

    let agent = id(&app.create_agent(token, "Be brief.").await);
    let row = rows.one("agent.create").await;
    check_row(&row, tenant, user, "agent", agent);
    assert_eq!(row.summary["name"], "Helper");
    assert_eq!(row.summary["model"], "gpt-4o-mini");

    app.data(
        Some(token),
        "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { agent { id } } }",
        json!({ "input": { "id": agent, "name": "Renamed", "model": "gpt-4o-mini" } }),
    )
    .await;
    let row = rows.one("agent.update").await;
    check_row(&row, tenant, user, "agent", agent);
    assert_eq!(
        row.summary["fields"],
        json!(["name"]),
        "the model did not change"
    );

    let conversation = id(&app.create_conversation(token, &agent.to_string()).await);
    let row = rows.one("conversation.create").await;
    check_row(&row, tenant, user, "conversation", conversation);
    assert_eq!(row.summary["agentId"], agent.to_string());

    app.data(
        Some(token),
        "mutation($input: RenameConversationInput!) {
            renameConversation(input: $input) { conversation { id } } }",
        json!({ "input": { "id": conversation, "title": "Renamed chat" } }),
    )
    .await;
    let row = rows.one("conversation.rename").await;
    check_row(&row, tenant, user, "conversation", conversation);
    assert_eq!(row.summary["title"], "Renamed chat");
    assert_eq!(row.summary["previousTitle"], "Test chat");

    let sent = app
        .data(
            Some(token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                userMessage { id } assistantMessage { id } } }",
            json!({ "input": { "conversationId": conversation, "content": "Hello" } }),
        )
        .await;
    let reply = uuid(&sent["sendMessage"]["assistantMessage"]["id"]);
    let row = rows.one("message.send").await;
    check_row(&row, tenant, user, "conversation", conversation);
    assert_eq!(
        row.summary["userMessageId"],
        sent["sendMessage"]["userMessage"]["id"]
    );
    assert_eq!(row.summary["assistantMessageId"], reply.to_string());

    app.data(
        Some(token),
        "mutation($id: ID!) { stopGeneration(input: { messageId: $id }) { message { id } } }",
        json!({ "id": reply }),
    )
    .await;
    let row = rows.one("generation.stop").await;
    check_row(&row, tenant, user, "message", reply);
    assert_eq!(row.summary["conversationId"], conversation.to_string());

    app.data(
        Some(token),
        "mutation($input: DeleteConversationInput!) {
            deleteConversation(input: $input) { deletedConversationId } }",
        json!({ "input": { "id": conversation } }),
    )
    .await;
    let row = rows.one("conversation.delete").await;
    check_row(&row, tenant, user, "conversation", conversation);

    app.data(
        Some(token),
        "mutation($input: DeleteAgentInput!) { deleteAgent(input: $input) { deletedAgentId } }",
        json!({ "input": { "id": agent } }),
    )
    .await;
    let row = rows.one("agent.delete").await;
    check_row(&row, tenant, user, "agent", agent);
    assert_eq!(row.summary["name"], "Renamed");

    let task = create_task(&app, token, "Audit me").await;
    let row = rows.one("task.create").await;
    check_row(&row, tenant, user, "task", task);
    assert_eq!(row.summary["title"], "Audit me");

    app.data(
        Some(token),
        "mutation($input: UpdateTaskInput!) { updateTask(input: $input) { task { id } } }",
        json!({ "input": { "id": task, "status": "DONE", "priority": "HIGH" } }),
    )
    .await;
    let row = rows.one("task.update").await;
    check_row(&row, tenant, user, "task", task);
    assert_eq!(row.summary["fields"], json!(["status", "priority"]));

    app.data(
        Some(token),
        "mutation($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedTaskId } }",
        json!({ "input": { "id": task } }),
    )
    .await;
    let row = rows.one("task.delete").await;
    check_row(&row, tenant, user, "task", task);

    let credential = app
        .data(
            Some(token),
            "mutation($input: SetProviderCredentialInput!) {
                setProviderCredential(input: $input) { credential { id } } }",
            json!({ "input": { "provider": "ANTHROPIC", "apiKey": "sk-ant-audit-0000000000" } }),
        )
        .await;
    let credential = uuid(&credential["setProviderCredential"]["credential"]["id"]);
    let row = rows.one("provider_credential.set").await;
    check_row(&row, tenant, user, "provider_credential", credential);
    assert_eq!(row.summary["provider"], "anthropic");

    app.data(
        Some(token),
        "mutation { deleteProviderCredential(input: { provider: ANTHROPIC }) {
            deletedProvider } }",
        json!({}),
    )
    .await;
    let row = rows.one("provider_credential.delete").await;
    check_row(&row, tenant, user, "provider_credential", credential);

    app.data(
        Some(token),
        "mutation { setModelPrice(input: { provider: OPENAI, model: \"audit-model\",
            inputPerMillion: 100, outputPerMillion: 200 }) { price { model } } }",
        json!({}),
    )
    .await;
    let row = rows.one("model_price.set").await;
    let price = row.target_id;
    check_row(&row, tenant, user, "model_price", price);
    assert_eq!(row.summary["model"], "audit-model");
    assert_eq!(row.summary["inputPerMillion"], 100);
    assert_eq!(row.summary["outputPerMillion"], 200);

    app.data(
        Some(token),
        "mutation { deleteModelPrice(input: { provider: OPENAI, model: \"audit-model\" }) {
            model } }",
        json!({}),
    )
    .await;
    let row = rows.one("model_price.delete").await;
    check_row(&row, tenant, user, "model_price", price);
    app.shutdown().await;
}

#[tokio::test]
async fn account_mutations_write_one_row_each() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("account-owner@example.com", "Accounts").await;
    let mut rows = NewRows::new(&app);
    rows.one("tenant.register").await;
    let token = owner.access_token.as_str();
    let tenant = id(&owner.tenant_id);
    let user = id(&owner.user_id);

    // Invited, accepted, promoted and removed.
    let (invitation, invitation_token) =
        invite(&app, token, "colleague@example.com", "MEMBER").await;
    let row = rows.one("member.invite").await;
    check_row(&row, tenant, user, "invitation", invitation);
    assert_eq!(row.summary["email"], "colleague@example.com");
    assert_eq!(row.summary["role"], "member");

    let colleague = accept(&app, &invitation_token, "colleague@example.com").await;
    let colleague_id = id(&colleague.user_id);
    let row = rows.one("invitation.accept").await;
    assert_eq!(row.tenant_id, tenant);
    assert_eq!(row.actor_user_id, Some(colleague_id), "the new user acts");
    assert_eq!(row.target_type, "invitation");
    assert_eq!(row.target_id, invitation);
    assert_eq!(row.summary["accountCreated"], true);
    assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"));

    app.data(
        Some(token),
        "mutation($input: ChangeMemberRoleInput!) { changeMemberRole(input: $input) {
            member { role } } }",
        json!({ "input": { "userId": colleague_id, "role": "ADMIN" } }),
    )
    .await;
    let row = rows.one("member.role_change").await;
    check_row(&row, tenant, user, "member", colleague_id);
    assert_eq!(row.summary["role"], "admin");
    assert_eq!(row.summary["previousRole"], "member");

    app.data(
        Some(token),
        "mutation($input: RemoveMemberInput!) { removeMember(input: $input) {
            member { role } } }",
        json!({ "input": { "userId": colleague_id } }),
    )
    .await;
    let row = rows.one("member.remove").await;
    check_row(&row, tenant, user, "member", colleague_id);
    assert_eq!(row.summary["role"], "admin");
    assert_eq!(row.summary["sessionsRevoked"], 1);

    // Invited and revoked before acceptance.
    let (revoked, _) = invite(&app, token, "never@example.com", "VIEWER").await;
    rows.one("member.invite").await;
    app.data(
        Some(token),
        "mutation($input: RevokeInvitationInput!) { revokeInvitation(input: $input) {
            invitation { id } } }",
        json!({ "input": { "id": revoked } }),
    )
    .await;
    let row = rows.one("invitation.revoke").await;
    check_row(&row, tenant, user, "invitation", revoked);

    // A member who leaves is the actor and the target.
    let (_, leaver_token) = invite(&app, token, "leaver@example.com", "VIEWER").await;
    rows.one("member.invite").await;
    let leaver = accept(&app, &leaver_token, "leaver@example.com").await;
    rows.one("invitation.accept").await;
    app.data(
        Some(&leaver.access_token),
        "mutation { leaveTenant { member { role } } }",
        json!({}),
    )
    .await;
    let leaver_id = id(&leaver.user_id);
    let row = rows.one("member.leave").await;
    check_row(&row, tenant, leaver_id, "member", leaver_id);

    let created = app
        .data(
            Some(token),
            "mutation { createApiKey(input: { name: \"CI\", scopes: [READ] }) {
                apiKey { id } } }",
            json!({}),
        )
        .await;
    let key = uuid(&created["createApiKey"]["apiKey"]["id"]);
    let row = rows.one("api_key.create").await;
    check_row(&row, tenant, user, "api_key", key);
    assert_eq!(row.summary["name"], "CI");
    assert_eq!(row.summary["scopes"], json!(["read"]));

    app.data(
        Some(token),
        "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) {
            apiKey { id } } }",
        json!({ "input": { "id": key } }),
    )
    .await;
    let row = rows.one("api_key.revoke").await;
    check_row(&row, tenant, user, "api_key", key);

    // A second sign-in (not audited) to revoke.
    let login = app
        .data(
            None,
            "mutation($input: LoginInput!) { login(input: $input) {
                accessToken refreshToken user { id } tenant { id } } }",
            json!({ "input": { "email": "account-owner@example.com", "password": PASSWORD } }),
        )
        .await;
    let second = Session::from_payload(&login["login"]);
    let sessions = app
        .data(Some(token), "{ mySessions { id current } }", json!({}))
        .await;
    let other_session = sessions["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == false)
        .map(|session| uuid(&session["id"]))
        .unwrap();
    app.data(
        Some(token),
        "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) {
            session { id } } }",
        json!({ "input": { "id": other_session } }),
    )
    .await;
    let row = rows.one("session.revoke").await;
    check_row(&row, tenant, user, "session", other_session);
    assert_eq!(row.summary["current"], false);
    let dead = app
        .graphql(Some(&second.access_token), "{ me { role } }", json!({}))
        .await;
    assert_eq!(error_code(&dead), "UNAUTHENTICATED", "{dead}");

    // The owner joins a second tenant and switches to it.
    let other = app.register("other-owner@example.com", "Other").await;
    rows.one("tenant.register").await;
    let (_, join_token) = invite(
        &app,
        &other.access_token,
        "account-owner@example.com",
        "VIEWER",
    )
    .await;
    rows.one("member.invite").await;
    app.data(
        None,
        "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) {
            role } }",
        json!({ "input": { "token": join_token, "password": PASSWORD } }),
    )
    .await;
    let row = rows.one("invitation.accept").await;
    assert_eq!(row.tenant_id, id(&other.tenant_id));
    assert_eq!(row.actor_user_id, Some(user));
    assert_eq!(row.summary["accountCreated"], false);

    let other_tenant = id(&other.tenant_id);
    app.data(
        Some(token),
        "mutation($input: SwitchTenantInput!) { switchTenant(input: $input) { role } }",
        json!({ "input": { "tenantId": other_tenant } }),
    )
    .await;
    let row = rows.one("session.switch_tenant").await;
    check_row(&row, tenant, user, "tenant", other_tenant);
    assert_eq!(row.summary["role"], "viewer");

    let changed = app
        .data(
            Some(token),
            "mutation { changePassword(input: { currentPassword: \"correct horse battery\",
                newPassword: \"a brand new password\" }) { revokedSessions } }",
            json!({}),
        )
        .await;
    let row = rows.one("user.password_change").await;
    check_row(&row, tenant, user, "user", user);
    assert_eq!(
        row.summary["sessionsRevoked"],
        changed["changePassword"]["revokedSessions"]
    );

    app.data(Some(token), "mutation { logout { success } }", json!({}))
        .await;
    let row = rows.one("session.logout").await;
    assert_eq!(row.target_type, "session");
    assert_eq!(row.actor_user_id, Some(user));
    assert_eq!(row.tenant_id, tenant);
    app.shutdown().await;
}

#[tokio::test]
async fn request_id_and_api_key_stored() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("request-id@example.com", "Request ids").await;

    let response = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .bearer_auth(&owner.access_token)
        .header("x-request-id", "audit-request-7f3a")
        .json(
            &json!({ "query": "mutation { createTask(input: { title: \"Tagged\" }) {
            task { id } } }" }),
        )
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let task = uuid(&body["data"]["createTask"]["task"]["id"]);
    let rows = all_rows(&app).await;
    let row = rows.iter().find(|row| row.target_id == task).unwrap();
    assert_eq!(row.request_id.as_deref(), Some("audit-request-7f3a"));

    // Registering has no caller yet, and its row still records the request.
    let response = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .header("x-request-id", "audit-register-51c2")
        .json(&json!({
            "query": "mutation($input: RegisterInput!) { register(input: $input) {
                tenant { id } } }",
            "variables": { "input": {
                "email": "second-owner@example.com", "password": "correct horse battery",
                "fullName": "Second Owner", "tenantName": "Second" } },
        }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let second_tenant = uuid(&body["data"]["register"]["tenant"]["id"]);
    let rows = all_rows(&app).await;
    let row = rows
        .iter()
        .find(|row| row.action == "tenant.register" && row.tenant_id == second_tenant)
        .unwrap();
    assert_eq!(row.request_id.as_deref(), Some("audit-register-51c2"));
    assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"));

    let created = app
        .data(
            Some(&owner.access_token),
            "mutation { createApiKey(input: { name: \"Writer\", scopes: [WRITE] }) {
                secret apiKey { id } } }",
            json!({}),
        )
        .await;
    let secret = created["createApiKey"]["secret"].as_str().unwrap();
    let key = uuid(&created["createApiKey"]["apiKey"]["id"]);
    let by_key = create_task(&app, secret, "Made by a key").await;
    let rows = all_rows(&app).await;
    let row = rows.iter().find(|row| row.target_id == by_key).unwrap();
    assert_eq!(row.action, "task.create");
    assert_eq!(row.actor_type, audit_log::ActorType::ApiKey);
    assert_eq!(row.actor_api_key_id, Some(key));
    assert_eq!(row.actor_user_id, Some(id(&owner.user_id)));

    let listed = audit_logs(&app, &owner.access_token, json!({ "targetId": by_key })).await;
    let node = &listed["data"]["auditLogs"]["edges"][0]["node"];
    assert_eq!(node["actorType"], "API_KEY", "{listed}");
    assert_eq!(node["actorApiKeyId"], key.to_string());
    assert_eq!(node["actorUserId"], owner.user_id);
    assert_eq!(node["targetType"], "task");
    assert_eq!(node["summary"]["title"], "Made by a key");
    app.shutdown().await;
}

#[tokio::test]
async fn rejected_mutations_write_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("rejected@example.com", "Rejected").await;
    let token = owner.access_token.as_str();
    let viewer = app.add_member(token, "viewer@example.com", "VIEWER").await;
    let before = row_count(&app).await;

    let cases = [
        (
            token,
            "mutation { createAgent(input: { name: \"\", instructions: \"x\",
                provider: OPENAI, model: \"gpt-4o-mini\" }) { agent { id } } }",
            "BAD_USER_INPUT",
        ),
        (
            token,
            "mutation { createTask(input: { title: \"   \" }) { task { id } } }",
            "BAD_USER_INPUT",
        ),
        (
            token,
            "mutation { deleteTask(input: { id: \"0190a0a0-0000-7000-8000-000000000000\" }) {
                deletedTaskId } }",
            "NOT_FOUND",
        ),
        (
            token,
            "mutation { setProviderCredential(input: { provider: OPENAI, apiKey: \"sk bad\" }) {
                credential { id } } }",
            "BAD_USER_INPUT",
        ),
        (
            token,
            "mutation { changePassword(input: { currentPassword: \"not the password\",
                newPassword: \"another password\" }) { revokedSessions } }",
            "BAD_USER_INPUT",
        ),
        (
            token,
            "mutation { createApiKey(input: { name: \"None\", scopes: [] }) { apiKey { id } } }",
            "BAD_USER_INPUT",
        ),
        (
            viewer.access_token.as_str(),
            "mutation { createTask(input: { title: \"Not allowed\" }) { task { id } } }",
            "FORBIDDEN",
        ),
    ];
    for (caller, mutation, code) in cases {
        let body = app.graphql(Some(caller), mutation, json!({})).await;
        assert_eq!(error_code(&body), code, "{mutation}: {body}");
        assert_eq!(
            row_count(&app).await,
            before,
            "{mutation} wrote an audit row"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn failed_audit_insert_undoes_change() {
    let app = TestApp::spawn().await.unwrap();
    let chat = app
        .start_chat("atomic@example.com", "Answer briefly.")
        .await;
    let token = chat.owner.access_token.as_str();
    // Make the audit insert of two actions fail, as any database error would.
    app.db
        .execute_unprepared(
            "ALTER TABLE audit_logs ADD CONSTRAINT reject_for_test
             CHECK (action NOT IN ('task.create', 'message.send'))",
        )
        .await
        .unwrap();

    let task = app
        .graphql(
            Some(token),
            "mutation { createTask(input: { title: \"Lost\" }) { task { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&task), "INTERNAL", "{task}");
    let sent = app
        .graphql(
            Some(token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                userMessage { id } } }",
            json!({ "input": { "conversationId": chat.conversation_id, "content": "Hi" } }),
        )
        .await;
    assert_eq!(error_code(&sent), "INTERNAL", "{sent}");

    for (table, expected) in [("tasks", 0), ("messages", 0)] {
        let row = app
            .db
            .query_one_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT count(*) AS rows FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        let rows: i64 = row.try_get("", "rows").unwrap();
        assert_eq!(
            rows, expected,
            "{table} kept a change without its audit row"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn summaries_contain_no_secrets() {
    let app = TestApp::spawn().await.unwrap();
    let chat = app
        .start_chat("secrets@example.com", "Answer briefly.")
        .await;
    let token = chat.owner.access_token.as_str();
    let provider_key = "sk-audit-provider-key-zqxw";
    let new_password = "new password 9b7d2e";
    let message = "confidential message 4c8a1f";

    app.data(
        Some(token),
        "mutation($input: SetProviderCredentialInput!) {
            setProviderCredential(input: $input) { credential { id } } }",
        json!({ "input": { "provider": "GROQ", "apiKey": provider_key } }),
    )
    .await;
    let created = app
        .data(
            Some(token),
            "mutation { createApiKey(input: { name: \"Secret\", scopes: [READ] }) { secret } }",
            json!({}),
        )
        .await;
    let api_key = created["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, invitation_token) = invite(&app, token, "invited@example.com", "MEMBER").await;
    accept(&app, &invitation_token, "invited@example.com").await;
    let reply = app
        .send_message(token, &chat.conversation_id, message)
        .await;
    app.wait_for_reply(token, &reply).await;
    app.data(
        Some(token),
        "mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
            revokedSessions } }",
        json!({ "input": { "currentPassword": PASSWORD, "newPassword": new_password } }),
    )
    .await;

    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT action, summary::text AS summary FROM audit_logs".to_owned(),
        ))
        .await
        .unwrap();
    let actions: HashSet<String> = rows
        .iter()
        .map(|row| row.try_get("", "action").unwrap())
        .collect();
    for action in [
        "provider_credential.set",
        "api_key.create",
        "member.invite",
        "invitation.accept",
        "message.send",
        "user.password_change",
    ] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
    let secrets = [
        provider_key,
        &provider_key[provider_key.len() - 4..],
        &api_key,
        &api_key[4..12],
        &invitation_token,
        PASSWORD,
        MEMBER_PASSWORD,
        new_password,
        message,
    ];
    for row in &rows {
        let summary: String = row.try_get("", "summary").unwrap();
        for secret in secrets {
            assert!(!summary.contains(secret), "{secret:?} in {summary}");
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn filters_select_rows() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("filters@example.com", "Filters").await;
    let token = owner.access_token.as_str();
    let member = app
        .add_member(token, "filter-member@example.com", "MEMBER")
        .await;
    let first_task = create_task(&app, token, "First").await;
    // Separates the rows before and after `middle` on the clock of this process, which is
    // the clock that stamped them.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second_task = create_task(&app, &member.access_token, "Second").await;
    app.create_agent(token, "Be brief.").await;

    let all = actions(&audit_logs(&app, token, Value::Null).await);
    assert_eq!(
        all,
        [
            "agent.create",
            "task.create",
            "task.create",
            "invitation.accept",
            "member.invite",
            "tenant.register",
        ]
    );

    let by_action = audit_logs(&app, token, json!({ "action": "task.create" })).await;
    assert_eq!(actions(&by_action), ["task.create", "task.create"]);
    let edges = &by_action["data"]["auditLogs"]["edges"];
    assert_eq!(edges[0]["node"]["targetId"], second_task.to_string());
    assert_eq!(edges[1]["node"]["targetId"], first_task.to_string());

    let by_actor = audit_logs(&app, token, json!({ "actorUserId": member.user_id })).await;
    assert_eq!(actions(&by_actor), ["task.create", "invitation.accept"]);

    let by_target = audit_logs(&app, token, json!({ "targetId": first_task })).await;
    assert_eq!(actions(&by_target), ["task.create"]);
    assert_eq!(
        by_target["data"]["auditLogs"]["edges"][0]["node"]["actorUserId"],
        owner.user_id
    );

    let after_middle = audit_logs(&app, token, json!({ "from": middle })).await;
    assert_eq!(actions(&after_middle), ["agent.create", "task.create"]);
    let before_middle = audit_logs(&app, token, json!({ "to": middle })).await;
    assert_eq!(
        actions(&before_middle),
        [
            "task.create",
            "invitation.accept",
            "member.invite",
            "tenant.register"
        ]
    );
    let combined = audit_logs(
        &app,
        token,
        json!({ "from": middle, "action": "task.create", "actorUserId": member.user_id }),
    )
    .await;
    assert_eq!(actions(&combined), ["task.create"]);

    // Pages follow the same order.
    let page = app
        .data(Some(token), AUDIT_LOGS, json!({ "first": 2 }))
        .await;
    let connection = &page["auditLogs"];
    assert_eq!(connection["pageInfo"]["hasNextPage"], true);
    let cursor = connection["edges"][1]["cursor"].as_str().unwrap();
    let next = app
        .graphql(
            Some(token),
            AUDIT_LOGS,
            json!({ "first": 2, "after": cursor }),
        )
        .await;
    assert_eq!(actions(&next), ["task.create", "invitation.accept"]);

    let unknown = audit_logs(&app, token, json!({ "action": "task.created" })).await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT", "{unknown}");
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "filter.action");
    let reversed = audit_logs(&app, token, json!({ "from": middle, "to": middle })).await;
    assert_eq!(error_code(&reversed), "BAD_USER_INPUT", "{reversed}");
    assert_eq!(reversed["errors"][0]["extensions"]["field"], "filter.to");
    app.shutdown().await;
}

#[tokio::test]
async fn only_admins_read_the_log() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("readers@example.com", "Readers").await;
    let token = owner.access_token.as_str();
    let admin = app
        .add_member(token, "reader-admin@example.com", "ADMIN")
        .await;
    let member = app
        .add_member(token, "reader-member@example.com", "MEMBER")
        .await;
    let viewer = app
        .add_member(token, "reader-viewer@example.com", "VIEWER")
        .await;

    for session in [&member, &viewer] {
        let body = audit_logs(&app, &session.access_token, Value::Null).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        assert_eq!(body["data"], Value::Null);
    }
    let anonymous = app.graphql(None, AUDIT_LOGS, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");

    for session in [&owner, &admin] {
        let listed = actions(&audit_logs(&app, &session.access_token, Value::Null).await);
        assert_eq!(listed.len(), 7, "{listed:?}");
        assert_eq!(listed.last().map(String::as_str), Some("tenant.register"));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn tenants_see_only_their_rows() {
    let app = TestApp::spawn().await.unwrap();
    let first = app.register("first-tenant@example.com", "First").await;
    let second = app.register("second-tenant@example.com", "Second").await;
    let first_task = create_task(&app, &first.access_token, "Mine").await;
    let second_task = create_task(&app, &second.access_token, "Theirs").await;

    let listed = audit_logs(&app, &first.access_token, Value::Null).await;
    let edges = listed["data"]["auditLogs"]["edges"].as_array().unwrap();
    let targets: Vec<&str> = edges
        .iter()
        .map(|edge| edge["node"]["targetId"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [first_task.to_string(), first.tenant_id.clone()]);
    for edge in edges {
        assert_eq!(edge["node"]["actorUserId"], first.user_id);
    }

    let foreign_target = audit_logs(
        &app,
        &first.access_token,
        json!({ "targetId": second_task }),
    )
    .await;
    assert_eq!(actions(&foreign_target), Vec::<String>::new());
    let foreign_actor = audit_logs(
        &app,
        &first.access_token,
        json!({ "actorUserId": second.user_id }),
    )
    .await;
    assert_eq!(actions(&foreign_actor), Vec::<String>::new());
    app.shutdown().await;
}

#[tokio::test]
async fn rows_outlive_their_actor() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("outlive@example.com", "Outlive").await;
    let member = app
        .add_member(&owner.access_token, "gone@example.com", "MEMBER")
        .await;
    let created = app
        .data(
            Some(&member.access_token),
            "mutation { createApiKey(input: { name: \"Gone\", scopes: [WRITE] }) {
                secret apiKey { id } } }",
            json!({}),
        )
        .await;
    let secret = created["createApiKey"]["secret"].as_str().unwrap();
    let task = create_task(&app, secret, "Left behind").await;

    // Deleting the user also deletes their API keys by cascade.
    app.db
        .execute_unprepared(&format!(
            "DELETE FROM users WHERE id = '{}'",
            member.user_id
        ))
        .await
        .unwrap();

    let member_id = id(&member.user_id);
    let rows = all_rows(&app).await;
    let by_member: Vec<&str> = rows
        .iter()
        .filter(|row| row.actor_user_id == Some(member_id))
        .map(|row| row.action.as_str())
        .collect();
    assert_eq!(
        by_member,
        ["invitation.accept", "api_key.create", "task.create"]
    );
    let task_row = rows.iter().find(|row| row.target_id == task).unwrap();
    assert!(task_row.actor_api_key_id.is_some());
    app.shutdown().await;
}
