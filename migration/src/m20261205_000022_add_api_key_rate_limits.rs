//! Per-minute limits of each API key: a plan's default for its keys, stored with the plan
//! like its other limits, and a key's own limits, which may only be lower.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE subscriptions
                    ADD COLUMN api_key_requests_per_minute bigint
                        CONSTRAINT subscriptions_api_key_requests_per_minute_check
                        CHECK (api_key_requests_per_minute >= 0),
                    ADD COLUMN api_key_tokens_per_minute bigint
                        CONSTRAINT subscriptions_api_key_tokens_per_minute_check
                        CHECK (api_key_tokens_per_minute >= 0);
                ALTER TABLE api_keys
                    ADD COLUMN requests_per_minute bigint
                        CONSTRAINT api_keys_requests_per_minute_check
                        CHECK (requests_per_minute > 0),
                    ADD COLUMN tokens_per_minute bigint
                        CONSTRAINT api_keys_tokens_per_minute_check
                        CHECK (tokens_per_minute > 0)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE subscriptions DROP COLUMN IF EXISTS api_key_requests_per_minute,
                    DROP COLUMN IF EXISTS api_key_tokens_per_minute;
                ALTER TABLE api_keys DROP COLUMN IF EXISTS requests_per_minute,
                    DROP COLUMN IF EXISTS tokens_per_minute",
            )
            .await?;
        Ok(())
    }
}
