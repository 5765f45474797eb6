//! The HTTP transport's protections: cross-site request forgery prevention (queries only
//! over GET, no operation from a form content type), content negotiation, CORS preflights,
//! HSTS, and the introspection and field suggestion switches.

use reqwest::{Method, StatusCode, Url, header};
use serde_json::{Value, json};
use tests::{TestApp, TestOptions, error_code, error_message};

const REGISTER: &str = r#"mutation { register(input: { email: "csrf@example.com",
    password: "correct horse battery", fullName: "Forged", tenantName: "Forged Org" }) {
    accessToken } }"#;

fn graphql_url(app: &TestApp) -> String {
    format!("{}/graphql", app.base_url)
}

/// Builds the GraphQL URL with `params` in its query string.
fn get_url(app: &TestApp, params: &[(&str, &str)]) -> Url {
    Url::parse_with_params(&graphql_url(app), params).unwrap()
}

/// Checks in the database whether `csrf@example.com` was registered.
async fn forged_user_exists(app: &TestApp) -> bool {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT 1 AS found FROM users WHERE email = 'csrf@example.com'",
        ))
        .await
        .unwrap();
    row.is_some()
}

#[tokio::test]
async fn form_content_types_run_nothing() {
    let app = TestApp::spawn().await.unwrap();
    let body = json!({ "query": REGISTER }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = app.http().post(graphql_url(&app)).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{content_type:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        assert_eq!(
            error_message(&body),
            "request rejected as possible cross-site request forgery: send the operation with \
             Content-Type: application/json"
        );
    }
    assert!(!forged_user_exists(&app).await);
    app.shutdown().await;
}

#[tokio::test]
async fn preflight_header_still_needs_json() {
    let app = TestApp::spawn().await.unwrap();
    for header_name in ["apollo-require-preflight", "x-apollo-operation-name"] {
        let response = app
            .http()
            .post(graphql_url(&app))
            .header(header::CONTENT_TYPE, "text/plain")
            .header(header_name, "register")
            .body(json!({ "query": REGISTER }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            error_message(&body),
            "Content-Type \"text/plain\" is not supported: send application/json in UTF-8"
        );
    }
    assert!(!forged_user_exists(&app).await);
    app.shutdown().await;
}

#[tokio::test]
async fn get_mutation_rejected_with_405() {
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .get(get_url(&app, &[("query", REGISTER)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        error_message(&body),
        "mutations are not allowed over GET: send them with POST"
    );

    // Naming the mutation among several operations changes nothing.
    let document = format!(
        "query Q {{ __typename }} {}",
        REGISTER.replacen("mutation", "mutation M", 1)
    );
    let response = app
        .http()
        .get(get_url(
            &app,
            &[("query", &document), ("operationName", "M")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(!forged_user_exists(&app).await);
    app.shutdown().await;
}

#[tokio::test]
async fn get_runs_query_with_variables() {
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .get(get_url(
            &app,
            &[
                (
                    "query",
                    "query Named($name: String!) { __type(name: $name) { name } }",
                ),
                ("variables", r#"{"name":"QueryRoot"}"#),
                ("operationName", "Named"),
            ],
        ))
        .header(header::ACCEPT, "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/graphql-response+json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["__type"]["name"], "QueryRoot");
    app.shutdown().await;
}

#[tokio::test]
async fn browser_get_serves_graphiql() {
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .get(graphql_url(&app))
        .header(
            header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.contains("Task Assistant GraphiQL"));
    app.shutdown().await;
}

#[tokio::test]
async fn status_follows_negotiated_format() {
    let app = TestApp::spawn().await.unwrap();
    let post = |accept: &'static str, query: &'static str| {
        app.http()
            .post(graphql_url(&app))
            .header(header::ACCEPT, accept)
            .json(&json!({ "query": query }))
            .send()
    };

    let unknown_field = "{ __type(name: \"QueryRoot\") { nam } }";
    let response = post("application/graphql-response+json", unknown_field)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/graphql-response+json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body:#}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let response = post("application/json", unknown_field).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json; charset=utf-8"
    );

    // A resolver error is a field error: the operation ran, so 200 in either format.
    let owner = app
        .register("negotiation@example.com", "Negotiation Co")
        .await;
    let response = app
        .http()
        .post(graphql_url(&app))
        .header(header::ACCEPT, "application/graphql-response+json")
        .bearer_auth(&owner.access_token)
        .json(&json!({ "query": "{ agent(id: \"00000000-0000-7000-8000-000000000000\") { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "NOT_FOUND", "{body:#}");
    assert!(body["data"].is_null(), "{body:#}");

    let response = post("text/html", "{ __typename }").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    app.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_allows_api_headers() {
    let origin = "https://app.example.com";
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("CORS_ALLOWED_ORIGINS".into(), origin.into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let requested = "content-type, authorization, x-api-key, apollo-require-preflight, \
                     x-apollo-operation-name, x-request-id";
    let preflight = |origin: &'static str| {
        app.http()
            .request(Method::OPTIONS, graphql_url(&app))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, requested)
            .send()
    };

    let response = preflight(origin).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
    let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in requested.split(", ") {
        assert!(allowed.contains(name), "{name} missing from {allowed}");
    }
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");

    let response = preflight("https://evil.example.net").await.unwrap();
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let response = app
        .http()
        .post(graphql_url(&app))
        .header(header::ORIGIN, origin)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        origin
    );
    app.shutdown().await;
}

#[tokio::test]
async fn hsts_sent_when_configured() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("HSTS_MAX_AGE_SECONDS".into(), "31536000".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    for path in ["/health", "/graphql?query=%7B__typename%7D"] {
        let response = app
            .http()
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000",
            "{path}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn hsts_off_by_default() {
    let app = TestApp::spawn().await.unwrap();
    let response = app
        .http()
        .get(format!("{}/health", app.base_url))
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none()
    );
    app.shutdown().await;
}

const INTROSPECTION: &str = "{ __schema { queryType { name } } }";
const MISSPELLED: &str = "{ __type(name: \"QueryRoot\") { nam } }";

#[tokio::test]
async fn introspection_and_suggestions_on_by_default() {
    let app = TestApp::spawn().await.unwrap();
    let body = app.graphql(None, INTROSPECTION, json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "QueryRoot");

    let body = app.graphql(None, MISSPELLED, json!({})).await;
    let message = error_message(&body);
    assert!(message.contains("Did you mean \"name\""), "{message}");
    app.shutdown().await;
}

#[tokio::test]
async fn introspection_switched_off() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("GRAPHQL_INTROSPECTION".into(), "false".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    // async-graphql 7 resolves introspection fields to null when introspection is off.
    let body = app.data(None, INTROSPECTION, json!({})).await;
    assert_eq!(body, json!({ "__schema": null }));
    let body = app
        .data(None, "{ __type(name: \"QueryRoot\") { name } }", json!({}))
        .await;
    assert_eq!(body, json!({ "__type": null }));

    // `__typename` is part of every response shape, not introspection of the schema.
    let body = app.data(None, "{ __typename }", json!({})).await;
    assert_eq!(body["__typename"], "QueryRoot");
    app.shutdown().await;
}

#[tokio::test]
async fn field_suggestions_switched_off() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("GRAPHQL_FIELD_SUGGESTIONS".into(), "false".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let body = app.graphql(None, MISSPELLED, json!({})).await;
    let message = error_message(&body);
    assert!(message.contains("\"nam\""), "{message}");
    assert!(!message.contains("Did you mean"), "{message}");
    app.shutdown().await;
}
