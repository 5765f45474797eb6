//! DataLoaders for relation fields, so that a list never runs one query per row.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use entity::{agent, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use service::{Platform, ServiceError};
use uuid::Uuid;

use super::error::to_graphql_error;

/// Loads agents of one tenant by id. Created per request with the caller's tenant.
pub struct AgentLoader {
    pub platform: Platform,
    pub tenant_id: Uuid,
}

impl Loader<Uuid> for AgentLoader {
    type Value = agent::Model;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let agents = agent::Entity::find()
            .filter(agent::Column::TenantId.eq(self.tenant_id))
            .filter(agent::Column::Id.is_in(ids.iter().copied()))
            .all(&self.platform.db)
            .await
            .map_err(|error| to_graphql_error(ServiceError::from(error)))?;
        Ok(agents.into_iter().map(|agent| (agent.id, agent)).collect())
    }
}

/// Loads users who are members of one tenant, by id.
pub struct MemberLoader {
    pub platform: Platform,
    pub tenant_id: Uuid,
}

impl Loader<Uuid> for MemberLoader {
    type Value = user::Model;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let members = user::Entity::find()
            .inner_join(entity::membership::Entity)
            .filter(entity::membership::Column::TenantId.eq(self.tenant_id))
            .filter(user::Column::Id.is_in(ids.iter().copied()))
            .all(&self.platform.db)
            .await
            .map_err(|error| to_graphql_error(ServiceError::from(error)))?;
        Ok(members.into_iter().map(|user| (user.id, user)).collect())
    }
}
