//! Error tracking with Sentry, on when `SENTRY_DSN` is set: panics, errors returned as
//! INTERNAL and failed jobs, tagged with ids and never with request or message content.

use sentry::{ClientInitGuard, ClientOptions, types::Dsn};
use tracing::info;

use crate::{Settings, config::Environment, error::ServiceError};

/// Starts the Sentry client for `process` (`api` or `worker`), or returns `None` without
/// `SENTRY_DSN`. Keep the guard until the process exits: dropping it flushes the events
/// still queued. Fails on a DSN that does not parse.
pub fn init(settings: &Settings, process: &'static str) -> Result<Option<ClientInitGuard>, String> {
    let Some(dsn) = &settings.sentry_dsn else {
        return Ok(None);
    };
    let dsn: Dsn = dsn
        .expose()
        .parse()
        .map_err(|error| format!("SENTRY_DSN is not a Sentry DSN: {error}"))?;
    let environment = match settings.environment {
        Environment::Development => "development",
        Environment::Production => "production",
    };
    let mut options = ClientOptions::new()
        .release(concat!("task-assistant@", env!("CARGO_PKG_VERSION")))
        .environment(environment)
        .traces_sample_rate(settings.sentry_traces_sample_rate)
        // No IP addresses, cookies or request bodies: events carry the ids set below.
        .send_default_pii(false)
        // Request data (URL with its query, headers) may hold GraphQL variables or tokens.
        .before_send(|mut event| {
            event.request = None;
            Some(event)
        })
        .server_name(process);
    options.dsn = Some(dsn);
    let guard = sentry::init(options);
    info!(
        process,
        traces_sample_rate = settings.sentry_traces_sample_rate,
        "error tracking with Sentry is on"
    );
    Ok(Some(guard))
}

/// Returns whether a Sentry client runs in this process.
pub fn enabled() -> bool {
    sentry::Hub::current().client().is_some()
}

/// Reports an error with `tags` (ids, operation or job names; never secrets or content).
/// Does nothing when error tracking is off.
pub fn report(error: &ServiceError, tags: &[(&str, &str)]) {
    if !enabled() {
        return;
    }
    sentry::with_scope(
        |scope| {
            for (name, value) in tags {
                scope.set_tag(name, value);
            }
        },
        || sentry::capture_error(error),
    );
}
