//! Background job payloads and queues, shared by the api (which enqueues) and the worker.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{Config, RedisStorage};
use serde::{Deserialize, Serialize};
use tracing::warn;
use uuid::Uuid;

use crate::redis_conn::Redis;

/// Queue of [`CountUsage`] jobs, below the deployment's Redis prefix.
pub const USAGE_QUEUE: &str = "usage-aggregation";

/// Queue of [`RunAgent`] jobs, below the deployment's Redis prefix.
pub const AGENT_RUN_QUEUE: &str = "agent-runs";

/// Queue of [`DeliverWebhook`] jobs, below the deployment's Redis prefix.
pub const WEBHOOK_QUEUE: &str = "webhooks";

/// Every queue of the deployment.
pub const QUEUES: [&str; 3] = [USAGE_QUEUE, AGENT_RUN_QUEUE, WEBHOOK_QUEUE];

/// Adds the tenant's not-yet-counted usage records to its billing-period counters.
/// Carries only ids: the records themselves are the source of truth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountUsage {
    pub tenant_id: Uuid,
    /// Id of the request that caused the job, for its log lines and error reports. It is
    /// `None` for jobs of the maintenance sweep and for jobs enqueued before the field existed.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Takes an agent run from where its stored steps end to its final state. Carries only
/// ids, because the run row contains the prompt and the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunAgent {
    pub tenant_id: Uuid,
    pub run_id: Uuid,
    /// Id of the request that created the run, or `None` for jobs of the sweep.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Makes one attempt to deliver a webhook message. `attempt` counts from 1; a job whose
/// attempt was already made does nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub tenant_id: Uuid,
    pub message_id: Uuid,
    pub attempt: i32,
}

/// Enqueues jobs on the deployment's queues.
#[derive(Clone)]
pub struct JobQueue {
    redis: Redis,
}

impl JobQueue {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// The apalis configuration of `queue`, named explicitly so that moving a payload
    /// type in the code never moves its jobs to another Redis key.
    pub fn config(redis: &Redis, queue: &str) -> Config {
        Config::default()
            .queue(redis.key(&["queue", queue]))
            .heartbeat_interval(Duration::from_secs(2))
            .missed_heartbeats(3)
    }

    /// Enqueues a usage count. A failure is logged and not returned, because the records
    /// are already stored and the worker's sweep counts those that no job reached.
    pub async fn count_usage(&self, job: CountUsage) {
        let tenant_id = job.tenant_id;
        if let Err(error) = self.push(USAGE_QUEUE, job).await {
            warn!(%error, tenant.id = %tenant_id, "enqueueing usage count failed, the sweep will count it");
        }
    }

    /// Enqueues an agent run. A failure is logged and not returned, because the run row is
    /// already stored and the worker's sweep enqueues runs that no job reached.
    pub async fn run_agent(&self, job: RunAgent) {
        let run_id = job.run_id;
        if let Err(error) = self.push(AGENT_RUN_QUEUE, job).await {
            warn!(%error, agent_run.id = %run_id, "enqueueing agent run failed, the sweep will enqueue it");
        }
    }

    /// Enqueues a webhook attempt, to run at `run_at` when given. The caller records that
    /// the job reached Redis, so that the sweep enqueues it again when it did not.
    pub async fn deliver_webhook(
        &self,
        job: DeliverWebhook,
        run_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), String> {
        let connection = self
            .redis
            .shared()
            .await
            .map_err(|error| error.to_string())?;
        let mut storage = RedisStorage::<DeliverWebhook>::new(connection)
            .with_config(Self::config(&self.redis, WEBHOOK_QUEUE));
        let mut task = TaskBuilder::new(job);
        if let Some(run_at) = run_at {
            // apalis schedules by whole seconds; rounding up keeps the attempt from running
            // before its time, which a receiver's Retry-After may have set.
            let seconds = run_at.timestamp() + i64::from(run_at.timestamp_subsec_nanos() > 0);
            task = task.run_at_timestamp(u64::try_from(seconds).unwrap_or(0));
        }
        storage
            .push_task(task.build())
            .await
            .map_err(|error| error.to_string())
    }

    async fn push<T>(&self, queue: &str, job: T) -> Result<(), String>
    where
        T: Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
    {
        let connection = self
            .redis
            .shared()
            .await
            .map_err(|error| error.to_string())?;
        let mut storage =
            RedisStorage::<T>::new(connection).with_config(Self::config(&self.redis, queue));
        storage.push(job).await.map_err(|error| error.to_string())
    }
}
