//! DataLoaders for relation fields, so that a list never runs one query per row.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use entity::{agent, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};
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
