//! The API key an agent run was started with, so that the run's model calls count against
//! that key's per-minute limits as the key's chat requests do.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE agent_runs ADD COLUMN api_key_id uuid
                CONSTRAINT agent_runs_api_key_id_fkey REFERENCES api_keys (id) ON DELETE SET NULL",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX agent_runs_api_key_id_idx ON agent_runs (api_key_id)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE agent_runs DROP COLUMN IF EXISTS api_key_id")
            .await?;
        Ok(())
    }
}
