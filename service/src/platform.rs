//! The long-lived handles that service calls share: database, Redis, HTTP client, keys.

use std::sync::Arc;

use providers::outbound::{AddressPolicy, GuardedClient};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::{
    auth::tokens::TokenKeys,
    chat::registry::GenerationRegistry,
    config::Settings,
    crypto::SecretCipher,
    error::{ServiceError, ServiceResult},
    jobs::JobQueue,
    live::Announcer,
    local_limits::LocalLimits,
    redis_conn::Redis,
};

/// Everything a service call needs besides its [`crate::RequestContext`]. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub redis: Redis,
    /// Client for URLs that the platform's operator configured.
    pub http: reqwest::Client,
    /// Client for URLs that tenants chose, which reaches only public addresses and the
    /// networks of `ALLOWED_PRIVATE_NETWORKS`.
    pub guarded_http: GuardedClient,
    /// Encryption of the secrets stored in the database, with the keys of `ENCRYPTION_KEY`.
    pub cipher: Arc<SecretCipher>,
    pub tokens: Arc<TokenKeys>,
    pub jobs: JobQueue,
    pub generations: Arc<GenerationRegistry>,
    /// Announces changes to the `tenantEvents` subscribers of every replica.
    pub live: Announcer,
    /// Per-minute rate limits of this process alone, used while Redis is unreachable.
    pub local_limits: Arc<LocalLimits>,
}

impl Platform {
    /// Builds the handles without waiting for PostgreSQL or Redis to answer, so that a
    /// process can start while either is down and report it on its health check.
    pub async fn connect(settings: Settings) -> ServiceResult<Self> {
        let mut options = ConnectOptions::new(settings.database_url.clone());
        options
            .max_connections(32)
            .min_connections(0)
            .connect_timeout(std::time::Duration::from_secs(3))
            .acquire_timeout(std::time::Duration::from_secs(3))
            // By default every checkout pings the server first, one more round trip per
            // statement on the chat path. Only connections idle long enough to have been
            // dropped by the server or a proxy are pinged.
            .test_before_acquire_if_idle_for(std::time::Duration::from_secs(30))
            .sqlx_logging(false)
            .connect_lazy(true);
        let db = Database::connect(options).await?;

        let redis = Redis::new(&settings.redis_url, settings.redis_prefix.clone())?;
        let http_settings = providers::HttpSettings {
            connect_timeout: settings.provider_connect_timeout,
            read_timeout: settings.provider_read_timeout,
        };
        let http = providers::http_client(&http_settings).map_err(|error| {
            ServiceError::internal(format!("building the HTTP client: {error}"))
        })?;
        let policy = AddressPolicy::new(settings.allowed_private_networks.clone());
        let guarded_http = GuardedClient::new(&http_settings, policy).map_err(|error| {
            ServiceError::internal(format!("building the guarded HTTP client: {error}"))
        })?;
        let cipher = SecretCipher::new(&settings.encryption_keys)
            .map_err(|error| ServiceError::internal(format!("loading ENCRYPTION_KEY: {error}")))?;
        let tokens = Arc::new(TokenKeys::new(&settings)?);
        let jobs = JobQueue::new(redis.clone());
        let live = Announcer::start(redis.clone(), settings.stream_ttl);

        Ok(Self {
            settings: Arc::new(settings),
            db,
            redis,
            http,
            guarded_http,
            cipher: Arc::new(cipher),
            tokens,
            jobs,
            generations: Arc::default(),
            live,
            local_limits: Arc::default(),
        })
    }
}
