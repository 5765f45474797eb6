//! Transactions under PostgreSQL row-level security.
//!
//! Every table with a `tenant_id` shows a role that is neither superuser nor owner only
//! the rows of the tenant named by the transaction's `app.tenant_id` setting, and no row
//! at all without it. Service code therefore reads and writes tenant data inside
//! [`Platform::tenant_tx`]. The few lookups that happen before the tenant is known, and
//! the worker's sweeps over all tenants, use [`Platform::cross_tenant_tx`] and still filter
//! by the key they look up.

use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult, Statement, TransactionTrait};
use tracing::warn;
use uuid::Uuid;

use crate::{
    Platform,
    config::Environment,
    context::TenantId,
    error::{ServiceError, ServiceResult},
};

impl Platform {
    /// Begins a transaction that reads and writes only `tenant`'s rows. Dropping it
    /// without [`DatabaseTransaction::commit`] rolls it back.
    pub async fn tenant_tx(&self, tenant: TenantId) -> ServiceResult<DatabaseTransaction> {
        let txn = self.db.begin().await?;
        // A Uuid formats as hexadecimal digits and hyphens, so it is safe inside quotes. The
        // unprepared form saves the round trip that preparing a statement costs.
        txn.execute_unprepared(&format!(
            "SELECT set_config('app.tenant_id', '{}', true)",
            tenant.as_uuid()
        ))
        .await?;
        Ok(txn)
    }

    /// Begins a transaction that reads `user`'s own sessions and memberships in every
    /// tenant, and, with `tenant`, that tenant's rows. For the operations on a person's
    /// account: signing in, listing and revoking sessions, listing and switching tenants.
    pub async fn account_tx(
        &self,
        user: Uuid,
        tenant: Option<TenantId>,
    ) -> ServiceResult<DatabaseTransaction> {
        let txn = self.db.begin().await?;
        let tenant = tenant.map(|tenant| tenant.as_uuid().to_string());
        txn.execute_unprepared(&format!(
            "SELECT set_config('app.user_id', '{user}', true), \
                    set_config('app.tenant_id', '{}', true)",
            tenant.unwrap_or_default()
        ))
        .await?;
        Ok(txn)
    }

    /// Begins a transaction that reads every tenant's rows. Only for lookups by a secret that
    /// names the tenant (refresh tokens, API keys, invitations) and for sweeps over all
    /// tenants (usage counting, message retention, closing abandoned replies, re-encrypting
    /// credentials).
    pub async fn cross_tenant_tx(&self) -> ServiceResult<DatabaseTransaction> {
        let txn = self.db.begin().await?;
        txn.execute_unprepared("SELECT set_config('app.cross_tenant', 'on', true)")
            .await?;
        Ok(txn)
    }

    /// Checks that the database role of `DATABASE_URL` is subject to row-level security:
    /// not a superuser, without BYPASSRLS, and owning no table. In production a role that
    /// escapes it stops the process; in development it is logged. A database that does
    /// not respond is left to the health check.
    pub async fn check_database_role(&self) -> ServiceResult<()> {
        #[derive(FromQueryResult)]
        struct RoleRow {
            name: String,
            superuser: bool,
            bypasses: bool,
            owns_tables: bool,
        }
        let statement = Statement::from_string(
            self.db.get_database_backend(),
            "SELECT rolname AS name, rolsuper AS superuser, rolbypassrls AS bypasses, \
             EXISTS (SELECT FROM pg_tables WHERE schemaname = 'public' \
                     AND tableowner = current_user) AS owns_tables \
             FROM pg_roles WHERE rolname = current_user",
        );
        let row = match RoleRow::find_by_statement(statement).one(&self.db).await {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(()),
            Err(error) => {
                warn!(%error, "could not check the database role for row-level security");
                return Ok(());
            }
        };
        let reason = if row.superuser {
            "is a superuser"
        } else if row.bypasses {
            "has BYPASSRLS"
        } else if row.owns_tables {
            "owns tables of the schema"
        } else {
            return Ok(());
        };
        let message = format!(
            "DATABASE_URL signs in as role {}, which {reason}, so row-level security does \
             not keep tenants apart; use the role task_assistant_app that the migrations \
             create",
            row.name
        );
        if self.settings.environment == Environment::Production {
            return Err(ServiceError::internal(message));
        }
        warn!("{message}");
        Ok(())
    }
}
