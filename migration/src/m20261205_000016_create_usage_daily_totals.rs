//! Daily totals of usage records, so that raw records older than the retention period can
//! be deleted without losing what a tenant used and paid. The worker's maintenance moves
//! counted records into this table, one row per tenant, UTC day, provider, model, agent and
//! user of each batch it moves. Reports sum these rows with the raw records.
//!
//! A key may have several rows, one per batch, so the rows need no unique key. Without
//! one, `ON DELETE SET NULL` of a deleted agent or user cannot make two rows collide. The ids come
//! from `gen_random_uuid()` because the rows are made by `INSERT ... SELECT` in the
//! database, not by the application.

use sea_orm_migration::prelude::*;

use crate::m20261204_000015_enable_row_level_security::{
    APPLICATION_ROLE, CROSS_TENANT_ON, TENANT_MATCHES,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let role = APPLICATION_ROLE;
        let statements = [
            "CREATE TABLE usage_daily_totals (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                tenant_id uuid NOT NULL
                    CONSTRAINT usage_daily_totals_tenant_id_fkey
                    REFERENCES tenants (id) ON DELETE CASCADE,
                day date NOT NULL,
                provider text NOT NULL,
                model text NOT NULL,
                agent_id uuid
                    CONSTRAINT usage_daily_totals_agent_id_fkey
                    REFERENCES agents (id) ON DELETE SET NULL,
                user_id uuid
                    CONSTRAINT usage_daily_totals_user_id_fkey
                    REFERENCES users (id) ON DELETE SET NULL,
                input_tokens bigint NOT NULL,
                output_tokens bigint NOT NULL,
                cached_input_tokens bigint NOT NULL,
                cost_micros bigint NOT NULL,
                record_count bigint NOT NULL,
                unpriced_record_count bigint NOT NULL,
                unpriced_input_tokens bigint NOT NULL,
                unpriced_output_tokens bigint NOT NULL,
                estimated_record_count bigint NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            )"
            .to_owned(),
            "CREATE INDEX usage_daily_totals_tenant_id_day_idx \
             ON usage_daily_totals (tenant_id, day)"
                .to_owned(),
            "CREATE INDEX usage_daily_totals_agent_id_idx ON usage_daily_totals (agent_id)"
                .to_owned(),
            "CREATE INDEX usage_daily_totals_user_id_idx ON usage_daily_totals (user_id)"
                .to_owned(),
            // The roll-up picks the oldest counted records of every tenant.
            "CREATE INDEX usage_records_created_at_idx ON usage_records (created_at)".to_owned(),
            "ALTER TABLE usage_daily_totals ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
                .to_owned(),
            format!(
                "CREATE POLICY tenant_isolation ON usage_daily_totals \
                 USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
            ),
            format!(
                "CREATE POLICY cross_tenant_access ON usage_daily_totals \
                 USING ({CROSS_TENANT_ON}) WITH CHECK ({CROSS_TENANT_ON})"
            ),
            // The default privileges cover tables of the role that ran the earlier
            // migration; the grant covers a deployment where another role runs this one.
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON usage_daily_totals TO {role}"),
        ];
        let db = manager.get_connection();
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS usage_records_created_at_idx")
            .await?;
        db.execute_unprepared("DROP TABLE IF EXISTS usage_daily_totals")
            .await?;
        Ok(())
    }
}
