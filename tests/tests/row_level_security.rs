//! PostgreSQL itself keeps tenants apart: every table with a `tenant_id` has forced
//! row-level security, and the application's role reads only the rows of the tenant its
//! transaction names.

use std::collections::BTreeSet;

use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait,
};
use service::{Platform, Settings};
use tests::TestApp;

/// Tables that have a `tenant_id` column, read from the catalogue.
async fn tenant_tables(db: &DatabaseConnection) -> BTreeSet<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT table_name::text AS name FROM information_schema.columns \
             WHERE table_schema = 'public' AND column_name = 'tenant_id'",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect()
}

/// Counts the rows of `table` that belong to `tenant_id`, as `db` reads them.
async fn count_rows<C: ConnectionTrait>(db: &C, table: &str, tenant_id: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT count(*) AS rows FROM {table} WHERE tenant_id = '{tenant_id}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "rows").unwrap()
}

/// Begins a transaction as the application's role with `app.tenant_id` set to `tenant`.
async fn transaction_for(db: &DatabaseConnection, tenant: &str) -> DatabaseTransaction {
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT set_config('app.tenant_id', '{tenant}', true)"
    ))
    .await
    .unwrap();
    txn
}

#[tokio::test]
async fn tenant_tables_force_row_security() {
    let app = TestApp::spawn().await.unwrap();
    let tables = tenant_tables(&app.db).await;
    assert!(tables.contains("messages"));
    assert!(tables.contains("usage_records"));

    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT c.relname::text AS name, c.relrowsecurity AS enabled, \
                    c.relforcerowsecurity AS forced, \
                    array_agg(p.polname::text ORDER BY p.polname) \
                        FILTER (WHERE p.polname IS NOT NULL) AS policies \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_policy p ON p.polrelid = c.oid \
             WHERE n.nspname = 'public' AND c.relkind = 'r' \
             GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity",
        ))
        .await
        .unwrap();
    let mut checked = BTreeSet::new();
    for row in &rows {
        let name: String = row.try_get("", "name").unwrap();
        if !tables.contains(&name) {
            continue;
        }
        let enabled: bool = row.try_get("", "enabled").unwrap();
        let forced: bool = row.try_get("", "forced").unwrap();
        let policies: Vec<String> = row.try_get("", "policies").unwrap_or_default();
        assert!(enabled, "{name} does not enable row-level security");
        assert!(forced, "{name} does not force row-level security");
        assert!(
            policies.contains(&"tenant_isolation".to_owned()),
            "{name} has no tenant_isolation policy: {policies:?}"
        );
        checked.insert(name);
    }
    assert_eq!(
        checked, tables,
        "tables with tenant_id that were not checked"
    );

    // The policy compares tenant_id with the transaction's setting, for reads and writes.
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT pg_get_expr(polqual, polrelid) AS reads, \
                    pg_get_expr(polwithcheck, polrelid) AS writes \
             FROM pg_policy WHERE polname = 'tenant_isolation' \
               AND polrelid = 'messages'::regclass",
        ))
        .await
        .unwrap()
        .unwrap();
    for column in ["reads", "writes"] {
        let expression: String = row.try_get("", column).unwrap();
        assert!(
            expression.contains("tenant_id") && expression.contains("app.tenant_id"),
            "{column}: {expression}"
        );
    }

    // The application's role escapes none of it.
    let role = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT rolsuper AS superuser, rolbypassrls AS bypasses, \
                        EXISTS (SELECT FROM pg_tables WHERE schemaname = 'public' \
                                AND tableowner = rolname) AS owns_tables \
                 FROM pg_roles WHERE rolname = '{}'",
                migration::APPLICATION_ROLE
            ),
        ))
        .await
        .unwrap()
        .expect("the migrations create the application role");
    for flag in ["superuser", "bypasses", "owns_tables"] {
        assert!(!role.try_get::<bool>("", flag).unwrap(), "{flag}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn app_role_reads_one_tenant() {
    let app = TestApp::spawn().await.unwrap();
    let alice = app.register("alice@example.com", "Alice Org").await;
    let bob = app.register("bob@example.com", "Bob Org").await;
    for session in [&alice, &bob] {
        let agent = app.create_agent(&session.access_token, "Be brief.").await;
        let conversation = app.create_conversation(&session.access_token, &agent).await;
        let message = app
            .send_message(&session.access_token, &conversation, "hello")
            .await;
        app.wait_for_reply(&session.access_token, &message).await;
    }
    let tables = tenant_tables(&app.db).await;
    let (a, b) = (alice.tenant_id.as_str(), bob.tenant_id.as_str());
    // Bob's tenant has rows in these tables, so an empty result below means hidden rows.
    for table in [
        "agents",
        "conversations",
        "messages",
        "memberships",
        "audit_logs",
    ] {
        assert!(count_rows(&app.db, table, b).await > 0, "{table}");
    }

    let application = Database::connect(app.application_database_url())
        .await
        .unwrap();
    let txn = transaction_for(&application, a).await;
    for table in &tables {
        assert_eq!(
            count_rows(&txn, table, b).await,
            0,
            "{table} shows Bob's rows"
        );
    }
    for table in ["agents", "conversations", "messages", "memberships"] {
        assert!(
            count_rows(&txn, table, a).await > 0,
            "{table} hides Alice's rows"
        );
    }
    txn.commit().await.unwrap();

    // No setting, or an empty one, matches no row at all.
    let total = |table: &str| format!("SELECT count(*) AS rows FROM {table}");
    for txn in [
        application.begin().await.unwrap(),
        transaction_for(&application, "").await,
    ] {
        let row = txn
            .query_one_raw(Statement::from_string(
                txn.get_database_backend(),
                total("messages"),
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i64>("", "rows").unwrap(), 0);
        txn.rollback().await.unwrap();
    }

    // A row of Bob's cannot be written from Alice's transaction, nor changed or deleted.
    let txn = transaction_for(&application, a).await;
    let insert = txn
        .execute_unprepared(&format!(
            "INSERT INTO tasks (id, tenant_id, title, status, priority, created_at, updated_at) \
             VALUES (gen_random_uuid(), '{b}', 'planted', 'todo', 'medium', now(), now())"
        ))
        .await
        .unwrap_err();
    assert!(
        insert.to_string().contains("row-level security"),
        "{insert}"
    );
    txn.rollback().await.unwrap();
    let txn = transaction_for(&application, a).await;
    let updated = txn
        .execute_unprepared(&format!(
            "UPDATE agents SET name = 'taken' WHERE tenant_id = '{b}'"
        ))
        .await
        .unwrap();
    let deleted = txn
        .execute_unprepared(&format!("DELETE FROM messages WHERE tenant_id = '{b}'"))
        .await
        .unwrap();
    assert_eq!((updated.rows_affected(), deleted.rows_affected()), (0, 0));
    txn.commit().await.unwrap();
    assert!(count_rows(&app.db, "messages", b).await > 0);
    application.close().await.unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn production_rejects_bypassing_role() {
    let app = TestApp::spawn().await.unwrap();
    let settings_for = |database_url: String| {
        let env = [
            ("APP_ENV", "production".to_owned()),
            ("DATABASE_URL", database_url),
            ("SECRET_KEY", "k".repeat(40)),
            (
                "ENCRYPTION_KEY",
                "ZGV2ZWxvcG1lbnQtb25seS1lbmNyeXB0aW9uLWtleSE=".to_owned(),
            ),
        ];
        Settings::from_lookup(|name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .unwrap()
    };

    let superuser = Platform::connect(settings_for(app.superuser_database_url()))
        .await
        .unwrap();
    let error = superuser.check_database_role().await.unwrap_err();
    assert!(
        error.to_string().contains("is a superuser")
            && error.to_string().contains(migration::APPLICATION_ROLE),
        "{error}"
    );

    let application = Platform::connect(settings_for(app.application_database_url()))
        .await
        .unwrap();
    application.check_database_role().await.unwrap();
    app.shutdown().await;
}
