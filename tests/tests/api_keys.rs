//! API keys: shown once and stored as a hash, limited by scope and by the creator's role,
//! accepted as a bearer token or `X-API-Key`, and dead at once when revoked or expired.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{TestApp, error_code, error_message};

const CREATE: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
    secret apiKey { id name prefix scopes expiresAt lastUsedAt } } }";
const REVOKE: &str = "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) {
    apiKey { revokedAt } } }";
const CREATE_TASK: &str =
    "mutation { createTask(input: { title: \"From a key\" }) { task { id } } }";
const ME: &str = "{ me { role user { email } } }";

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
}

async fn create_key(app: &TestApp, token: &str, scopes: Value, expires_at: Value) -> Value {
    app.graphql(
        Some(token),
        CREATE,
        json!({ "input": { "name": "CI", "scopes": scopes, "expiresAt": expires_at } }),
    )
    .await
}

/// Posts `query` with the key in the `X-API-Key` header.
async fn with_header(app: &TestApp, key: &str, query: &str) -> Value {
    app.http()
        .post(format!("{}/graphql", app.base_url))
        .header("x-api-key", key)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn key_authenticates_with_its_scopes() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("keys@example.com", "Keys").await;

    let created = create_key(&app, &owner.access_token, json!(["READ"]), Value::Null).await;
    let payload = &created["data"]["createApiKey"];
    let secret = payload["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tak_"), "{secret}");
    assert_eq!(secret.len(), 47);
    assert_eq!(payload["apiKey"]["prefix"], &secret[..12]);
    assert_eq!(payload["apiKey"]["scopes"], json!(["READ"]));

    let stored = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT key_hash FROM api_keys".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let hash: String = stored.try_get("", "key_hash").unwrap();
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains(&secret[4..]));

    // A read key acts as a viewer, by either header.
    let me = app.data(Some(&secret), ME, json!({})).await;
    assert_eq!(me["me"]["role"], "VIEWER");
    assert_eq!(me["me"]["user"]["email"], "keys@example.com");
    let by_header = with_header(&app, &secret, ME).await;
    assert_eq!(by_header["data"]["me"]["role"], "VIEWER", "{by_header}");
    let write = app.graphql(Some(&secret), CREATE_TASK, json!({})).await;
    assert_eq!(error_code(&write), "FORBIDDEN", "{write}");

    let writer = create_key(
        &app,
        &owner.access_token,
        json!(["READ", "WRITE"]),
        Value::Null,
    )
    .await;
    let writer_secret = writer["data"]["createApiKey"]["secret"].as_str().unwrap();
    let written = app
        .graphql(Some(writer_secret), CREATE_TASK, json!({}))
        .await;
    assert_eq!(written["errors"], Value::Null, "{written}");

    // Keys cannot mint keys or change the account.
    let minted = create_key(&app, writer_secret, json!(["READ"]), Value::Null).await;
    assert_eq!(error_code(&minted), "FORBIDDEN", "{minted}");
    let password = app
        .graphql(
            Some(writer_secret),
            "mutation { changePassword(input: { currentPassword: \"correct horse battery\",
                newPassword: \"another-password\" }) { revokedSessions } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&password), "FORBIDDEN", "{password}");

    let listed = app
        .data(
            Some(&owner.access_token),
            "{ apiKeys { id prefix } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["apiKeys"].as_array().unwrap().len(), 2);

    let unknown = app
        .graphql(
            Some("tak_not-a-real-key-000000000000000000000000000"),
            ME,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED", "{unknown}");
    app.shutdown().await;
}

#[tokio::test]
async fn revoked_or_expired_key_stops_at_once() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("revoke-key@example.com", "Revoke").await;
    let created = create_key(&app, &owner.access_token, json!(["WRITE"]), Value::Null).await;
    let secret = created["data"]["createApiKey"]["secret"].as_str().unwrap();
    let id = created["data"]["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap();

    // The first request caches the key; revoking must still end it at once.
    let before = app.data(Some(secret), ME, json!({})).await;
    assert_eq!(before["me"]["role"], "MEMBER");
    let revoked = app
        .data(
            Some(&owner.access_token),
            REVOKE,
            json!({ "input": { "id": id } }),
        )
        .await;
    assert!(revoked["revokeApiKey"]["apiKey"]["revokedAt"].is_string());
    let after = app.graphql(Some(secret), ME, json!({})).await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");

    let expiring = create_key(
        &app,
        &owner.access_token,
        json!(["READ"]),
        json!("2099-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(field(&expiring), "expiresAt", "{expiring}");
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let expiring = create_key(&app, &owner.access_token, json!(["READ"]), json!(soon)).await;
    let expiring_secret = expiring["data"]["createApiKey"]["secret"].as_str().unwrap();
    let fresh = app.graphql(Some(expiring_secret), ME, json!({})).await;
    assert_eq!(fresh["errors"], Value::Null, "{fresh}");
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let expired = app.graphql(Some(expiring_secret), ME, json!({})).await;
    assert_eq!(error_code(&expired), "UNAUTHENTICATED", "{expired}");
    assert!(error_message(&expired).contains("expired"), "{expired}");

    let past = create_key(
        &app,
        &owner.access_token,
        json!(["READ"]),
        json!("2020-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(field(&past), "expiresAt", "{past}");
    let none = create_key(&app, &owner.access_token, json!([]), Value::Null).await;
    assert_eq!(field(&none), "scopes", "{none}");
    app.shutdown().await;
}

#[tokio::test]
async fn key_never_exceeds_creator_role() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("creator-owner@example.com", "Creator").await;
    let admin = app
        .add_member(&owner.access_token, "creator-admin@example.com", "ADMIN")
        .await;
    let member = app
        .add_member(&owner.access_token, "creator-member@example.com", "MEMBER")
        .await;

    let too_much = create_key(&app, &member.access_token, json!(["ADMIN"]), Value::Null).await;
    assert_eq!(field(&too_much), "scopes", "{too_much}");

    let created = create_key(&app, &admin.access_token, json!(["ADMIN"]), Value::Null).await;
    let secret = created["data"]["createApiKey"]["secret"].as_str().unwrap();
    let me = app.data(Some(secret), ME, json!({})).await;
    assert_eq!(me["me"]["role"], "ADMIN");

    // The creator is demoted: the key, already cached, drops to the new role at once.
    app.data(
        Some(&owner.access_token),
        "mutation($input: ChangeMemberRoleInput!) { changeMemberRole(input: $input) {
            member { role } } }",
        json!({ "input": { "userId": admin.user_id, "role": "VIEWER" } }),
    )
    .await;
    let demoted = app.data(Some(secret), ME, json!({})).await;
    assert_eq!(demoted["me"]["role"], "VIEWER");

    // A member lists only their own keys; the admin's key is not theirs to revoke.
    let listed = app
        .data(Some(&member.access_token), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(listed["apiKeys"], json!([]));
    let key_id = created["data"]["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap();
    let foreign = app
        .graphql(
            Some(&member.access_token),
            REVOKE,
            json!({ "input": { "id": key_id } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND", "{foreign}");

    // The creator leaves: the key stops working.
    app.data(
        Some(&owner.access_token),
        "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { member { role } } }",
        json!({ "input": { "userId": admin.user_id } }),
    )
    .await;
    let gone = app.graphql(Some(secret), ME, json!({})).await;
    assert_eq!(error_code(&gone), "UNAUTHENTICATED", "{gone}");
    app.shutdown().await;
}
