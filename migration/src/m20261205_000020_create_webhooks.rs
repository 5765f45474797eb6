//! Webhooks: tenants' endpoints, the events that happened (written in the transaction of
//! the change that caused them), one message per event and endpoint (its attempts share
//! one `webhook-id`), and a row per delivery attempt.

use sea_orm_migration::prelude::*;

use crate::m20261205_000017_create_tools_and_agent_runs::tenant_policies;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 4] = [
    "webhooks",
    "webhook_events",
    "webhook_messages",
    "webhook_deliveries",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut statements: Vec<String> = [
            "CREATE TABLE webhooks (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                url text NOT NULL,
                description text,
                event_types jsonb NOT NULL,
                secret_encrypted text NOT NULL,
                previous_secret_encrypted text,
                previous_secret_expires_at timestamptz,
                enabled boolean NOT NULL DEFAULT true,
                disabled_reason text,
                consecutive_failures integer NOT NULL DEFAULT 0,
                created_by uuid REFERENCES users (id) ON DELETE SET NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            )",
            "CREATE INDEX webhooks_tenant_id_idx ON webhooks (tenant_id)",
            "CREATE TABLE webhook_events (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                event_type text NOT NULL,
                payload jsonb NOT NULL,
                created_at timestamptz NOT NULL
            )",
            "CREATE INDEX webhook_events_tenant_id_created_at_idx
                ON webhook_events (tenant_id, created_at)",
            "CREATE TABLE webhook_messages (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                event_id uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
                status text NOT NULL
                    CONSTRAINT webhook_messages_status_check
                    CHECK (status IN ('pending', 'delivered', 'failed')),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz,
                enqueued_at timestamptz,
                delivered_at timestamptz,
                last_error text,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                CONSTRAINT webhook_messages_webhook_event_key UNIQUE (webhook_id, event_id)
            )",
            "CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at)
                WHERE status = 'pending'",
            "CREATE INDEX webhook_messages_event_id_idx ON webhook_messages (event_id)",
            "CREATE TABLE webhook_deliveries (
                id uuid PRIMARY KEY,
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                message_id uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
                webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                event_id uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
                attempt integer NOT NULL,
                status_code integer,
                succeeded boolean NOT NULL,
                duration_ms integer NOT NULL,
                response_excerpt text,
                error text,
                attempted_at timestamptz NOT NULL,
                CONSTRAINT webhook_deliveries_message_attempt_key UNIQUE (message_id, attempt)
            )",
            "CREATE INDEX webhook_deliveries_webhook_id_idx
                ON webhook_deliveries (webhook_id, attempted_at)",
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
        for table in TABLES.iter().rev() {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}
