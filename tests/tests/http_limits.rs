//! Each operation and request limit accepts a request at its value and rejects one above it
//! with an error that names the limit. The defaults are tested: depth 15, aliases 30,
//! directives 50, complexity 1,000, 10 operations per batch, 2 MiB bodies, and a 30 s
//! timeout (set to 1 s here).

use std::time::Duration;

use serde_json::{Value, json};
use tests::{TestApp, TestOptions, error_code, error_message};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Posts a raw body as JSON and returns the status and the parsed response body.
async fn post_body(app: &TestApp, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post_query(app: &TestApp, query: &str) -> (u16, Value) {
    post_body(app, json!({ "query": query }).to_string()).await
}

/// Builds a query on introspection types nested `depth` fields deep: `__type`, `fields`, `type`,
/// then `ofType` as often as needed, ending in `name`.
fn query_with_depth(depth: usize) -> String {
    assert!(depth >= 4);
    let of_types = depth - 4;
    format!(
        "{{ __type(name: \"QueryRoot\") {{ fields {{ type {{ {} name {} }} }} }} }}",
        "ofType { ".repeat(of_types),
        "} ".repeat(of_types)
    )
}

fn assert_accepted(status: u16, body: &Value) {
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "{body:#}");
}

fn assert_rejected(status: u16, body: &Value, message: &str) {
    assert_eq!(
        status, 200,
        "application/json answers request errors with 200"
    );
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(error_message(body), message, "{body:#}");
    assert!(body.get("data").is_none(), "{body:#}");
}

#[tokio::test]
async fn depth_limit_at_and_above() {
    let app = TestApp::spawn().await.unwrap();

    let (status, body) = post_query(&app, &query_with_depth(15)).await;
    assert_accepted(status, &body);
    assert!(
        body["data"]["__type"]["fields"][0]["type"].is_object(),
        "{body:#}"
    );

    let (status, body) = post_query(&app, &query_with_depth(16)).await;
    assert_rejected(
        status,
        &body,
        "query depth is 16, more than the maximum of 15 nested fields",
    );
    app.shutdown().await;
}

#[tokio::test]
async fn alias_limit_at_and_above() {
    let app = TestApp::spawn().await.unwrap();
    let aliases = |count: usize| {
        let fields: Vec<String> = (0..count).map(|i| format!("a{i}: __typename")).collect();
        format!("query Aliases {{ {} }}", fields.join(" "))
    };

    let (status, body) = post_query(&app, &aliases(30)).await;
    assert_accepted(status, &body);
    assert_eq!(body["data"]["a29"], "QueryRoot");

    let (status, body) = post_query(&app, &aliases(31)).await;
    assert_rejected(
        status,
        &body,
        "operation Aliases has 31 aliases, more than the maximum of 30",
    );
    app.shutdown().await;
}

#[tokio::test]
async fn aliases_in_fragments_counted_per_spread() {
    let app = TestApp::spawn().await.unwrap();
    let fields: Vec<String> = (0..16).map(|i| format!("a{i}: __typename")).collect();
    let query = format!(
        "{{ ...F ... on Query {{ ...F }} }} fragment F on Query {{ {} }}",
        fields.join(" ")
    );
    let (status, body) = post_query(&app, &query).await;
    assert_rejected(
        status,
        &body,
        "operation has 32 aliases, more than the maximum of 30",
    );
    app.shutdown().await;
}

#[tokio::test]
async fn directive_limit_at_and_above() {
    let app = TestApp::spawn().await.unwrap();
    let directives = |count: usize| {
        let fields = vec!["__typename @include(if: true)"; count];
        format!("{{ {} }}", fields.join(" "))
    };

    let (status, body) = post_query(&app, &directives(50)).await;
    assert_accepted(status, &body);
    assert_eq!(body["data"]["__typename"], "QueryRoot");

    let (status, body) = post_query(&app, &directives(51)).await;
    assert_rejected(
        status,
        &body,
        "operation has 51 directives, more than the maximum of 50",
    );
    app.shutdown().await;
}

#[tokio::test]
async fn complexity_limit_at_and_above() {
    let app = TestApp::spawn().await.unwrap();
    // `__type` counts 1 and each `name` 1 more.
    let names = |count: usize| {
        format!(
            "{{ __type(name: \"QueryRoot\") {{ {} }} }}",
            vec!["name"; count].join(" ")
        )
    };

    let (status, body) = post_query(&app, &names(999)).await;
    assert_accepted(status, &body);
    assert_eq!(body["data"]["__type"]["name"], "QueryRoot");

    let (status, body) = post_query(&app, &names(1000)).await;
    assert_rejected(
        status,
        &body,
        "operation selects 1001 fields once fragments are expanded, more than the maximum \
         complexity of 1000",
    );
    app.shutdown().await;
}

#[tokio::test]
async fn fragment_explosion_rejected_quickly() {
    let app = TestApp::spawn().await.unwrap();
    // Each fragment spreads the next one twice: 2^40 fields once expanded.
    let mut query = String::from("{ ...F0 }");
    for level in 0..40 {
        query.push_str(&format!(
            " fragment F{level} on Query {{ ...F{next} ...F{next} }}",
            next = level + 1
        ));
    }
    query.push_str(" fragment F40 on Query { __typename }");

    let (status, body) = post_query(&app, &query).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(
        error_message(&body),
        "selection sets and fragments are nested more than 32 levels deep"
    );

    // Twenty levels stay within the nesting limit and still select 2^20 fields.
    let mut query = String::from("{ ...F0 }");
    for level in 0..20 {
        query.push_str(&format!(
            " fragment F{level} on Query {{ ...F{next} ...F{next} }}",
            next = level + 1
        ));
    }
    query.push_str(" fragment F20 on Query { __typename }");
    let (_, body) = post_query(&app, &query).await;
    assert_eq!(
        error_message(&body),
        "operation selects 1048576 fields once fragments are expanded, more than the maximum \
         complexity of 1000"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn batch_limit_at_and_above() {
    let app = TestApp::spawn().await.unwrap();
    let batch = |count: usize| {
        let items: Vec<Value> = (0..count)
            .map(|i| json!({ "query": format!("query Item{i} {{ __typename }}") }))
            .collect();
        Value::Array(items).to_string()
    };

    let (status, body) = post_body(&app, batch(10)).await;
    assert_eq!(status, 200);
    let results = body.as_array().expect("a batch gets an array");
    assert_eq!(results.len(), 10);
    for result in results {
        assert_eq!(result["data"]["__typename"], "QueryRoot", "{result:#}");
    }

    let (status, body) = post_body(&app, batch(11)).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        error_message(&body),
        "batch request has 11 operations, more than the maximum of 10"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn batch_items_keep_their_own_errors() {
    let app = TestApp::spawn().await.unwrap();
    let body = json!([
        { "query": "{ __typename }" },
        { "query": "{ __type(name: \"QueryRoot\") { nam } }" },
    ]);
    let (status, body) = post_body(&app, body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["data"]["__typename"], "QueryRoot");
    assert!(body[1].get("data").is_none(), "{body:#}");
    assert_eq!(body[1]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    app.shutdown().await;
}

/// Builds a JSON body of exactly `size` bytes that runs `{ __typename }`, padded with
/// spaces inside the query.
fn body_of_size(size: usize) -> String {
    let head = "{\"query\":\"{ __typename }";
    let tail = "\"}";
    format!("{head}{}{tail}", " ".repeat(size - head.len() - tail.len()))
}

#[tokio::test]
async fn body_limit_at_and_above() {
    let app = TestApp::spawn().await.unwrap();
    let max = 2 * 1024 * 1024;

    let (status, body) = post_body(&app, body_of_size(max)).await;
    assert_accepted(status, &body);
    assert_eq!(body["data"]["__typename"], "QueryRoot");

    let (status, body) = post_body(&app, body_of_size(max + 1)).await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(
        error_message(&body),
        "request body is larger than the maximum of 2097152 bytes"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn body_limit_follows_setting() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("MAX_REQUEST_BYTES".into(), "64".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let (status, body) = post_body(&app, body_of_size(64)).await;
    assert_accepted(status, &body);
    let (status, body) = post_body(&app, body_of_size(65)).await;
    assert_eq!(status, 413);
    assert_eq!(
        error_message(&body),
        "request body is larger than the maximum of 64 bytes"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn request_timeout_answers_504() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("REQUEST_TIMEOUT_SECONDS".into(), "1".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();

    let (status, body) = post_query(&app, "{ __typename }").await;
    assert_accepted(status, &body);

    // A client that announces a body and stops sending it halfway keeps the request open
    // until the timeout ends it.
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n{{\"query\":"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .expect("the server answers once the timeout ends the request")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 504 "), "{head}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error_code(&body), "TIMEOUT");
    assert_eq!(
        error_message(&body),
        "request took longer than the maximum of 1 s and was stopped"
    );
    app.shutdown().await;
}
