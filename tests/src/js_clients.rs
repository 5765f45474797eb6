//! Runs operations with the `graphql-ws` and `graphql-sse` npm client libraries, through
//! `tests/graphql-clients/client.mjs`.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What a client printed: each result, and how the operation ended.
#[derive(Debug)]
pub struct ClientRun {
    pub results: Vec<Value>,
    /// The last line: `{"end": "complete"}`, or `{"end": "error", ...}` with the close code
    /// and reason, or the GraphQL errors, or a message.
    pub end: Value,
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
    let request = json!({ "transport": transport, "url": url, "token": token,
                          "query": query, "variables": variables, "take": take });
    let output = crate::node::run("graphql-clients", "client.mjs", &request.to_string()).await?;
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
