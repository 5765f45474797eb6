//! Access tokens are accepted only when they are HS256, signed with `SECRET_KEY`, current,
//! issued by `JWT_ISSUER` for `JWT_AUDIENCE`, and their user still exists. Every rejection
//! is UNAUTHENTICATED with a message that names the problem.

use std::time::Duration;

use serde_json::json;
use service::{Settings, auth::tokens::TokenKeys};
use tests::{Session, TestApp, error_code, error_message};

const ME: &str = "{ me { user { email } } }";

/// `{"alg":"none","typ":"JWT"}` in URL-safe base64 without padding.
const UNSIGNED_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

/// Runs `me` with `token` and returns the error's code and message.
async fn me_error(app: &TestApp, token: &str) -> (String, String) {
    let body = app.graphql(Some(token), ME, json!({})).await;
    assert!(body["data"]["me"].is_null(), "{body:#}");
    (
        error_code(&body).to_owned(),
        error_message(&body).to_owned(),
    )
}

/// Signs a token for the session's user, tenant, session and role with keys made from
/// the default settings plus `env`.
fn token_with(app: &TestApp, session: &Session, env: &[(&str, &str)]) -> String {
    let claims = app.platform.tokens.verify(&session.access_token).unwrap();
    let settings = Settings::from_lookup(|name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    })
    .unwrap();
    let keys = TokenKeys::new(&settings).unwrap();
    let (token, _) = keys
        .issue(claims.sub, claims.tid, claims.sid, claims.role)
        .unwrap();
    token.expose().to_owned()
}

#[tokio::test]
async fn valid_token_accepted() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("valid@example.com", "Valid Co").await;
    let body = app.data(Some(&session.access_token), ME, json!({})).await;
    assert_eq!(body["me"]["user"]["email"], "valid@example.com");

    // A token made by the same keys and settings outside the api is accepted too, so the
    // rejections below come from the one setting each test changes.
    let copy = token_with(&app, &session, &[]);
    let body = app.data(Some(&copy), ME, json!({})).await;
    assert_eq!(body["me"]["user"]["email"], "valid@example.com");
    app.shutdown().await;
}

#[tokio::test]
async fn unsigned_token_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("none@example.com", "None Co").await;
    let payload = session.access_token.split('.').nth(1).unwrap();
    let unsigned = format!("{UNSIGNED_HEADER}.{payload}.");

    let (code, message) = me_error(&app, &unsigned).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "access token is invalid");
    app.shutdown().await;
}

#[tokio::test]
async fn token_signed_with_other_key_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("forged@example.com", "Forged Co").await;
    let forged = token_with(
        &app,
        &session,
        &[("SECRET_KEY", "a-different-secret-key-of-forty-characters")],
    );

    let (code, message) = me_error(&app, &forged).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "access token is invalid");
    app.shutdown().await;
}

#[tokio::test]
async fn expired_token_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("expired@example.com", "Expired Co").await;
    let short_lived = token_with(&app, &session, &[("ACCESS_TOKEN_TTL_SECONDS", "1")]);
    // Expiry has one-second resolution and no leeway, so two seconds always pass it.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (code, message) = me_error(&app, &short_lived).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "access token has expired");
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_issuer_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("issuer@example.com", "Issuer Co").await;
    let token = token_with(&app, &session, &[("JWT_ISSUER", "another-deployment")]);

    let (code, message) = me_error(&app, &token).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "access token was issued by another service");
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_audience_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("audience@example.com", "Audience Co").await;
    let token = token_with(&app, &session, &[("JWT_AUDIENCE", "another-api")]);

    let (code, message) = me_error(&app, &token).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "access token is meant for another audience");
    app.shutdown().await;
}

#[tokio::test]
async fn deleted_user_token_rejected() {
    use sea_orm::{ConnectionTrait, Statement};

    let app = TestApp::spawn().await.unwrap();
    let session = app.register("deleted@example.com", "Deleted Co").await;
    let deleted = app
        .db
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "DELETE FROM users WHERE id = $1::uuid",
            [session.user_id.clone().into()],
        ))
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 1);

    let (code, message) = me_error(&app, &session.access_token).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(message, "user no longer exists");
    app.shutdown().await;
}
