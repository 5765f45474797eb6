//! Settings read from the environment at start-up, with defaults for a developer machine.

use std::{env, fmt, str::FromStr, time::Duration};

use ipnet::IpNet;
use providers::{Anthropic, Gemini, Groq, Ollama, OpenAi, ProviderKind};

use crate::{crypto, secret::Secret};

/// Development secret used when `SECRET_KEY` is unset outside production.
const DEVELOPMENT_SECRET_KEY: &str = "development-only-secret-key-change-me-0123456789";
/// Development Fernet key used when `ENCRYPTION_KEY` is unset outside production: the
/// URL-safe base64 of the 32 bytes `development-only-encryption-key!`.
const DEVELOPMENT_ENCRYPTION_KEY: &str = "ZGV2ZWxvcG1lbnQtb25seS1lbmNyeXB0aW9uLWtleSE=";

/// The local database as the role the application runs as, which owns nothing and to
/// which row-level security applies (created by the migrations).
const DEFAULT_DATABASE_URL: &str = "postgres://task_assistant_app@127.0.0.1:5432/task_assistant";
/// The local database as the superuser, which owns the schema and applies migrations.
const DEFAULT_MIGRATION_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/task_assistant";

/// A setting that is missing or cannot be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required in production")]
    Missing { name: &'static str },
    #[error("{name} is invalid: {reason} (got {value:?})")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Whether the process runs with development conveniences or production strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Every setting the api and the worker need.
#[derive(Clone)]
pub struct Settings {
    pub environment: Environment,
    pub api_addr: String,
    pub database_url: String,
    /// URL of the schema owner, used to apply migrations.
    pub migration_database_url: String,
    /// Apply pending migrations when the api starts (default: on in development).
    pub auto_migrate: bool,
    pub redis_url: String,
    /// Prefix of every Redis key and queue name, so that several deployments share a server.
    pub redis_prefix: String,
    pub secret_key: Secret,
    /// Fernet keys of the secrets stored in the database. The first encrypts new values;
    /// every key is tried when decrypting, so a rotated-out key keeps working until the
    /// stored values are encrypted again.
    pub encryption_keys: Vec<Secret>,
    /// Private networks that URLs chosen by tenants may reach, such as a local model server.
    pub allowed_private_networks: Vec<IpNet>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Platform keys and base URLs of the providers, used when a tenant has stored none.
    pub providers: ProviderEndpoints,
    pub cors_allowed_origins: Vec<String>,
    /// Lower-cased email addresses of the platform administrators, who manage every
    /// tenant's plan and status.
    pub platform_admins: Vec<String>,
    /// Messages sent to the provider, counting the new user message.
    pub context_messages: u64,
    /// Tokens a model's context holds, for agents that set none and conversations without
    /// an agent.
    pub context_window_tokens: u64,
    /// How long a finished generation's deltas stay readable in Redis.
    pub stream_ttl: Duration,
    /// How long a reply cached on request stays in the response cache when its agent sets
    /// no time-to-live, or the conversation has no agent.
    pub response_cache_ttl: Duration,
    pub sweep_interval: Duration,
    /// How long a worker holds an agent run without renewing its lease. A run whose
    /// worker died is resumed by another one after this long.
    pub agent_run_lease: Duration,
    /// Agent runs one worker process works on at the same time.
    pub agent_run_concurrency: u64,
    /// How often the worker probes the providers that have a platform key.
    pub provider_probe_interval: Duration,
    /// The oldest worker heartbeat with which `/health/ready` still reports a worker.
    pub worker_heartbeat_max_age: Duration,
    pub default_page_size: u64,
    pub max_page_size: u64,
    /// Largest accepted HTTP request body, in bytes.
    pub max_request_bytes: usize,
    /// Maximum duration of an HTTP request from its headers to the response, reading the
    /// body included. WebSocket connections are not limited by it.
    pub request_timeout: Duration,
    /// `max-age` of the `Strict-Transport-Security` header; `None` leaves the header out.
    pub hsts_max_age: Option<Duration>,
    pub graphql: GraphqlSettings,
    pub realtime: RealtimeSettings,
    pub webhooks: WebhookSettings,
    /// `iss` claim that access tokens carry and that verification requires.
    pub jwt_issuer: String,
    /// `aud` claim that access tokens carry and that verification requires.
    pub jwt_audience: String,
    /// Sign-in and registration attempts allowed per minute from one client IP address.
    pub login_attempts_per_ip_per_minute: u32,
    /// Sign-in and registration attempts allowed per minute for one email address.
    pub login_attempts_per_email_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` header is trusted to name the client's address.
    pub trusted_proxies: Vec<IpNet>,
    /// Sentry project to report errors and panics to; none without `SENTRY_DSN`.
    pub sentry_dsn: Option<Secret>,
    /// Share of requests traced for Sentry's performance view, from 0 to 1.
    pub sentry_traces_sample_rate: f32,
    pub provider_connect_timeout: Duration,
    pub provider_read_timeout: Duration,
    /// Address on which the worker serves `/metrics` and `/health/live`.
    pub worker_metrics_addr: String,
    /// Token that scrapes of `/metrics` (api and worker) must send, when set.
    pub metrics_bearer_token: Option<Secret>,
    /// How long a stopping process lets running requests, generations and jobs finish.
    pub shutdown_grace: Duration,
    /// Days that raw usage records are kept before the worker rolls them up into daily
    /// totals.
    pub usage_retention_days: u32,
}

/// Limits on GraphQL operations and the schema's introspection switches.
#[derive(Debug, Clone)]
pub struct GraphqlSettings {
    /// Maximum nesting of fields in an operation.
    pub max_depth: usize,
    /// Maximum complexity of an operation, as async-graphql counts it: one per field unless
    /// the field declares its own cost.
    pub max_complexity: usize,
    /// Maximum number of aliases in an operation, counting fragments at every use.
    pub max_aliases: usize,
    /// Maximum number of directives in an operation, counting fragments at every use.
    pub max_directives: usize,
    /// Maximum number of operations in one batch request (a JSON array).
    pub max_batch_operations: usize,
    /// Whether `__schema` and `__type` resolve. When off, async-graphql returns null for them.
    pub introspection: bool,
    /// Whether validation errors suggest similar field and type names.
    pub field_suggestions: bool,
}

/// Subscriptions: the WebSocket protocol's timers and the buffers of streamed events.
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// How long a WebSocket client has to send `connection_init` before close code 4408.
    pub connection_init_timeout: Duration,
    /// How often an open WebSocket's credentials are authenticated again, so that a
    /// revoked session, removed member, changed role or revoked API key ends its
    /// subscriptions.
    pub credential_check_interval: Duration,
    /// Events a subscription holds for a client that has not taken them yet.
    pub subscription_buffer: usize,
    /// How long a subscription's buffer may stay full before the subscription ends with an
    /// error that names the cursor to resume from.
    pub subscriber_stall: Duration,
    /// Whether a reply keeps generating when nobody follows it. When false, a reply with no
    /// subscriber for `listener_grace` is stopped, and stored as stopped.
    pub generate_without_listener: bool,
    /// How long a reply may go without a subscriber before it is stopped, when
    /// `generate_without_listener` is false.
    pub listener_grace: Duration,
}

/// Delivery of webhook messages.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Waits before the second, third, ... attempt of a message; after the last one the
    /// message fails. Each wait varies by up to a fifth either way.
    pub retry_schedule: Vec<Duration>,
    /// Longest wait for an endpoint's answer.
    pub timeout: Duration,
    /// Messages in a row that fail every attempt before their endpoint is disabled.
    pub disable_after: u32,
    /// How long the old secret keeps signing after a rotation.
    pub rotation_overlap: Duration,
    /// How long after its time an attempt may still be waiting in the queue before the
    /// sweep takes its job as lost and enqueues it again.
    pub job_grace: Duration,
}

/// Minimum days of raw usage records kept: a billing month plus a few days of margin.
pub const MIN_USAGE_RETENTION_DAYS: u32 = 35;
/// Longest time a reply may stay in the response cache: 30 days.
pub const MAX_RESPONSE_CACHE_TTL_SECONDS: u64 = 2_592_000;

/// The parser of async-graphql 7 rejects selection sets nested deeper than this, so a
/// larger GRAPHQL_MAX_DEPTH could never be reached.
const PARSER_MAX_NESTING: usize = 32;

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("environment", &self.environment)
            .field("api_addr", &self.api_addr)
            .field("worker_metrics_addr", &self.worker_metrics_addr)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("redis_prefix", &self.redis_prefix)
            .field("auto_migrate", &self.auto_migrate)
            .field("allowed_private_networks", &self.allowed_private_networks)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("graphql", &self.graphql)
            .field("realtime", &self.realtime)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads settings from the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads settings through `lookup`, which returns a variable's value when it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let environment = match get("APP_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "APP_ENV",
                    other,
                    "expected development or production",
                ));
            }
        };
        let production = environment == Environment::Production;

        let secret_key = match get("SECRET_KEY") {
            Some(key) if key.len() >= 32 => Secret::new(key),
            Some(key) => {
                return Err(ConfigError::Invalid {
                    name: "SECRET_KEY",
                    value: format!("{} characters", key.len()),
                    reason: "must be at least 32 characters".into(),
                });
            }
            None if production => return Err(ConfigError::Missing { name: "SECRET_KEY" }),
            None => Secret::new(DEVELOPMENT_SECRET_KEY),
        };
        let encryption_keys = match get("ENCRYPTION_KEY") {
            Some(list) => encryption_keys(&list)?,
            None if production => {
                return Err(ConfigError::Missing {
                    name: "ENCRYPTION_KEY",
                });
            }
            None => vec![Secret::new(DEVELOPMENT_ENCRYPTION_KEY)],
        };
        let allowed_private_networks = match get("ALLOWED_PRIVATE_NETWORKS") {
            Some(list) => providers::outbound::parse_networks(&list).map_err(|error| {
                ConfigError::Invalid {
                    name: "ALLOWED_PRIVATE_NETWORKS",
                    value: list.clone(),
                    reason: error.to_string(),
                }
            })?,
            None => Vec::new(),
        };

        // With neither URL set, the application signs in as the role that row-level
        // security applies to and migrations run as the local superuser. A DATABASE_URL
        // set alone serves both, as in a database where one role does everything.
        let configured_database_url = get("DATABASE_URL");
        let migration_database_url = get("MIGRATION_DATABASE_URL")
            .or_else(|| configured_database_url.clone())
            .unwrap_or_else(|| DEFAULT_MIGRATION_DATABASE_URL.into());
        let database_url = configured_database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        check_url("DATABASE_URL", &database_url, &["postgres", "postgresql"])?;
        check_url(
            "MIGRATION_DATABASE_URL",
            &migration_database_url,
            &["postgres", "postgresql"],
        )?;
        let sentry_dsn = get("SENTRY_DSN").filter(|dsn| !dsn.trim().is_empty());
        if let Some(dsn) = &sentry_dsn {
            check_url("SENTRY_DSN", dsn, &["http", "https"])?;
        }
        let sentry_dsn = sentry_dsn.map(Secret::new);
        let sentry_traces_sample_rate: f32 = parse(
            "SENTRY_TRACES_SAMPLE_RATE",
            get("SENTRY_TRACES_SAMPLE_RATE"),
            0.0,
        )?;
        if !(0.0..=1.0).contains(&sentry_traces_sample_rate) {
            return Err(ConfigError::Invalid {
                name: "SENTRY_TRACES_SAMPLE_RATE",
                value: sentry_traces_sample_rate.to_string(),
                reason: "must be between 0 and 1".into(),
            });
        }
        let redis_url = get("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        check_url("REDIS_URL", &redis_url, &["redis", "rediss"])?;
        let providers = ProviderEndpoints::from_lookup(&get)?;

        let parse_or = |name: &'static str, default: u64| parse(name, get(name), default);
        let seconds =
            |name: &'static str, default: u64| parse_or(name, default).map(Duration::from_secs);
        let count = |name: &'static str, default: usize| parse(name, get(name), default);
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            Some(list) => providers::outbound::parse_networks(&list).map_err(|error| {
                ConfigError::Invalid {
                    name: "TRUSTED_PROXIES",
                    value: list.clone(),
                    reason: error.to_string(),
                }
            })?,
            None => Vec::new(),
        };
        let hsts_max_age = Some(seconds("HSTS_MAX_AGE_SECONDS", 0)?).filter(|age| !age.is_zero());
        let graphql = GraphqlSettings {
            max_depth: count("GRAPHQL_MAX_DEPTH", 15)?,
            max_complexity: count("GRAPHQL_MAX_COMPLEXITY", 1000)?,
            max_aliases: count("GRAPHQL_MAX_ALIASES", 30)?,
            max_directives: count("GRAPHQL_MAX_DIRECTIVES", 50)?,
            max_batch_operations: count("GRAPHQL_MAX_BATCH_OPERATIONS", 10)?,
            introspection: parse("GRAPHQL_INTROSPECTION", get("GRAPHQL_INTROSPECTION"), true)?,
            field_suggestions: parse(
                "GRAPHQL_FIELD_SUGGESTIONS",
                get("GRAPHQL_FIELD_SUGGESTIONS"),
                true,
            )?,
        };
        let realtime = RealtimeSettings {
            connection_init_timeout: seconds("WS_CONNECTION_INIT_TIMEOUT_SECONDS", 10)?,
            credential_check_interval: seconds("WS_CREDENTIAL_CHECK_SECONDS", 10)?,
            subscription_buffer: count("SUBSCRIPTION_BUFFER", 256)?,
            subscriber_stall: seconds("SUBSCRIBER_STALL_SECONDS", 10)?,
            generate_without_listener: match get("GENERATION_WITHOUT_LISTENER").as_deref() {
                None | Some("continue") => true,
                Some("stop") => false,
                Some(other) => {
                    return Err(invalid(
                        "GENERATION_WITHOUT_LISTENER",
                        other,
                        "expected continue or stop",
                    ));
                }
            },
            listener_grace: seconds("LISTENER_GRACE_SECONDS", 10)?,
        };
        let retry_schedule = match get("WEBHOOK_RETRY_SCHEDULE") {
            Some(list) => parse_schedule(&list)
                .map_err(|reason| invalid("WEBHOOK_RETRY_SCHEDULE", &list, &reason))?,
            None => DEFAULT_WEBHOOK_SCHEDULE
                .iter()
                .map(|seconds| Duration::from_secs(*seconds))
                .collect(),
        };
        let webhooks = WebhookSettings {
            retry_schedule,
            timeout: seconds("WEBHOOK_TIMEOUT_SECONDS", 15)?,
            disable_after: parse("WEBHOOK_DISABLE_AFTER", get("WEBHOOK_DISABLE_AFTER"), 5)?,
            rotation_overlap: seconds("WEBHOOK_ROTATION_OVERLAP_SECONDS", 24 * 3600)?,
            job_grace: seconds("WEBHOOK_JOB_GRACE_SECONDS", 300)?,
        };

        let settings = Settings {
            environment,
            api_addr: get("API_ADDR").unwrap_or_else(|| "127.0.0.1:8000".into()),
            database_url,
            migration_database_url,
            auto_migrate: parse("AUTO_MIGRATE", get("AUTO_MIGRATE"), !production)?,
            redis_url,
            redis_prefix: get("REDIS_PREFIX").unwrap_or_else(|| "ta".into()),
            secret_key,
            encryption_keys,
            allowed_private_networks,
            access_token_ttl: seconds("ACCESS_TOKEN_TTL_SECONDS", 15 * 60)?,
            refresh_token_ttl: seconds("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            providers,
            cors_allowed_origins: get("CORS_ALLOWED_ORIGINS")
                .map(|list| {
                    list.split(',')
                        .map(|origin| origin.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            platform_admins: get("PLATFORM_ADMINS")
                .map(|list| {
                    list.split(',')
                        .map(|email| email.trim().to_lowercase())
                        .filter(|email| !email.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            context_messages: parse_or("CONTEXT_MESSAGES", 20)?,
            context_window_tokens: parse_or("CONTEXT_WINDOW_TOKENS", 128_000)?,
            stream_ttl: seconds("STREAM_TTL_SECONDS", 3600)?,
            response_cache_ttl: seconds("RESPONSE_CACHE_TTL_SECONDS", 3600)?,
            sweep_interval: seconds("SWEEP_INTERVAL_SECONDS", 60)?,
            agent_run_lease: seconds("AGENT_RUN_LEASE_SECONDS", 30)?,
            agent_run_concurrency: parse_or("AGENT_RUN_CONCURRENCY", 8)?,
            provider_probe_interval: seconds("PROVIDER_PROBE_INTERVAL_SECONDS", 300)?,
            worker_heartbeat_max_age: seconds("WORKER_HEARTBEAT_MAX_AGE_SECONDS", 30)?,
            default_page_size: parse_or("DEFAULT_PAGE_SIZE", 20)?,
            max_page_size: parse_or("MAX_PAGE_SIZE", 100)?,
            max_request_bytes: count("MAX_REQUEST_BYTES", 2 * 1024 * 1024)?,
            request_timeout: seconds("REQUEST_TIMEOUT_SECONDS", 30)?,
            hsts_max_age,
            graphql,
            realtime,
            webhooks,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "task-assistant".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "task-assistant-api".into()),
            login_attempts_per_ip_per_minute: parse(
                "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE",
                get("LOGIN_ATTEMPTS_PER_IP_PER_MINUTE"),
                10,
            )?,
            login_attempts_per_email_per_minute: parse(
                "LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE",
                get("LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE"),
                5,
            )?,
            trusted_proxies,
            sentry_dsn,
            sentry_traces_sample_rate,
            provider_connect_timeout: seconds("PROVIDER_CONNECT_TIMEOUT_SECONDS", 10)?,
            provider_read_timeout: seconds("PROVIDER_READ_TIMEOUT_SECONDS", 120)?,
            worker_metrics_addr: get("WORKER_METRICS_ADDR")
                .unwrap_or_else(|| "127.0.0.1:9101".into()),
            metrics_bearer_token: get("METRICS_BEARER_TOKEN").map(Secret::new),
            shutdown_grace: seconds("SHUTDOWN_GRACE_SECONDS", 30)?,
            usage_retention_days: parse("USAGE_RETENTION_DAYS", get("USAGE_RETENTION_DAYS"), 90)?,
        };
        settings.check_ranges()?;
        Ok(settings)
    }

    fn check_ranges(&self) -> Result<(), ConfigError> {
        let positive = [
            ("CONTEXT_MESSAGES", self.context_messages),
            ("CONTEXT_WINDOW_TOKENS", self.context_window_tokens),
            ("DEFAULT_PAGE_SIZE", self.default_page_size),
            ("MAX_PAGE_SIZE", self.max_page_size),
            ("ACCESS_TOKEN_TTL_SECONDS", self.access_token_ttl.as_secs()),
            (
                "REFRESH_TOKEN_TTL_SECONDS",
                self.refresh_token_ttl.as_secs(),
            ),
            ("SWEEP_INTERVAL_SECONDS", self.sweep_interval.as_secs()),
            ("AGENT_RUN_LEASE_SECONDS", self.agent_run_lease.as_secs()),
            ("AGENT_RUN_CONCURRENCY", self.agent_run_concurrency),
            (
                "PROVIDER_PROBE_INTERVAL_SECONDS",
                self.provider_probe_interval.as_secs(),
            ),
            (
                "WORKER_HEARTBEAT_MAX_AGE_SECONDS",
                self.worker_heartbeat_max_age.as_secs(),
            ),
            ("MAX_REQUEST_BYTES", self.max_request_bytes as u64),
            ("REQUEST_TIMEOUT_SECONDS", self.request_timeout.as_secs()),
            (
                "WS_CONNECTION_INIT_TIMEOUT_SECONDS",
                self.realtime.connection_init_timeout.as_secs(),
            ),
            (
                "WS_CREDENTIAL_CHECK_SECONDS",
                self.realtime.credential_check_interval.as_secs(),
            ),
            (
                "SUBSCRIPTION_BUFFER",
                self.realtime.subscription_buffer as u64,
            ),
            (
                "SUBSCRIBER_STALL_SECONDS",
                self.realtime.subscriber_stall.as_secs(),
            ),
            (
                "LISTENER_GRACE_SECONDS",
                self.realtime.listener_grace.as_secs(),
            ),
            ("WEBHOOK_TIMEOUT_SECONDS", self.webhooks.timeout.as_secs()),
            (
                "WEBHOOK_DISABLE_AFTER",
                u64::from(self.webhooks.disable_after),
            ),
            (
                "WEBHOOK_JOB_GRACE_SECONDS",
                self.webhooks.job_grace.as_secs(),
            ),
            ("GRAPHQL_MAX_DEPTH", self.graphql.max_depth as u64),
            ("GRAPHQL_MAX_COMPLEXITY", self.graphql.max_complexity as u64),
            ("GRAPHQL_MAX_ALIASES", self.graphql.max_aliases as u64),
            ("GRAPHQL_MAX_DIRECTIVES", self.graphql.max_directives as u64),
            (
                "GRAPHQL_MAX_BATCH_OPERATIONS",
                self.graphql.max_batch_operations as u64,
            ),
            (
                "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE",
                self.login_attempts_per_ip_per_minute.into(),
            ),
            (
                "LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE",
                self.login_attempts_per_email_per_minute.into(),
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(invalid(name, "0", "must be greater than 0"));
            }
        }
        if self.graphql.max_depth > PARSER_MAX_NESTING {
            return Err(invalid(
                "GRAPHQL_MAX_DEPTH",
                &self.graphql.max_depth.to_string(),
                &format!("must not exceed {PARSER_MAX_NESTING}, the parser's nesting limit"),
            ));
        }
        // Quotas read the raw records of the current calendar month, which is at most
        // 31 days old, so they must outlive it.
        if self.usage_retention_days < MIN_USAGE_RETENTION_DAYS {
            return Err(invalid(
                "USAGE_RETENTION_DAYS",
                &self.usage_retention_days.to_string(),
                &format!("must be at least {MIN_USAGE_RETENTION_DAYS}"),
            ));
        }
        let cache_seconds = self.response_cache_ttl.as_secs();
        if !(1..=MAX_RESPONSE_CACHE_TTL_SECONDS).contains(&cache_seconds) {
            return Err(invalid(
                "RESPONSE_CACHE_TTL_SECONDS",
                &cache_seconds.to_string(),
                &format!("must be between 1 and {MAX_RESPONSE_CACHE_TTL_SECONDS}"),
            ));
        }
        if self.default_page_size > self.max_page_size {
            return Err(invalid(
                "DEFAULT_PAGE_SIZE",
                &self.default_page_size.to_string(),
                "must not exceed MAX_PAGE_SIZE",
            ));
        }
        Ok(())
    }
}

/// Splits and checks the comma-separated Fernet keys of `ENCRYPTION_KEY`. An error names the
/// position of the bad key, never its value.
fn encryption_keys(list: &str) -> Result<Vec<Secret>, ConfigError> {
    let keys: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .collect();
    let count = keys.len();
    for (index, key) in keys.iter().enumerate() {
        if !crypto::is_fernet_key(key) {
            return Err(ConfigError::Invalid {
                name: "ENCRYPTION_KEY",
                value: format!("key {} of {count}, {} characters", index + 1, key.len()),
                reason: "expected a Fernet key: 32 bytes in URL-safe base64 (44 characters)".into(),
            });
        }
    }
    if keys.is_empty() {
        return Err(invalid(
            "ENCRYPTION_KEY",
            list,
            "expected one or more comma-separated Fernet keys",
        ));
    }
    Ok(keys.into_iter().map(Secret::new).collect())
}

/// A provider's platform key and base URL.
#[derive(Clone)]
pub struct ProviderEndpoint {
    pub api_key: Option<Secret>,
    pub base_url: String,
}

/// The platform's endpoint of every provider.
#[derive(Clone)]
pub struct ProviderEndpoints {
    openai: ProviderEndpoint,
    anthropic: ProviderEndpoint,
    gemini: ProviderEndpoint,
    groq: ProviderEndpoint,
    ollama: ProviderEndpoint,
}

impl ProviderEndpoints {
    /// Reads `<PROVIDER>_API_KEY` and `<PROVIDER>_BASE_URL` for each provider. Gemini's key
    /// is `GOOGLE_API_KEY`, the name Google's own tools use.
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let endpoint = |key: &'static str, url: &'static str, default: &str| {
            let base_url = get(url).unwrap_or_else(|| default.to_owned());
            check_url(url, &base_url, &["http", "https"])?;
            Ok(ProviderEndpoint {
                api_key: get(key).map(Secret::new),
                base_url: base_url.trim_end_matches('/').to_owned(),
            })
        };
        Ok(Self {
            openai: endpoint(
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                OpenAi::DEFAULT_BASE_URL,
            )?,
            anthropic: endpoint(
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                Anthropic::DEFAULT_BASE_URL,
            )?,
            gemini: endpoint(
                "GOOGLE_API_KEY",
                "GEMINI_BASE_URL",
                Gemini::DEFAULT_BASE_URL,
            )?,
            groq: endpoint("GROQ_API_KEY", "GROQ_BASE_URL", Groq::DEFAULT_BASE_URL)?,
            ollama: endpoint(
                "OLLAMA_API_KEY",
                "OLLAMA_BASE_URL",
                Ollama::DEFAULT_BASE_URL,
            )?,
        })
    }

    pub fn get(&self, kind: ProviderKind) -> &ProviderEndpoint {
        match kind {
            ProviderKind::OpenAi => &self.openai,
            ProviderKind::Anthropic => &self.anthropic,
            ProviderKind::Gemini => &self.gemini,
            ProviderKind::Groq => &self.groq,
            ProviderKind::Ollama => &self.ollama,
        }
    }
}

fn invalid(name: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Waits between webhook attempts after the first, in seconds: 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h and 10 h, about 28 hours in all, the schedule that the Standard Webhooks
/// specification suggests.
const DEFAULT_WEBHOOK_SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// Parses a comma-separated list of seconds, such as `5,300,1800`.
fn parse_schedule(list: &str) -> Result<Vec<Duration>, String> {
    let waits = list
        .split(',')
        .map(|item| {
            item.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{:?} is not a whole number of seconds", item.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if waits.is_empty() || waits.len() > 20 {
        return Err("expected 1 to 20 comma-separated waits in seconds".into());
    }
    Ok(waits)
}

fn parse<T: FromStr>(
    name: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match value {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|error: T::Err| ConfigError::Invalid {
                name,
                value: text,
                reason: error.to_string(),
            }),
    }
}

fn check_url(name: &'static str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some(scheme) if schemes.contains(&scheme) => Ok(()),
        _ => Err(ConfigError::Invalid {
            name,
            // The URL may carry a password, so only its scheme is echoed.
            value: scheme.unwrap_or("no scheme").to_owned(),
            reason: format!(
                "expected a URL starting with {}://",
                schemes.join(":// or ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings_with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_work_in_development() {
        let settings = settings_with(&[]).unwrap();
        assert_eq!(settings.environment, Environment::Development);
        assert_eq!(settings.context_messages, 20);
        assert_eq!(settings.default_page_size, 20);
        assert_eq!(settings.max_page_size, 100);
        assert!(settings.auto_migrate);
        assert_eq!(settings.access_token_ttl, Duration::from_secs(900));
        assert_eq!(settings.provider_probe_interval, Duration::from_secs(300));
    }

    #[test]
    fn http_and_graphql_defaults() {
        let settings = settings_with(&[]).unwrap();
        assert_eq!(settings.max_request_bytes, 2_097_152);
        assert_eq!(settings.request_timeout, Duration::from_secs(30));
        assert_eq!(settings.hsts_max_age, None);
        assert_eq!(settings.graphql.max_depth, 15);
        assert_eq!(settings.graphql.max_complexity, 1000);
        assert_eq!(settings.graphql.max_aliases, 30);
        assert_eq!(settings.graphql.max_directives, 50);
        assert_eq!(settings.graphql.max_batch_operations, 10);
        assert!(settings.graphql.introspection);
        assert!(settings.graphql.field_suggestions);
        assert_eq!(settings.jwt_issuer, "task-assistant");
        assert_eq!(settings.jwt_audience, "task-assistant-api");
        assert_eq!(settings.login_attempts_per_ip_per_minute, 10);
        assert_eq!(settings.login_attempts_per_email_per_minute, 5);
        assert!(settings.trusted_proxies.is_empty());
    }

    #[test]
    fn hsts_max_age_read_in_seconds() {
        let settings = settings_with(&[("HSTS_MAX_AGE_SECONDS", "31536000")]).unwrap();
        assert_eq!(settings.hsts_max_age, Some(Duration::from_secs(31_536_000)));
        let off = settings_with(&[("HSTS_MAX_AGE_SECONDS", "0")]).unwrap();
        assert_eq!(off.hsts_max_age, None);
    }

    #[test]
    fn graphql_switches_parsed() {
        let settings = settings_with(&[
            ("GRAPHQL_INTROSPECTION", "false"),
            ("GRAPHQL_FIELD_SUGGESTIONS", "false"),
        ])
        .unwrap();
        assert!(!settings.graphql.introspection);
        assert!(!settings.graphql.field_suggestions);
        let error = settings_with(&[("GRAPHQL_INTROSPECTION", "no")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("GRAPHQL_INTROSPECTION is invalid"),
            "{error}"
        );
    }

    #[test]
    fn zero_limits_rejected() {
        for name in [
            "GRAPHQL_MAX_ALIASES",
            "GRAPHQL_MAX_BATCH_OPERATIONS",
            "REQUEST_TIMEOUT_SECONDS",
            "LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE",
        ] {
            let error = settings_with(&[(name, "0")]).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("{name} is invalid: must be greater than 0 (got \"0\")")
            );
        }
    }

    #[test]
    fn depth_beyond_parser_nesting_rejected() {
        assert!(settings_with(&[("GRAPHQL_MAX_DEPTH", "32")]).is_ok());
        let error = settings_with(&[("GRAPHQL_MAX_DEPTH", "33")]).unwrap_err();
        assert!(error.to_string().contains("must not exceed 32"), "{error}");
    }

    #[test]
    fn trusted_proxies_parsed() {
        let settings = settings_with(&[("TRUSTED_PROXIES", "10.0.0.0/8, ::1/128")]).unwrap();
        let expected: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(settings.trusted_proxies, expected);
        let error = settings_with(&[("TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err();
        assert!(
            error.to_string().starts_with("TRUSTED_PROXIES is invalid"),
            "{error}"
        );
    }

    #[test]
    fn production_requires_secret_key() {
        let error = settings_with(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(error.to_string(), "SECRET_KEY is required in production");
    }

    /// Returns a Fernet key for tests: the URL-safe base64 of 32 bytes of `fill`.
    fn fernet_key(fill: u8) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE.encode([fill; 32])
    }

    #[test]
    fn production_turns_auto_migrate_off() {
        let key = "k".repeat(40);
        let encryption_key = fernet_key(1);
        let settings = settings_with(&[
            ("APP_ENV", "production"),
            ("SECRET_KEY", &key),
            ("ENCRYPTION_KEY", &encryption_key),
        ])
        .unwrap();
        assert!(!settings.auto_migrate);
    }

    #[test]
    fn production_requires_encryption_key() {
        let key = "k".repeat(40);
        let error = settings_with(&[("APP_ENV", "production"), ("SECRET_KEY", &key)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ENCRYPTION_KEY is required in production"
        );
    }

    #[test]
    fn development_has_default_encryption_key() {
        let settings = settings_with(&[]).unwrap();
        assert_eq!(settings.encryption_keys.len(), 1);
        assert!(crypto::is_fernet_key(settings.encryption_keys[0].expose()));
    }

    #[test]
    fn encryption_keys_keep_their_order() {
        let (first, second) = (fernet_key(1), fernet_key(2));
        let list = format!(" {first} , {second} ");
        let settings = settings_with(&[("ENCRYPTION_KEY", &list)]).unwrap();
        let keys: Vec<&str> = settings
            .encryption_keys
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(keys, [first.as_str(), second.as_str()]);
    }

    #[test]
    fn invalid_encryption_key_named_without_its_value() {
        let list = format!("{},not-a-fernet-key", fernet_key(1));
        let error = settings_with(&[("ENCRYPTION_KEY", &list)]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("ENCRYPTION_KEY is invalid"),
            "{message}"
        );
        assert!(message.contains("key 2 of 2"), "{message}");
        assert!(!message.contains("not-a-fernet-key"), "{message}");
    }

    #[test]
    fn allowed_private_networks_parsed() {
        let settings =
            settings_with(&[("ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8,::1/128")]).unwrap();
        let expected: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(settings.allowed_private_networks, expected);
        assert!(
            settings_with(&[])
                .unwrap()
                .allowed_private_networks
                .is_empty()
        );
    }

    #[test]
    fn malformed_allowed_network_names_variable() {
        let error = settings_with(&[("ALLOWED_PRIVATE_NETWORKS", "10.0.0.0/99")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("ALLOWED_PRIVATE_NETWORKS is invalid"),
            "{error}"
        );
    }

    #[test]
    fn malformed_number_names_variable() {
        let error = settings_with(&[("CONTEXT_MESSAGES", "twenty")]).unwrap_err();
        assert!(
            error.to_string().starts_with("CONTEXT_MESSAGES is invalid"),
            "{error}"
        );
    }

    #[test]
    fn wrong_url_scheme_names_variable() {
        let error = settings_with(&[("REDIS_URL", "http://localhost")]).unwrap_err();
        assert!(
            error.to_string().starts_with("REDIS_URL is invalid"),
            "{error}"
        );
    }

    #[test]
    fn usage_retention_below_a_month_rejected() {
        let error = settings_with(&[("USAGE_RETENTION_DAYS", "30")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            invalid("USAGE_RETENTION_DAYS", "30", "must be at least 35").to_string()
        );
        let settings = settings_with(&[("USAGE_RETENTION_DAYS", "35")]).unwrap();
        assert_eq!(settings.usage_retention_days, 35);
    }

    #[test]
    fn response_cache_ttl_outside_range_rejected() {
        for value in ["0", "2592001"] {
            let error = settings_with(&[("RESPONSE_CACHE_TTL_SECONDS", value)]).unwrap_err();
            assert_eq!(
                error.to_string(),
                invalid(
                    "RESPONSE_CACHE_TTL_SECONDS",
                    value,
                    "must be between 1 and 2592000"
                )
                .to_string()
            );
        }
        let settings = settings_with(&[]).unwrap();
        assert_eq!(settings.response_cache_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn short_secret_key_rejected() {
        let error = settings_with(&[("SECRET_KEY", "short")]).unwrap_err();
        assert!(
            error.to_string().contains("at least 32 characters"),
            "{error}"
        );
    }
}
