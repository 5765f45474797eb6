//! Runs operations with the `graphql-ws` and `graphql-sse` npm client libraries, through
//! `tests/graphql-clients/client.mjs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::{process::Command, sync::OnceCell};

/// What a client printed: each result, and how the operation ended.
#[derive(Debug)]
pub struct ClientRun {
    pub results: Vec<Value>,
    /// The last line: `{"end": "complete"}`, or `{"end": "error", ...}` with the close code
    /// and reason, or the GraphQL errors, or a message.
    pub end: Value,
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql-clients")
}

/// Installs the pinned npm packages once per test binary, unless `.ci/run` already has.
async fn install_packages() -> anyhow::Result<()> {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_try_init(|| async {
            if clients_dir().join("node_modules/graphql-ws").is_dir() {
                return Ok(());
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(clients_dir())
                .status()
                .await?;
            if !status.success() {
                bail!("npm ci failed in tests/graphql-clients");
            }
            Ok(())
        })
        .await
        .copied()
}

/// Runs `query` over `transport` (`"ws"` or `"sse"`) at `url`, stopping after `take`
/// results when given.
pub async fn run(
    transport: &str,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
    take: Option<usize>,
) -> anyhow::Result<ClientRun> {
    install_packages().await?;
    let request = json!({ "transport": transport, "url": url, "token": token,
                          "query": query, "variables": variables, "take": take });
    let output = Command::new("node")
        .args(["client.mjs", &request.to_string()])
        .current_dir(clients_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), output)
        .await
        .context("the client did not finish within 60 s")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout
        .lines()
        .map(serde_json::from_str::<Value>)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "the client printed something other than JSON lines: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let Some(end) = lines.pop().filter(|line| line.get("end").is_some()) else {
        bail!(
            "the client ended without its last line; stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let results = lines
        .into_iter()
        .map(|line| line["result"].clone())
        .collect();
    Ok(ClientRun { results, end })
}
