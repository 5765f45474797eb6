//! Log output and traces of the platform's processes: human-readable lines by default, one
//! JSON object per line with `LOG_FORMAT=json`, filtered by `RUST_LOG`, and spans exported
//! over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Filter used when `RUST_LOG` is unset. sqlx logs PostgreSQL notices at info level, such
/// as "already exists, skipping", which are harmless, so notices show from warn up.
pub const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Guard of the trace exporter: dropping it sends the spans still queued, then stops it.
#[must_use = "dropping the guard stops the trace export"]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing the OpenTelemetry spans failed: {error}");
        }
    }
}

/// Installs the process's log subscriber, named `service` in exported traces, reading the
/// settings from the environment.
pub fn init(service: &'static str) -> Telemetry {
    init_with(service, |name| std::env::var(name).ok())
}

/// Installs the process's log subscriber with settings read through `lookup`.
pub fn init_with(service: &'static str, lookup: impl Fn(&str) -> Option<String>) -> Telemetry {
    let filter = lookup("RUST_LOG")
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let json = lookup("LOG_FORMAT").is_some_and(|format| format.eq_ignore_ascii_case("json"));
    let lines = if json {
        fmt::layer().json().boxed()
    } else {
        fmt::layer().boxed()
    };
    let endpoint = lookup("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|url| !url.trim().is_empty());
    let exporter = endpoint.as_deref().map(|url| tracer_provider(service, url));
    let (spans, tracer_provider, failure) = match exporter {
        Some(Ok(provider)) => (
            Some(tracing_opentelemetry::layer().with_tracer(provider.tracer(service))),
            Some(provider),
            None,
        ),
        Some(Err(error)) => (None, None, Some(error)),
        None => (None, None, None),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(spans)
        .try_init();
    if installed.is_err() {
        eprintln!("a log subscriber is already installed; keeping it");
    }
    if let Some(error) = failure {
        tracing::error!(%error, "OpenTelemetry export is off: OTEL_EXPORTER_OTLP_ENDPOINT is unusable");
    } else if let Some(url) = endpoint {
        tracing::info!(endpoint = %url, "exporting traces over OTLP/HTTP");
    }
    Telemetry { tracer_provider }
}

/// Builds a provider that batches spans and posts them to `{endpoint}/v1/traces`, the
/// path the OTLP specification gives for the base endpoint variable.
fn tracer_provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|error| error.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}
