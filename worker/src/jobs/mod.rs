//! Job handlers, one module per queue.

use std::{future::Future, time::Instant};

use service::{ServiceResult, error_tracking, metrics};
use tracing::{Instrument, Span, error};

pub mod count_usage;
pub mod deliver_webhook;
pub mod run_agent;

/// Runs a job's `work` in `span`, records its outcome and duration for `queue`, and logs
/// a failure with `failure` and reports it to the error tracker with `tags`.
async fn observed<T>(
    queue: &'static str,
    span: Span,
    failure: &'static str,
    tags: &[(&str, &str)],
    work: impl Future<Output = ServiceResult<T>>,
) -> ServiceResult<T> {
    let started = Instant::now();
    let result = work.instrument(span.clone()).await;
    let outcome = if result.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    metrics::job(queue, outcome, started.elapsed());
    if let Err(source) = &result {
        span.in_scope(|| error!(error = %source, "{failure}"));
        error_tracking::report(source, tags);
    }
    result
}
