//! The long-lived handles that service calls share: database, Redis, HTTP client, keys.

use std::sync::Arc;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::{
    auth::tokens::TokenKeys,
    chat::registry::GenerationRegistry,
    config::Settings,
    error::{ServiceError, ServiceResult},
    jobs::JobQueue,
    redis_conn::Redis,
};

/// Everything a service call needs besides its [`crate::RequestContext`]. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub redis: Redis,
    pub http: reqwest::Client,
    pub tokens: Arc<TokenKeys>,
    pub jobs: JobQueue,
    pub generations: Arc<GenerationRegistry>,
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
            .sqlx_logging(false)
            .connect_lazy(true);
        let db = Database::connect(options).await?;

        let redis = Redis::new(&settings.redis_url, settings.redis_prefix.clone())?;
        let http = providers::http_client(&providers::HttpSettings {
            connect_timeout: settings.provider_connect_timeout,
            read_timeout: settings.provider_read_timeout,
        })
        .map_err(|error| ServiceError::internal(format!("building the HTTP client: {error}")))?;
        let tokens = Arc::new(TokenKeys::new(&settings)?);
        let jobs = JobQueue::new(redis.clone());

        Ok(Self {
            settings: Arc::new(settings),
            db,
            redis,
            http,
            tokens,
            jobs,
            generations: Arc::default(),
        })
    }
}
