//! Log output of the platform's processes: human-readable lines by default, one JSON
//! object per line with `LOG_FORMAT=json`, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt};

/// Filter used when `RUST_LOG` is unset. sqlx logs PostgreSQL notices at info level, such
/// as "already exists, skipping", which are harmless, so notices show from warn up.
pub const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the process's log subscriber, writing to standard output.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    if json_requested() {
        fmt().with_env_filter(filter).json().init();
    } else {
        fmt().with_env_filter(filter).init();
    }
}

/// Returns whether `LOG_FORMAT` asks for JSON lines.
pub fn json_requested() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"))
}
