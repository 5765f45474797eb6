//! DataLoaders for relation fields, so that a list never runs one query per row.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use entity::{agent, agent_run, agent_run_step, tool_execution, user};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Select, Statement};
use service::{Platform, ServiceResult, TenantId};
use uuid::Uuid;

use super::error::to_graphql_error;

/// Loads agents of one tenant by id. Created per request with the caller's tenant.
pub struct AgentLoader {
    pub platform: Platform,
    pub tenant_id: TenantId,
}

impl Loader<Uuid> for AgentLoader {
    type Value = agent::Model;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let select = agent::Entity::find()
            .filter(agent::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(agent::Column::Id.is_in(ids.iter().copied()));
        let agents = read(&self.platform, self.tenant_id, select).await?;
        Ok(agents.into_iter().map(|agent| (agent.id, agent)).collect())
    }
}

/// Loads users who are members of one tenant, by id.
pub struct MemberLoader {
    pub platform: Platform,
    pub tenant_id: TenantId,
}

impl Loader<Uuid> for MemberLoader {
    type Value = user::Model;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let select = user::Entity::find()
            .inner_join(entity::membership::Entity)
            .filter(entity::membership::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(user::Column::Id.is_in(ids.iter().copied()));
        let members = read(&self.platform, self.tenant_id, select).await?;
        Ok(members.into_iter().map(|user| (user.id, user)).collect())
    }
}

/// Runs `select` in a transaction of the tenant's.
async fn read<E: EntityTrait>(
    platform: &Platform,
    tenant_id: TenantId,
    select: Select<E>,
) -> async_graphql::Result<Vec<E::Model>> {
    let rows = async {
        let txn = platform.tenant_tx(tenant_id).await?;
        let rows = select.all(&txn).await?;
        txn.commit().await?;
        ServiceResult::Ok(rows)
    };
    rows.await.map_err(to_graphql_error)
}

/// Loads the steps of agent runs, each run's in order.
pub struct RunStepsLoader {
    pub platform: Platform,
    pub tenant_id: TenantId,
}

impl Loader<Uuid> for RunStepsLoader {
    type Value = Vec<agent_run_step::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let select = agent_run_step::Entity::find()
            .filter(agent_run_step::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(agent_run_step::Column::RunId.is_in(ids.iter().copied()))
            .order_by_asc(agent_run_step::Column::Step);
        let steps = read(&self.platform, self.tenant_id, select).await?;
        Ok(group(steps, |step| Some(step.run_id)))
    }
}

/// Runs a relation field shows per agent.
pub const RECENT_RUNS: i64 = 10;

/// Loads the newest runs of agents, at most [`RECENT_RUNS`] each, newest first, in one
/// query for all the agents of a request.
pub struct RecentRunsLoader {
    pub platform: Platform,
    pub tenant_id: TenantId,
}

impl Loader<Uuid> for RecentRunsLoader {
    type Value = Vec<agent_run::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT * FROM (
                SELECT *, row_number() OVER (PARTITION BY agent_id ORDER BY id DESC) AS place
                FROM agent_runs WHERE tenant_id = $1 AND agent_id = ANY($2)
            ) ranked WHERE place <= $3 ORDER BY agent_id, id DESC",
            [
                self.tenant_id.as_uuid().into(),
                ids.to_vec().into(),
                RECENT_RUNS.into(),
            ],
        );
        let select = agent_run::Entity::find().from_raw_sql(statement);
        let runs = async {
            let txn = self.platform.tenant_tx(self.tenant_id).await?;
            let runs = select.all(&txn).await?;
            txn.commit().await?;
            ServiceResult::Ok(runs)
        }
        .await
        .map_err(to_graphql_error)?;
        Ok(group(runs, |run| run.agent_id))
    }
}

/// Key of the tool executions of one agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByRun(pub Uuid);

/// Key of the tool executions of one chat reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByMessage(pub Uuid);

/// Loads tool executions of agent runs or chat replies, by step and within a step in the
/// order the model listed the calls.
pub struct ToolExecutionsLoader {
    pub platform: Platform,
    pub tenant_id: TenantId,
}

impl ToolExecutionsLoader {
    async fn load_where(
        &self,
        column: tool_execution::Column,
        ids: impl Iterator<Item = Uuid>,
    ) -> async_graphql::Result<Vec<tool_execution::Model>> {
        let select = tool_execution::Entity::find()
            .filter(tool_execution::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(column.is_in(ids))
            .order_by_asc(tool_execution::Column::Step)
            .order_by_asc(tool_execution::Column::Id);
        read(&self.platform, self.tenant_id, select).await
    }
}

impl Loader<ByRun> for ToolExecutionsLoader {
    type Value = Vec<tool_execution::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ByRun]) -> Result<HashMap<ByRun, Self::Value>, Self::Error> {
        let ids = keys.iter().map(|key| key.0);
        let executions = self.load_where(tool_execution::Column::RunId, ids).await?;
        Ok(group(executions, |execution| execution.run_id.map(ByRun)))
    }
}

impl Loader<ByMessage> for ToolExecutionsLoader {
    type Value = Vec<tool_execution::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ByMessage],
    ) -> Result<HashMap<ByMessage, Self::Value>, Self::Error> {
        let ids = keys.iter().map(|key| key.0);
        let executions = self
            .load_where(tool_execution::Column::MessageId, ids)
            .await?;
        Ok(group(executions, |execution| {
            execution.message_id.map(ByMessage)
        }))
    }
}

/// Groups rows by the key `key` returns, keeping their order within each group. Rows
/// without a key are left out.
fn group<K: std::hash::Hash + Eq, T>(
    rows: Vec<T>,
    key: impl Fn(&T) -> Option<K>,
) -> HashMap<K, Vec<T>> {
    let mut groups: HashMap<K, Vec<T>> = HashMap::new();
    for row in rows {
        if let Some(key) = key(&row) {
            groups.entry(key).or_default().push(row);
        }
    }
    groups
}
