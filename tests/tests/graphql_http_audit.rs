//! The api passes every server audit of the `graphql-http` npm package, the compliance
//! suite of the GraphQL-over-HTTP specification, with no error, warning or notice.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::TestApp;
use tokio::process::Command;

fn audit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql-http")
}

/// Installs the pinned npm packages when `.ci/run` has not done it already.
async fn install_packages() {
    if audit_dir().join("node_modules/graphql-http").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(audit_dir())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "npm ci failed in tests/graphql-http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_http_audit_passes() {
    install_packages().await;
    let app = TestApp::spawn().await.unwrap();
    let url = format!("{}/graphql", app.base_url);

    let output = Command::new("node")
        .args(["audit.mjs", "--url", &url])
        .current_dir(audit_dir())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let results: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let failing: Vec<String> = results
        .iter()
        .filter(|result| result["status"] != "ok")
        .map(|result| {
            format!(
                "{} {} [{}]: {} (HTTP {})",
                result["id"].as_str().unwrap_or("?"),
                result["name"].as_str().unwrap_or("?"),
                result["status"].as_str().unwrap_or("?"),
                result["reason"].as_str().unwrap_or(""),
                result["httpStatus"]
            )
        })
        .collect();
    assert!(
        failing.is_empty(),
        "failing audits:\n{}\nstderr:\n{stderr}",
        failing.join("\n")
    );
    // graphql-http 1.23.1, as pinned in package.json, has 61 server audits.
    assert_eq!(results.len(), 61, "stderr:\n{stderr}");
    assert!(
        output.status.success(),
        "audit script failed\nstderr:\n{stderr}"
    );
    app.shutdown().await;
}
