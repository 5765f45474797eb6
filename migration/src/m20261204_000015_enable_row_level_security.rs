//! Makes PostgreSQL itself keep tenants apart. The application connects as
//! `task_assistant_app`, a role that owns nothing and may read and write rows but not
//! change the schema. Every table with a `tenant_id` has forced row-level security and
//! two policies:
//!
//! - `tenant_isolation`: a row is visible, and may be written, only while the transaction's
//!   `app.tenant_id` setting names its tenant. A missing or empty setting matches no row.
//! - `cross_tenant_access`: every row, while `app.cross_tenant` is `on`. The application
//!   sets it only for lookups by a secret that names the tenant (refresh tokens, API keys,
//!   invitations) and for the worker's sweeps over all tenants.
//!
//! `sessions` and `memberships` have a third policy, `account_access`: a user's own rows in
//! every tenant, while `app.user_id` names the user. Signing in, listing one's tenants and
//! sessions, and switching tenants need no more than that.
//!
//! The settings are set with `set_config(name, value, true)`, so they end with the
//! transaction and never leak to the next user of a pooled connection.
//!
//! The role is created with LOGIN and without a password: on a server that asks for
//! passwords nobody can sign in as it until an operator sets one. Creating it needs the
//! CREATEROLE privilege; where the migration role lacks it, an operator creates the role
//! first and this migration only grants to it. The role is shared by every database of the
//! server, so `down` takes its privileges on this database away but keeps the role.
//!
//! Row-level security is forced, so it applies to the schema owner as well. A later
//! migration that changes rows of these tables as a role other than a superuser sets
//! `app.cross_tenant` first.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The role the api and worker connect as.
pub const APPLICATION_ROLE: &str = "task_assistant_app";

/// Every table that has a `tenant_id` column when this migration runs.
const TENANT_TABLES: [&str; 15] = [
    "agents",
    "api_keys",
    "audit_logs",
    "conversations",
    "invitations",
    "memberships",
    "messages",
    "model_prices",
    "provider_credentials",
    "sessions",
    "subscriptions",
    "tasks",
    "tenant_settings",
    "usage_counters",
    "usage_records",
];

pub(crate) const TENANT_MATCHES: &str =
    "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid";
pub(crate) const CROSS_TENANT_ON: &str = "current_setting('app.cross_tenant', true) = 'on'";

/// Tables whose rows also belong to one user, who reads them in every tenant.
const ACCOUNT_TABLES: [&str; 2] = ["memberships", "sessions"];
const USER_MATCHES: &str = "user_id = NULLIF(current_setting('app.user_id', true), '')::uuid";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let role = APPLICATION_ROLE;
        // Two databases migrated at once (tests do this) may both find the role missing;
        // the one that loses the race gets a duplicate error and goes on.
        let mut statements = vec![format!(
            "DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$"
        )];
        statements.extend([
            format!("GRANT USAGE ON SCHEMA public TO {role}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
            ),
            // The api reads which migrations ran for its readiness check, and changes none.
            format!("REVOKE INSERT, UPDATE, DELETE ON seaql_migrations FROM {role}"),
            format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
            // Tables of later migrations, created by the same migration role.
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
            ),
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
                 GRANT USAGE, SELECT ON SEQUENCES TO {role}"
            ),
        ]);
        for table in TENANT_TABLES {
            statements.extend([
                format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"),
                format!(
                    "CREATE POLICY tenant_isolation ON {table} \
                     USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
                ),
                format!(
                    "CREATE POLICY cross_tenant_access ON {table} \
                     USING ({CROSS_TENANT_ON}) WITH CHECK ({CROSS_TENANT_ON})"
                ),
            ]);
        }
        for table in ACCOUNT_TABLES {
            statements.push(format!(
                "CREATE POLICY account_access ON {table} \
                 USING ({USER_MATCHES}) WITH CHECK ({USER_MATCHES})"
            ));
        }
        execute_all(manager, &statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let role = APPLICATION_ROLE;
        let mut statements: Vec<String> = ACCOUNT_TABLES
            .iter()
            .map(|table| format!("DROP POLICY IF EXISTS account_access ON {table}"))
            .collect();
        for table in TENANT_TABLES {
            statements.extend([
                format!("DROP POLICY IF EXISTS cross_tenant_access ON {table}"),
                format!("DROP POLICY IF EXISTS tenant_isolation ON {table}"),
                format!(
                    "ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"
                ),
            ]);
        }
        statements.extend([
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
                 REVOKE USAGE, SELECT ON SEQUENCES FROM {role}"
            ),
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
                 REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}"
            ),
            format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}"),
            format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
            format!("REVOKE USAGE ON SCHEMA public FROM {role}"),
        ]);
        execute_all(manager, &statements).await
    }
}

async fn execute_all(manager: &SchemaManager<'_>, statements: &[String]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
