//! DataLoaders for relation fields, so that a list never runs one query per row.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use entity::{agent, agent_run_step, tool_execution, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Select};
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
        Ok(group(steps, |step| step.run_id))
    }
}

/// Loads the tool executions of agent runs, each run's in the order they started.
pub struct ToolExecutionsLoader {
    pub platform: Platform,
    pub tenant_id: TenantId,
}

impl Loader<Uuid> for ToolExecutionsLoader {
    type Value = Vec<tool_execution::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let select = tool_execution::Entity::find()
            .filter(tool_execution::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(tool_execution::Column::RunId.is_in(ids.iter().copied()))
            .order_by_asc(tool_execution::Column::Step)
            .order_by_asc(tool_execution::Column::StartedAt);
        let executions = read(&self.platform, self.tenant_id, select).await?;
        Ok(group(executions, |execution| execution.run_id))
    }
}

/// Groups rows by the id `key` returns, keeping their order within each group.
fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut groups: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        groups.entry(key(&row)).or_default().push(row);
    }
    groups
}
