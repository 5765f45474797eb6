//! Provider credentials through the GraphQL API: the tenant's key reaches the provider, the
//! key is stored encrypted and never returned, base URLs in blocked ranges are rejected, and
//! tokens interoperate with Python's `cryptography` Fernet.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
};

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};
use service::{Secret, credentials, crypto::SecretCipher};
use tests::{Chat, MockConfig, MockProvider, TestApp, TestOptions, error_code, error_message};
use uuid::Uuid;

/// URL-safe base64 of 32 bytes of 7, a Fernet key.
const TEST_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
/// URL-safe base64 of 32 bytes of 8, a second Fernet key.
const ROTATED_KEY: &str = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=";

const SET_CREDENTIAL: &str = "mutation($input: SetProviderCredentialInput!) {
    setProviderCredential(input: $input) {
        credential { id provider keyHint baseUrl createdAt updatedAt } } }";
const DELETE_CREDENTIAL: &str = "mutation($input: DeleteProviderCredentialInput!) {
    deleteProviderCredential(input: $input) { deletedProvider } }";
const LIST_CREDENTIALS: &str =
    "{ providerCredentials { id provider keyHint baseUrl createdAt updatedAt } }";

/// Starts an app whose tenants may point base URLs at 127.0.0.0/8, where the mocks listen.
async fn spawn_allowing_loopback() -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: vec![
            ("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.0/8".into()),
            ("ENCRYPTION_KEY".into(), TEST_KEY.into()),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

async fn set_credential(
    app: &TestApp,
    token: &str,
    api_key: &str,
    base_url: Option<&str>,
) -> Value {
    app.graphql(
        Some(token),
        SET_CREDENTIAL,
        json!({ "input": { "provider": "OPENAI", "apiKey": api_key, "baseUrl": base_url } }),
    )
    .await
}

/// Sends a message in the chat and returns the finished assistant message with its error.
async fn chat_once(app: &TestApp, chat: &Chat) -> Value {
    let token = chat.owner.access_token.as_str();
    let message_id = app
        .send_message(token, &chat.conversation_id, "Hello there")
        .await;
    app.wait_for_reply(token, &message_id).await;
    let data = app
        .data(
            Some(token),
            "query($id: ID!) { message(id: $id) { status content error } }",
            json!({ "id": message_id }),
        )
        .await;
    data["message"].clone()
}

async fn count_credentials(app: &TestApp) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT count(*) AS count FROM provider_credentials",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "count").unwrap()
}

async fn stored_token(app: &TestApp, tenant_id: &str) -> String {
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT encrypted_key FROM provider_credentials WHERE tenant_id = $1",
            [tenant_id.parse::<Uuid>().unwrap().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "encrypted_key").unwrap()
}

/// Adds an existing user to a tenant with a role, as an invitation will.
async fn add_member(app: &TestApp, tenant_id: &str, user_id: &str, role: &str) {
    app.db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "INSERT INTO memberships (id, tenant_id, user_id, role, created_at)
             VALUES ($1, $2, $3, $4, now())",
            [
                Uuid::now_v7().into(),
                tenant_id.parse::<Uuid>().unwrap().into(),
                user_id.parse::<Uuid>().unwrap().into(),
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
async fn tenant_key_reaches_its_base_url() {
    let app = spawn_allowing_loopback().await;
    let tenant_mock = MockProvider::start(MockConfig::default()).await.unwrap();
    let alice = app.start_chat("alice@example.com", "Be brief.").await;
    let bob = app.start_chat("bob@example.com", "Be brief.").await;

    let body = set_credential(
        &app,
        &alice.owner.access_token,
        "sk-alice-secret-0001",
        Some(&tenant_mock.base_url()),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body:#}");

    let alice_reply = chat_once(&app, &alice).await;
    assert_eq!(alice_reply["status"], "COMPLETED", "{alice_reply}");
    assert_eq!(tenant_mock.bearer_tokens(), ["sk-alice-secret-0001"]);
    assert!(app.mock.bearer_tokens().is_empty());

    // A tenant without a credential keeps using the platform's key and URL.
    let bob_reply = chat_once(&app, &bob).await;
    assert_eq!(bob_reply["status"], "COMPLETED", "{bob_reply}");
    assert_eq!(app.mock.bearer_tokens(), ["sk-test"]);
    assert_eq!(tenant_mock.bearer_tokens().len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn tenant_key_without_base_url_uses_platform_url() {
    let app = spawn_allowing_loopback().await;
    let chat = app.start_chat("carol@example.com", "Be brief.").await;

    let body = set_credential(&app, &chat.owner.access_token, "sk-carol-secret-0002", None).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["setProviderCredential"]["credential"]["baseUrl"],
        Value::Null
    );

    let reply = chat_once(&app, &chat).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    assert_eq!(app.mock.bearer_tokens(), ["sk-carol-secret-0002"]);
    app.shutdown().await;
}

#[tokio::test]
async fn list_shows_only_key_hint() {
    let app = spawn_allowing_loopback().await;
    let owner = app.register("dana@example.com", "Dana Org").await;
    let token = owner.access_token.as_str();
    let key = "sk-dana-very-secret-9876";

    let first = set_credential(&app, token, key, Some("https://proxy.example.com/v1/")).await;
    assert!(first.get("errors").is_none(), "{first:#}");
    let created = &first["data"]["setProviderCredential"]["credential"];
    assert_eq!(created["provider"], "OPENAI");
    assert_eq!(created["keyHint"], "9876");
    assert_eq!(created["baseUrl"], "https://proxy.example.com/v1");

    let listed = app.data(Some(token), LIST_CREDENTIALS, json!({})).await;
    let list = listed["providerCredentials"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0], *created);
    assert!(!listed.to_string().contains("very-secret"), "{listed}");

    // The stored value is a Fernet token, not the key.
    let stored = stored_token(&app, &owner.tenant_id).await;
    assert!(stored.starts_with("gAAAAA"), "{stored}");
    assert!(!stored.contains("very-secret"));

    // Setting again replaces the key and keeps the row.
    let second = set_credential(&app, token, "sk-dana-replaced-key-5555", None).await;
    assert!(second.get("errors").is_none(), "{second:#}");
    let replaced = &second["data"]["setProviderCredential"]["credential"];
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["keyHint"], "5555");
    assert_eq!(replaced["baseUrl"], Value::Null);
    assert_eq!(replaced["createdAt"], created["createdAt"]);
    assert_ne!(replaced["updatedAt"], created["updatedAt"]);
    assert_eq!(count_credentials(&app).await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn members_cannot_set_or_delete() {
    let app = spawn_allowing_loopback().await;
    let owner = app.register("erin@example.com", "Erin Org").await;
    let member = app.register("frank@example.com", "Frank Home").await;
    let viewer = app.register("gina@example.com", "Gina Home").await;
    let admin = app.register("hank@example.com", "Hank Home").await;
    add_member(&app, &owner.tenant_id, &member.user_id, "member").await;
    add_member(&app, &owner.tenant_id, &viewer.user_id, "viewer").await;
    add_member(&app, &owner.tenant_id, &admin.user_id, "admin").await;
    let member = login_to(&app, "frank@example.com", &owner.tenant_id).await;
    let viewer = login_to(&app, "gina@example.com", &owner.tenant_id).await;
    let admin = login_to(&app, "hank@example.com", &owner.tenant_id).await;

    let by_member = set_credential(&app, &member.access_token, "sk-member-key-0001", None).await;
    assert_eq!(error_code(&by_member), "FORBIDDEN", "{by_member}");
    assert_eq!(count_credentials(&app).await, 0);

    let by_admin = set_credential(&app, &admin.access_token, "sk-admin-key-00002", None).await;
    assert!(by_admin.get("errors").is_none(), "{by_admin:#}");

    let listed = app
        .data(Some(&member.access_token), LIST_CREDENTIALS, json!({}))
        .await;
    assert_eq!(listed["providerCredentials"][0]["keyHint"], "0002");
    let by_viewer = app
        .graphql(Some(&viewer.access_token), LIST_CREDENTIALS, json!({}))
        .await;
    assert_eq!(error_code(&by_viewer), "FORBIDDEN", "{by_viewer}");

    let delete_input = json!({ "input": { "provider": "OPENAI" } });
    let delete_by_member = app
        .graphql(
            Some(&member.access_token),
            DELETE_CREDENTIAL,
            delete_input.clone(),
        )
        .await;
    assert_eq!(error_code(&delete_by_member), "FORBIDDEN");
    assert_eq!(count_credentials(&app).await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn invalid_input_named_and_not_written() {
    let app = spawn_allowing_loopback().await;
    let owner = app.register("ivan@example.com", "Ivan Org").await;
    let token = owner.access_token.as_str();

    let long_key = "k".repeat(501);
    let cases = [
        ("", None, "apiKey"),
        ("   ", None, "apiKey"),
        (long_key.as_str(), None, "apiKey"),
        ("sk with spaces", None, "apiKey"),
        ("sk-valid-key-0001", Some("ftp://example.com/v1"), "baseUrl"),
        ("sk-valid-key-0001", Some("not a url"), "baseUrl"),
        (
            "sk-valid-key-0001",
            Some("https://u:p@example.com"),
            "baseUrl",
        ),
    ];
    for (api_key, base_url, field) in cases {
        let body = set_credential(&app, token, api_key, base_url).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{api_key:?} {base_url:?}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{api_key:?} {base_url:?}: {body}"
        );
        if !api_key.trim().is_empty() {
            assert!(!error_message(&body).contains(api_key), "{body}");
        }
    }

    let unknown_provider = app
        .graphql(
            Some(token),
            SET_CREDENTIAL,
            json!({ "input": { "provider": "NOPE", "apiKey": "sk-valid-key-0001" } }),
        )
        .await;
    assert_eq!(error_code(&unknown_provider), "BAD_USER_INPUT");
    assert!(
        error_message(&unknown_provider).contains("input.provider"),
        "{unknown_provider}"
    );

    assert_eq!(count_credentials(&app).await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn blocked_base_urls_rejected() {
    // No ALLOWED_PRIVATE_NETWORKS: every private address is blocked.
    let app = TestApp::spawn().await.unwrap();
    let chat = app.start_chat("judy@example.com", "Be brief.").await;
    let token = chat.owner.access_token.as_str();
    let port = app.mock.addr().port();

    let cases = [
        (
            "http://10.0.0.1/v1".to_owned(),
            "baseUrl: URL host 10.0.0.1 is in a blocked range: private network 10.0.0.0/8",
        ),
        (
            "http://169.254.169.254/latest".to_owned(),
            "baseUrl: URL host 169.254.169.254 is in a blocked range: cloud metadata",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/v1"),
            "baseUrl: URL host ::ffff:127.0.0.1 is in a blocked range: loopback 127.0.0.0/8",
        ),
        (
            format!("http://127.0.0.1:{port}/v1"),
            "baseUrl: URL host 127.0.0.1 is in a blocked range: loopback 127.0.0.0/8",
        ),
    ];
    for (url, expected) in &cases {
        let body = set_credential(&app, token, "sk-judy-secret-0001", Some(url)).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "baseUrl");
        assert!(error_message(&body).starts_with(expected), "{url}: {body}");
    }
    assert_eq!(count_credentials(&app).await, 0);

    // A host name passes when stored, and the resolver rejects its loopback address when
    // the reply is generated.
    let by_name = format!("http://localhost:{port}/v1");
    let body = set_credential(&app, token, "sk-judy-secret-0001", Some(&by_name)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let reply = chat_once(&app, &chat).await;
    assert_eq!(reply["status"], "FAILED", "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.contains("localhost resolves only to blocked addresses"),
        "{error}"
    );
    assert!(app.mock.requests().is_empty());

    // A stored literal is checked again before each request.
    app.db
        .execute_unprepared(
            "UPDATE provider_credentials SET base_url = 'http://169.254.169.254/v1'",
        )
        .await
        .unwrap();
    let rejected = app
        .graphql(
            Some(token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                assistantMessage { id } } }",
            json!({ "input": { "conversationId": chat.conversation_id, "content": "Hi" } }),
        )
        .await;
    assert_eq!(error_code(&rejected), "PROVIDER_ERROR", "{rejected}");
    assert!(
        error_message(&rejected).contains("169.254.169.254 is in a blocked range"),
        "{rejected}"
    );
    assert!(app.mock.requests().is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn delete_restores_platform_key() {
    let app = spawn_allowing_loopback().await;
    let chat = app.start_chat("kim@example.com", "Be brief.").await;
    let token = chat.owner.access_token.as_str();
    let body = set_credential(&app, token, "sk-kim-secret-000001", None).await;
    assert!(body.get("errors").is_none(), "{body:#}");

    let input = json!({ "input": { "provider": "OPENAI" } });
    let deleted = app
        .data(Some(token), DELETE_CREDENTIAL, input.clone())
        .await;
    assert_eq!(
        deleted["deleteProviderCredential"]["deletedProvider"],
        "OPENAI"
    );
    let listed = app.data(Some(token), LIST_CREDENTIALS, json!({})).await;
    assert_eq!(listed["providerCredentials"], json!([]));

    let reply = chat_once(&app, &chat).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    assert_eq!(app.mock.bearer_tokens(), ["sk-test"]);

    let again = app.graphql(Some(token), DELETE_CREDENTIAL, input).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
    app.shutdown().await;
}

/// Copies tenant `from`'s credential row, encrypted key included, to tenant `to`.
async fn copy_credential(app: &TestApp, from: &str, to: &str) {
    app.db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "INSERT INTO provider_credentials
                 (id, tenant_id, provider, encrypted_key, key_hint, base_url, created_at, updated_at)
             SELECT $1, $2, provider, encrypted_key, key_hint, base_url, now(), now()
             FROM provider_credentials WHERE tenant_id = $3",
            [
                Uuid::now_v7().into(),
                to.parse::<Uuid>().unwrap().into(),
                from.parse::<Uuid>().unwrap().into(),
            ],
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn copied_row_does_not_decrypt_for_other_tenant() {
    let app = spawn_allowing_loopback().await;
    let alice = app.start_chat("lena@example.com", "Be brief.").await;
    let mallory = app.start_chat("mallory@example.com", "Be brief.").await;
    let body = set_credential(
        &app,
        &alice.owner.access_token,
        "sk-lena-secret-00001",
        None,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body:#}");

    copy_credential(&app, &alice.owner.tenant_id, &mallory.owner.tenant_id).await;
    let rejected = app
        .graphql(
            Some(&mallory.owner.access_token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                assistantMessage { id } } }",
            json!({ "input": { "conversationId": mallory.conversation_id, "content": "Hi" } }),
        )
        .await;
    assert_eq!(error_code(&rejected), "INTERNAL", "{rejected}");
    assert!(app.mock.requests().is_empty());

    // The owner's copy still works.
    let reply = chat_once(&app, &alice).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    assert_eq!(app.mock.bearer_tokens(), ["sk-lena-secret-00001"]);
    app.shutdown().await;
}

#[tokio::test]
async fn reencrypt_moves_rows_to_first_key() {
    let app = spawn_allowing_loopback().await;
    let owner = app.register("nina@example.com", "Nina Org").await;
    let other = app.register("oscar@example.com", "Oscar Org").await;
    let body = set_credential(&app, &owner.access_token, "sk-nina-secret-00001", None).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    copy_credential(&app, &owner.tenant_id, &other.tenant_id).await;
    let before = stored_token(&app, &owner.tenant_id).await;

    let keys = [Secret::new(ROTATED_KEY), Secret::new(TEST_KEY)];
    let mut rotated = app.platform.clone();
    rotated.cipher = Arc::new(SecretCipher::new(&keys).unwrap());
    let report = credentials::reencrypt_all(&rotated).await.unwrap();
    assert_eq!(report.reencrypted, 1);
    assert_eq!(report.failed, 1);

    let after = stored_token(&app, &owner.tenant_id).await;
    assert_ne!(after, before);
    let tenant = owner.tenant_id.parse::<Uuid>().unwrap();
    let new_key_only = SecretCipher::new(&[Secret::new(ROTATED_KEY)]).unwrap();
    assert_eq!(
        new_key_only.decrypt(tenant, &after).unwrap(),
        Secret::new("sk-nina-secret-00001")
    );
    // The row that named another tenant was left as it was.
    assert_eq!(stored_token(&app, &other.tenant_id).await, before);
    app.shutdown().await;
}

fn interop_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fernet/interop.py")
}

/// Returns whether `python3` can import `cryptography`'s Fernet.
fn python_fernet_available() -> bool {
    Command::new("python3")
        .args(["-c", "import cryptography.fernet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs the interop script with `TEST_KEY`, feeding `input` on stdin.
fn python_fernet(operation: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .arg(interop_script())
        .arg(operation)
        .env("FERNET_KEY", TEST_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "interop.py {operation} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn python_fernet_interoperates() {
    if !python_fernet_available() {
        eprintln!(
            "SKIPPED python_fernet_interoperates: python3 cannot import cryptography.fernet; \
             install it with `python3 -m pip install cryptography`"
        );
        return;
    }
    let app = spawn_allowing_loopback().await;

    // A key set through the API decrypts in Python, with the tenant id in front.
    let owner = app.register("pia@example.com", "Pia Org").await;
    let body = set_credential(&app, &owner.access_token, "sk-pia-secret-000001", None).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let ours = stored_token(&app, &owner.tenant_id).await;
    assert_eq!(
        python_fernet("decrypt", &ours),
        format!("{}:sk-pia-secret-000001", owner.tenant_id)
    );

    // A token made in Python is used for the tenant's chat requests.
    let chat = app.start_chat("quinn@example.com", "Be brief.").await;
    let theirs = python_fernet(
        "encrypt",
        &format!("{}:sk-from-python-000001", chat.owner.tenant_id),
    );
    app.db
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "INSERT INTO provider_credentials
                 (id, tenant_id, provider, encrypted_key, key_hint, base_url, created_at, updated_at)
             VALUES ($1, $2, 'openai', $3, '0001', NULL, now(), now())",
            [
                Uuid::now_v7().into(),
                chat.owner.tenant_id.parse::<Uuid>().unwrap().into(),
                theirs.into(),
            ],
        ))
        .await
        .unwrap();
    let reply = chat_once(&app, &chat).await;
    assert_eq!(reply["status"], "COMPLETED", "{reply}");
    assert_eq!(app.mock.bearer_tokens(), ["sk-from-python-000001"]);
    app.shutdown().await;
}
