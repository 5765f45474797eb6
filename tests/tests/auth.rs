//! Registration, login, token expiry, refresh rotation and logout through the API.

use std::time::Duration;

use serde_json::json;
use tests::{Session, TestApp, TestOptions, error_code, error_message};

const ME: &str = "{ me { user { email fullName } tenant { name } role } }";
const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) {
    accessToken refreshToken user { id } tenant { id } role } }";
const REFRESH: &str = "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) {
    accessToken refreshToken user { id } tenant { id } } }";

#[tokio::test]
async fn register_login_and_me() {
    let app = TestApp::spawn().await.unwrap();
    let registered = app.register("Grace@Example.com", "Navy Labs").await;

    let me = app
        .data(Some(&registered.access_token), ME, json!({}))
        .await;
    assert_eq!(me["me"]["user"]["email"], "grace@example.com");
    assert_eq!(me["me"]["tenant"]["name"], "Navy Labs");
    assert_eq!(me["me"]["role"], "OWNER");

    let login = app
        .data(
            None,
            LOGIN,
            json!({ "input": { "email": "grace@example.com", "password": "correct horse battery" } }),
        )
        .await;
    assert_eq!(login["login"]["user"]["id"], registered.user_id.as_str());
    assert_eq!(
        login["login"]["tenant"]["id"],
        registered.tenant_id.as_str()
    );
    assert_eq!(login["login"]["role"], "OWNER");
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_alike() {
    let app = TestApp::spawn().await.unwrap();
    app.register("alan@example.com", "Bletchley").await;

    let wrong_password = app
        .graphql(
            None,
            LOGIN,
            json!({ "input": { "email": "alan@example.com", "password": "not the password" } }),
        )
        .await;
    let unknown_email = app
        .graphql(
            None,
            LOGIN,
            json!({ "input": { "email": "nobody@example.com", "password": "not the password" } }),
        )
        .await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(error_code(&unknown_email), "UNAUTHENTICATED");
    assert_eq!(
        error_message(&wrong_password),
        error_message(&unknown_email)
    );
    assert_eq!(
        error_message(&wrong_password),
        "email or password is incorrect"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn expired_access_token_rejected() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("ACCESS_TOKEN_TTL_SECONDS".into(), "1".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let session = app.register("brief@example.com", "Brief Inc").await;
    // Expiry has one-second resolution and no leeway, so two seconds always pass it.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let body = app
        .graphql(Some(&session.access_token), ME, json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(error_message(&body), "access token has expired");
    app.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_session() {
    let app = TestApp::spawn().await.unwrap();
    let first = app.register("rotate@example.com", "Rotate Co").await;

    let refreshed = app
        .data(
            None,
            REFRESH,
            json!({ "input": { "refreshToken": first.refresh_token } }),
        )
        .await;
    let second = Session::from_payload(&refreshed["refreshToken"]);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.user_id, first.user_id);
    let me = app.data(Some(&second.access_token), ME, json!({})).await;
    assert_eq!(me["me"]["user"]["email"], "rotate@example.com");

    // The old refresh token was used once already: replaying it revokes the session.
    let replay = app
        .graphql(
            None,
            REFRESH,
            json!({ "input": { "refreshToken": first.refresh_token } }),
        )
        .await;
    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    let after_replay = app
        .graphql(
            None,
            REFRESH,
            json!({ "input": { "refreshToken": second.refresh_token } }),
        )
        .await;
    assert_eq!(error_code(&after_replay), "UNAUTHENTICATED");
    let access_after_replay = app.graphql(Some(&second.access_token), ME, json!({})).await;
    assert_eq!(error_code(&access_after_replay), "UNAUTHENTICATED");
    assert_eq!(
        error_message(&access_after_replay),
        "session has been revoked"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn logout_ends_access_and_refresh() {
    let app = TestApp::spawn().await.unwrap();
    let session = app.register("bye@example.com", "Bye Ltd").await;

    let logout = app
        .data(
            Some(&session.access_token),
            "mutation { logout { success } }",
            json!({}),
        )
        .await;
    assert_eq!(logout["logout"]["success"], true);

    let me = app
        .graphql(Some(&session.access_token), ME, json!({}))
        .await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
    let refresh = app
        .graphql(
            None,
            REFRESH,
            json!({ "input": { "refreshToken": session.refresh_token } }),
        )
        .await;
    assert_eq!(error_code(&refresh), "UNAUTHENTICATED");
    app.shutdown().await;
}

#[tokio::test]
async fn requests_without_token_unauthenticated() {
    let app = TestApp::spawn().await.unwrap();
    let body = app
        .graphql(None, "{ agents { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let forged = app.graphql(Some("not.a.jwt"), ME, json!({})).await;
    assert_eq!(error_code(&forged), "UNAUTHENTICATED");
    assert_eq!(error_message(&forged), "access token is invalid");
    app.shutdown().await;
}
