//! Per-agent context window: how many of the newest messages a reply sends, and how many
//! tokens the model's context holds. Both are optional; the platform settings apply when an
//! agent sets none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE agents
                    ADD COLUMN context_messages integer
                        CONSTRAINT agents_context_messages_check
                        CHECK (context_messages BETWEEN 1 AND 200),
                    ADD COLUMN context_window_tokens integer
                        CONSTRAINT agents_context_window_tokens_check
                        CHECK (context_window_tokens BETWEEN 256 AND 10000000)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE agents DROP COLUMN IF EXISTS context_messages,
                    DROP COLUMN IF EXISTS context_window_tokens",
            )
            .await?;
        Ok(())
    }
}
