//! Response cache: an agent's time-to-live for cached replies, the cache lookup of each
//! usage record, the lookups and hits kept in the daily totals, and the tokens of cache hits
//! in the period counters, which the monthly quotas leave out.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = [
            // 2,592,000 seconds is 30 days.
            "ALTER TABLE agents
                ADD COLUMN response_cache_ttl_seconds integer
                    CONSTRAINT agents_response_cache_ttl_seconds_check
                    CHECK (response_cache_ttl_seconds BETWEEN 1 AND 2592000)",
            // NULL when the reply made no cache lookup.
            "ALTER TABLE usage_records
                ADD COLUMN response_cache text
                    CONSTRAINT usage_records_response_cache_check
                    CHECK (response_cache IN ('hit', 'miss'))",
            "ALTER TABLE usage_daily_totals
                ADD COLUMN response_cache_lookups bigint NOT NULL DEFAULT 0,
                ADD COLUMN response_cache_hits bigint NOT NULL DEFAULT 0",
            "ALTER TABLE usage_counters
                ADD COLUMN response_cache_hit_tokens bigint NOT NULL DEFAULT 0",
        ];
        let connection = manager.get_connection();
        for statement in statements {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = [
            "ALTER TABLE usage_counters DROP COLUMN IF EXISTS response_cache_hit_tokens",
            "ALTER TABLE usage_daily_totals DROP COLUMN IF EXISTS response_cache_lookups,
                DROP COLUMN IF EXISTS response_cache_hits",
            "ALTER TABLE usage_records DROP COLUMN IF EXISTS response_cache",
            "ALTER TABLE agents DROP COLUMN IF EXISTS response_cache_ttl_seconds",
        ];
        let connection = manager.get_connection();
        for statement in statements {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
