//! GraphiQL playground served by the api's handlers: the page and its assets over HTTP,
//! and a real headless Chromium that runs a query and a subscription through the page.
//!
//! The browser tests need Node.js 20 or newer and Debian's `chromium` package at
//! `/usr/bin/chromium`. They run `npm ci` in `tests/browser/` when its `node_modules` is
//! missing.

// A failed setup step (binding a port, building a request) should stop the test with its
// error, which is what `unwrap` does.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use api::graphiql;
use async_graphql::{Context, Data, EmptyMutation, Object, Schema, Subscription};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use futures_util::Stream;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::OnceCell;
use tower::ServiceExt;

const CHROMIUM_PATH: &str = "/usr/bin/chromium";
const GREETING: &str = "hello from the GraphiQL test schema";
const TOKEN: &str = "browser-test-token";

/// `Authorization` header of the HTTP request or of the WebSocket's `connection_init`
/// payload, as the test schema received it.
struct Authorization(Option<String>);

struct Query;

#[Object]
impl Query {
    async fn greeting(&self) -> &'static str {
        GREETING
    }

    /// `Authorization` header that came with this request.
    async fn authorization(&self, ctx: &Context<'_>) -> Option<String> {
        ctx.data_opt::<Authorization>()
            .and_then(|header| header.0.clone())
    }
}

struct Subscription;

#[Subscription]
impl Subscription {
    /// `Authorization` value from the connection_init payload, sent once.
    async fn connection_authorization(&self, ctx: &Context<'_>) -> impl Stream<Item = String> {
        let value = ctx
            .data_opt::<Authorization>()
            .and_then(|header| header.0.clone())
            .unwrap_or_else(|| "no Authorization in connection_init".to_owned());
        futures_util::stream::once(async move { value })
    }
}

type TestSchema = Schema<Query, EmptyMutation, Subscription>;

async fn graphql_post(
    State(schema): State<TestSchema>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let request = request.into_inner().data(Authorization(authorization));
    schema.execute(request).await.into()
}

async fn graphql_ws(
    State(schema): State<TestSchema>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(connection_init_data)
                .serve()
        })
}

async fn connection_init_data(payload: serde_json::Value) -> async_graphql::Result<Data> {
    let authorization = payload
        .get("Authorization")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let mut data = Data::default();
    data.insert(Authorization(authorization));
    Ok(data)
}

/// Builds the routes the api mounts for GraphiQL, around a small schema of its own.
fn app() -> Router {
    let schema = Schema::build(Query, EmptyMutation, Subscription).finish();
    Router::new()
        .route("/graphql", get(graphiql::page).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphiql/assets/{file}", get(graphiql::asset))
        .with_state(schema)
}

struct Fetched {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn fetch(uri: &str) -> Fetched {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Fetched {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn header_value(fetched: &Fetched, name: header::HeaderName) -> &str {
    fetched
        .headers
        .get(&name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Values of every `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!(" {attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(start, _)| {
            let value_start = start + marker.len();
            let value_end = value_start + html[value_start..].find('"')?;
            Some(&html[value_start..value_end])
        })
        .collect()
}

fn expected_content_type(path: &str) -> &'static str {
    if path.ends_with(".js") {
        "text/javascript; charset=utf-8"
    } else if path.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        panic!("page references an asset of unexpected type: {path}")
    }
}

#[tokio::test]
async fn page_is_html_with_security_headers() {
    let page = fetch("/graphql").await;

    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        header_value(&page, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let policy = header_value(&page, header::CONTENT_SECURITY_POLICY);
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(
        header_value(&page, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    assert!(page.body.contains("<div id=\"graphiql\">"), "{}", page.body);
}

#[tokio::test]
async fn page_names_no_other_host() {
    let page = fetch("/graphql").await;

    assert!(!page.body.contains("http://"), "{}", page.body);
    assert!(!page.body.contains("https://"), "{}", page.body);
    for url in attribute_values(&page.body, "src")
        .into_iter()
        .chain(attribute_values(&page.body, "href"))
    {
        let same_origin = url.starts_with('/') && !url.starts_with("//");
        assert!(same_origin || url.starts_with("data:"), "page loads {url}");
    }
}

#[tokio::test]
async fn page_assets_are_served() {
    let page = fetch("/graphql").await;
    let scripts = attribute_values(&page.body, "src");
    let stylesheets: Vec<&str> = attribute_values(&page.body, "href")
        .into_iter()
        .filter(|url| !url.starts_with("data:"))
        .collect();
    assert_eq!(scripts.len(), 4, "{}", page.body);
    assert_eq!(stylesheets.len(), 2, "{}", page.body);

    for url in scripts.into_iter().chain(stylesheets) {
        let path = url.split('?').next().unwrap_or(url);
        assert!(path.starts_with(graphiql::ASSET_PATH_PREFIX), "{url}");

        let asset = fetch(url).await;
        assert_eq!(asset.status, StatusCode::OK, "{url}");
        assert_eq!(
            header_value(&asset, header::CONTENT_TYPE),
            expected_content_type(path),
            "{url}"
        );
        assert!(
            header_value(&asset, header::CACHE_CONTROL).contains("max-age=31536000"),
            "{url}"
        );
        assert!(!asset.body.is_empty(), "{url}");
    }
}

#[tokio::test]
async fn init_script_derives_urls_from_location() {
    let script = fetch("/graphiql/assets/graphiql-init.js").await;

    assert_eq!(script.status, StatusCode::OK);
    assert!(!script.body.contains("http://"), "init script names a host");
    assert!(
        !script.body.contains("https://"),
        "init script names a host"
    );
    assert!(!script.body.contains("ws://"), "init script names a host");
    assert!(script.body.contains("window.location"));
}

#[tokio::test]
async fn unknown_asset_is_not_found() {
    for uri in [
        "/graphiql/assets/missing.js",
        "/graphiql/assets/graphiql.min.js.map",
        "/graphiql/assets/..%2FCargo.toml",
    ] {
        let response = fetch(uri).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// Installs the pinned playwright-core once per test run when `node_modules` is missing.
async fn install_browser_driver() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let dir = browser_dir();
            if dir.join("node_modules/playwright-core").is_dir() {
                return;
            }
            let output = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
                .output()
                .await
                .unwrap_or_else(|error| panic!("npm could not be started: {error}"));
            assert!(
                output.status.success(),
                "npm ci failed in {}\n{}",
                dir.display(),
                describe(&output)
            );
        })
        .await;
}

fn describe(output: &Output) -> String {
    format!(
        "exit status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Serves the test app on an ephemeral loopback port and returns the page URL.
async fn serve_app() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await });
    format!("http://{address}/graphql")
}

/// Runs `graphiql-check.mjs` against a fresh server and returns its output.
async fn run_browser_check(query: &str, expected: &str) -> Output {
    assert!(
        Path::new(CHROMIUM_PATH).exists(),
        "Chromium not found at {CHROMIUM_PATH}: install Debian's `chromium` package \
         (apt-get install -y chromium)"
    );
    install_browser_driver().await;
    let url = serve_app().await;

    Command::new("node")
        .arg("graphiql-check.mjs")
        .args([
            "--url", &url, "--token", TOKEN, "--query", query, "--expect", expected,
        ])
        .current_dir(browser_dir())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|error| panic!("node could not be started: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_runs_query_with_bearer_token() {
    let expected = format!("\"authorization\": \"Bearer {TOKEN}\"");

    let output = run_browser_check("{ greeting authorization }", &expected).await;

    assert!(
        output.status.success(),
        "browser check failed\n{}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_runs_subscription_over_websocket() {
    let expected = format!("\"connectionAuthorization\": \"Bearer {TOKEN}\"");

    let output = run_browser_check("subscription { connectionAuthorization }", &expected).await;

    assert!(
        output.status.success(),
        "browser check failed\n{}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_check_fails_on_wrong_text() {
    let output = run_browser_check("{ greeting }", "text the schema never returns").await;

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("result pane did not show"), "{stderr}");
    assert!(stderr.contains(GREETING), "{stderr}");
}
