//! Node.js scripts of the tests, each in a directory of `tests/` with its pinned npm
//! packages, which `.ci/run` installs and each test installs when they are missing.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Output,
    sync::Mutex,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::process::Command;

/// Directories installed by this test binary.
static INSTALLED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `tests/<name>`, with its npm packages installed.
pub async fn package_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(name);
    if installed || dir.join("node_modules").is_dir() {
        return Ok(dir);
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .await?;
    if !status.success() {
        bail!("npm ci failed in tests/{name}");
    }
    INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.to_owned());
    Ok(dir)
}

/// Runs `node <script> <argument>` in `tests/<name>` and returns its output, failing
/// after a minute.
pub async fn run(name: &str, script: &str, argument: &str) -> anyhow::Result<Output> {
    let dir = package_dir(name).await?;
    let output = Command::new("node")
        .args([script, argument])
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .with_context(|| format!("node {script} did not finish within 60 s"))?
        .map_err(Into::into)
}
