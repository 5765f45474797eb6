//! GraphiQL served by the real api works offline in headless Chromium: a signed-in query
//! over HTTP and a reply streamed over the WebSocket.

use std::path::{Path, PathBuf};

use serde_json::json;
use tests::TestApp;
use tokio::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

async fn run_check(url: &str, token: &str, query: &str, expected: &str) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "Chromium not found at {CHROMIUM}: install Debian's `chromium` package"
    );
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(browser_dir())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "npm ci failed in tests/browser");
    }
    let output = Command::new("node")
        .arg("graphiql-check.mjs")
        .args([
            "--url", url, "--token", token, "--query", query, "--expect", expected,
        ])
        .current_dir(browser_dir())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "GraphiQL check failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_queries_and_streams_against_api() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("browser@example.com", "Browser Co").await;
    let url = format!("{}/graphql", app.base_url);

    run_check(
        &url,
        &owner.access_token,
        "{ me { user { email } } }",
        "browser@example.com",
    )
    .await;

    let agent_id = app.create_agent(&owner.access_token, "Be kind.").await;
    let conversation_id = app
        .create_conversation(&owner.access_token, &agent_id)
        .await;
    let message_id = app
        .send_message(&owner.access_token, &conversation_id, "Hello")
        .await;
    let reply = app.wait_for_reply(&owner.access_token, &message_id).await;
    let subscription = format!(
        "subscription {{ messageStream(messageId: \"{message_id}\") {{ kind outcome {{ content }} }} }}"
    );
    let content = reply["content"].as_str().unwrap();
    run_check(
        &url,
        &owner.access_token,
        &subscription,
        &json!(content).to_string(),
    )
    .await;
    app.shutdown().await;
}
