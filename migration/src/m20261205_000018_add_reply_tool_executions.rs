//! Tool executions of chat replies: a reply whose agent has tools records its calls in
//! `tool_executions` as agent runs do, linked to the message instead of a run.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE tool_executions
                    ALTER COLUMN run_id DROP NOT NULL,
                    ADD COLUMN message_id uuid CONSTRAINT tool_executions_message_id_fkey
                        REFERENCES messages (id) ON DELETE CASCADE,
                    ADD CONSTRAINT tool_executions_message_id_step_call_id_key
                        UNIQUE (message_id, step, call_id),
                    ADD CONSTRAINT tool_executions_owner_check
                        CHECK ((run_id IS NULL) <> (message_id IS NULL))",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM tool_executions WHERE run_id IS NULL")
            .await?;
        db.execute_unprepared(
            "ALTER TABLE tool_executions
                DROP CONSTRAINT IF EXISTS tool_executions_owner_check,
                DROP COLUMN IF EXISTS message_id,
                ALTER COLUMN run_id SET NOT NULL",
        )
        .await?;
        Ok(())
    }
}
