//! Removal of rows that no operation reads any more: sessions and invitations that ended
//! longer ago than [`KEEP_ENDED_FOR_DAYS`]. The worker's sweep runs it for every tenant.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use tracing::info;

use crate::{Platform, error::ServiceResult};

/// Days that an ended session or invitation stays in the database, so that an admin can
/// still look it up while reading recent audit rows that name it.
pub const KEEP_ENDED_FOR_DAYS: i32 = 30;

/// The rows one run removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub sessions: u64,
    pub invitations: u64,
}

/// Deletes sessions that expired or were revoked, and invitations that expired, were
/// revoked or were accepted, more than [`KEEP_ENDED_FOR_DAYS`] ago, in every tenant.
pub async fn remove_ended(platform: &Platform) -> ServiceResult<Removed> {
    const SESSIONS: &str = r#"
        DELETE FROM sessions
        WHERE expires_at < now() - make_interval(days => $1)
           OR revoked_at < now() - make_interval(days => $1)
    "#;
    const INVITATIONS: &str = r#"
        DELETE FROM invitations
        WHERE expires_at < now() - make_interval(days => $1)
           OR revoked_at < now() - make_interval(days => $1)
           OR accepted_at < now() - make_interval(days => $1)
    "#;

    let statement = |sql: &str| {
        Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, [KEEP_ENDED_FOR_DAYS.into()])
    };
    // Every tenant's rows: the sweep runs for the whole platform.
    let txn = platform.cross_tenant_tx().await?;
    let sessions = txn.execute_raw(statement(SESSIONS)).await?.rows_affected();
    let invitations = txn
        .execute_raw(statement(INVITATIONS))
        .await?
        .rows_affected();
    txn.commit().await?;

    let removed = Removed {
        sessions,
        invitations,
    };
    if removed != Removed::default() {
        info!(
            sessions = removed.sessions,
            invitations = removed.invitations,
            "removed ended sessions and invitations"
        );
    }
    Ok(removed)
}
