//! Tools, agent runs and their steps and tool executions, the agent columns that configure
//! runs, and the link from usage records to the run that caused them.
//!
//! A run copies the agent's configuration when it is created, so that a run resumed after a
//! worker crash, or an agent edited while it runs, still runs as it was asked to. A tool
//! execution row is written as `started` before the tool runs and keyed by run, step and
//! call, so that a resumed run can tell a finished call from one whose outcome is unknown.

use sea_orm_migration::prelude::*;

use crate::m20261204_000015_enable_row_level_security::{
    APPLICATION_ROLE, CROSS_TENANT_ON, TENANT_MATCHES,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Tables this migration creates, in the order their foreign keys allow.
const TABLES: [&str; 4] = ["tools", "agent_runs", "agent_run_steps", "tool_executions"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut statements: Vec<String> = [
            "CREATE TABLE tools (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL
                    CONSTRAINT tools_tenant_id_fkey REFERENCES tenants (id) ON DELETE CASCADE,
                name text NOT NULL,
                description text NOT NULL,
                parameters jsonb NOT NULL,
                method text NOT NULL
                    CONSTRAINT tools_method_check
                    CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
                url text NOT NULL,
                headers jsonb NOT NULL DEFAULT '{}',
                secret_headers text,
                secret_header_names jsonb NOT NULL DEFAULT '[]',
                timeout_ms integer NOT NULL CONSTRAINT tools_timeout_ms_check
                    CHECK (timeout_ms BETWEEN 100 AND 120000),
                created_by uuid
                    CONSTRAINT tools_created_by_fkey REFERENCES users (id) ON DELETE SET NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                CONSTRAINT tools_tenant_id_name_key UNIQUE (tenant_id, name)
            )",
            "CREATE INDEX tools_created_by_idx ON tools (created_by)",
            "ALTER TABLE agents
                ADD COLUMN tools jsonb NOT NULL DEFAULT '[]',
                ADD COLUMN max_steps integer NOT NULL DEFAULT 8
                    CONSTRAINT agents_max_steps_check CHECK (max_steps BETWEEN 1 AND 100),
                ADD COLUMN run_timeout_seconds integer NOT NULL DEFAULT 600
                    CONSTRAINT agents_run_timeout_seconds_check
                    CHECK (run_timeout_seconds BETWEEN 1 AND 86400)",
            "CREATE TABLE agent_runs (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL
                    CONSTRAINT agent_runs_tenant_id_fkey REFERENCES tenants (id) ON DELETE CASCADE,
                agent_id uuid
                    CONSTRAINT agent_runs_agent_id_fkey REFERENCES agents (id) ON DELETE SET NULL,
                created_by uuid
                    CONSTRAINT agent_runs_created_by_fkey REFERENCES users (id) ON DELETE SET NULL,
                request_id text,
                prompt text NOT NULL,
                status text NOT NULL CONSTRAINT agent_runs_status_check
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
                provider text NOT NULL,
                model text NOT NULL,
                instructions text NOT NULL,
                temperature double precision,
                max_tokens integer,
                tools jsonb NOT NULL,
                max_steps integer NOT NULL,
                timeout_seconds integer NOT NULL,
                output text,
                error text,
                steps integer NOT NULL DEFAULT 0,
                input_tokens bigint NOT NULL DEFAULT 0,
                output_tokens bigint NOT NULL DEFAULT 0,
                cost_micros bigint NOT NULL DEFAULT 0,
                attempts integer NOT NULL DEFAULT 0,
                cancel_requested_at timestamptz,
                lease_owner uuid,
                lease_expires_at timestamptz,
                created_at timestamptz NOT NULL,
                started_at timestamptz,
                finished_at timestamptz
            )",
            "CREATE INDEX agent_runs_tenant_id_agent_id_idx ON agent_runs (tenant_id, agent_id)",
            "CREATE INDEX agent_runs_agent_id_idx ON agent_runs (agent_id)",
            "CREATE INDEX agent_runs_created_by_idx ON agent_runs (created_by)",
            // The sweep looks for unfinished runs only.
            "CREATE INDEX agent_runs_unfinished_idx ON agent_runs (created_at)
                WHERE status IN ('queued', 'running')",
            "CREATE TABLE agent_run_steps (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL CONSTRAINT agent_run_steps_tenant_id_fkey
                    REFERENCES tenants (id) ON DELETE CASCADE,
                run_id uuid NOT NULL CONSTRAINT agent_run_steps_run_id_fkey
                    REFERENCES agent_runs (id) ON DELETE CASCADE,
                step integer NOT NULL,
                provider text NOT NULL,
                model text NOT NULL,
                text text NOT NULL,
                tool_calls jsonb NOT NULL,
                finish_reason text,
                input_tokens bigint NOT NULL,
                output_tokens bigint NOT NULL,
                cost_micros bigint,
                usage_estimated boolean NOT NULL,
                started_at timestamptz NOT NULL,
                finished_at timestamptz NOT NULL,
                CONSTRAINT agent_run_steps_run_id_step_key UNIQUE (run_id, step)
            )",
            "CREATE INDEX agent_run_steps_tenant_id_idx ON agent_run_steps (tenant_id)",
            "CREATE TABLE tool_executions (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL CONSTRAINT tool_executions_tenant_id_fkey
                    REFERENCES tenants (id) ON DELETE CASCADE,
                run_id uuid NOT NULL CONSTRAINT tool_executions_run_id_fkey
                    REFERENCES agent_runs (id) ON DELETE CASCADE,
                step integer NOT NULL,
                call_id text NOT NULL,
                tool_name text NOT NULL,
                tool_id uuid CONSTRAINT tool_executions_tool_id_fkey
                    REFERENCES tools (id) ON DELETE SET NULL,
                arguments jsonb NOT NULL,
                status text NOT NULL CONSTRAINT tool_executions_status_check
                    CHECK (status IN ('started', 'succeeded', 'failed', 'unknown')),
                result text,
                error text,
                duration_ms bigint,
                started_at timestamptz NOT NULL,
                finished_at timestamptz,
                CONSTRAINT tool_executions_run_id_step_call_id_key UNIQUE (run_id, step, call_id)
            )",
            "CREATE INDEX tool_executions_tenant_id_tool_name_idx
                ON tool_executions (tenant_id, tool_name)",
            "CREATE INDEX tool_executions_tool_id_idx ON tool_executions (tool_id)",
            "ALTER TABLE usage_records ADD COLUMN agent_run_id uuid
                CONSTRAINT usage_records_agent_run_id_fkey
                REFERENCES agent_runs (id) ON DELETE SET NULL",
            "CREATE INDEX usage_records_agent_run_id_idx ON usage_records (agent_run_id)",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        for table in TABLES {
            statements.extend(tenant_policies(table));
        }

        let db = manager.get_connection();
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "DROP INDEX IF EXISTS usage_records_agent_run_id_idx",
            "ALTER TABLE usage_records DROP COLUMN IF EXISTS agent_run_id",
            "DROP TABLE IF EXISTS tool_executions",
            "DROP TABLE IF EXISTS agent_run_steps",
            "DROP TABLE IF EXISTS agent_runs",
            "ALTER TABLE agents DROP COLUMN IF EXISTS tools, \
             DROP COLUMN IF EXISTS max_steps, DROP COLUMN IF EXISTS run_timeout_seconds",
            "DROP TABLE IF EXISTS tools",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

/// Forces row-level security on `table` with the policies every tenant table has, and
/// grants the application role its rights on a deployment where another role runs this
/// migration.
pub(crate) fn tenant_policies(table: &str) -> [String; 4] {
    [
        format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"),
        format!(
            "CREATE POLICY tenant_isolation ON {table} \
             USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
        ),
        format!(
            "CREATE POLICY cross_tenant_access ON {table} \
             USING ({CROSS_TENANT_ON}) WITH CHECK ({CROSS_TENANT_ON})"
        ),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APPLICATION_ROLE}"),
    ]
}
