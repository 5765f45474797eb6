//! The worker's sweep deletes sessions, invitations and webhook events that ended more
//! than 30 days ago,
//! in every tenant, and keeps the rest.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use service::maintenance::{self, Removed};
use tests::TestApp;

async fn ids(app: &TestApp, table: &str) -> Vec<String> {
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT id::text AS id FROM {table} ORDER BY id"),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "id").unwrap())
        .collect()
}

async fn execute(app: &TestApp, sql: String) {
    app.db.execute_unprepared(&sql).await.unwrap();
}

async fn invite(app: &TestApp, token: &str, email: &str) -> String {
    let data = app
        .data(
            Some(token),
            "mutation($input: InviteMemberInput!) { inviteMember(input: $input) {
                invitation { id } } }",
            json!({ "input": { "email": email, "role": "MEMBER" } }),
        )
        .await;
    data["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const WEBHOOK: &str = "01900000-0000-7000-8000-000000000001";
const DELIVERED: &str = "01900000-0000-7000-8000-000000000002";
const PENDING: &str = "01900000-0000-7000-8000-000000000003";

#[tokio::test]
async fn sweep_removes_long_ended_rows_only() {
    let app = TestApp::spawn().await.unwrap();
    let alice = app.register("alice@example.com", "Alice Org").await;
    let bob = app.register("bob@example.com", "Bob Org").await;
    let alice_again = app.login("alice@example.com").await;
    let sessions = ids(&app, "sessions").await;
    assert_eq!(sessions.len(), 3);

    // Bob's session expired 31 days ago and Alice's first was revoked 40 days ago.
    execute(
        &app,
        format!(
            "UPDATE sessions SET expires_at = now() - interval '31 days'
         WHERE user_id = '{}'",
            bob.user_id
        ),
    )
    .await;
    execute(
        &app,
        format!(
            "UPDATE sessions SET revoked_at = now() - interval '40 days'
         WHERE user_id = '{}' AND id = (SELECT id FROM sessions WHERE user_id = '{}' ORDER BY id LIMIT 1)",
            alice.user_id, alice.user_id
        ),
    )
    .await;

    let expired = invite(&app, &alice.access_token, "old@example.com").await;
    let revoked = invite(&app, &bob.access_token, "gone@example.com").await;
    let recent = invite(&app, &alice.access_token, "recent@example.com").await;
    let pending = invite(&app, &bob.access_token, "pending@example.com").await;
    execute(
        &app,
        format!(
            "UPDATE invitations SET expires_at = now() - interval '31 days' WHERE id = '{expired}'"
        ),
    )
    .await;
    execute(
        &app,
        format!(
            "UPDATE invitations SET revoked_at = now() - interval '45 days' WHERE id = '{revoked}'"
        ),
    )
    .await;
    execute(
        &app,
        format!(
            "UPDATE invitations SET revoked_at = now() - interval '1 day' WHERE id = '{recent}'"
        ),
    )
    .await;

    // Webhook events of 31 days ago: one delivered, one still pending its retries.
    let tenant = &alice.tenant_id;
    execute(
        &app,
        format!(
            "INSERT INTO webhooks (id, tenant_id, url, event_types, secret_encrypted,
                created_at, updated_at)
             VALUES ('{WEBHOOK}', '{tenant}', 'https://hooks.example.com/', '[]', 'x',
                now(), now());
             INSERT INTO webhook_events (id, tenant_id, event_type, payload, created_at)
             VALUES ('{DELIVERED}', '{tenant}', 'webhook.test', '{{}}',
                     now() - interval '31 days'),
                    ('{PENDING}', '{tenant}', 'webhook.test', '{{}}',
                     now() - interval '31 days');
             INSERT INTO webhook_messages (id, tenant_id, webhook_id, event_id, status,
                created_at, updated_at)
             VALUES (gen_random_uuid(), '{tenant}', '{WEBHOOK}', '{DELIVERED}', 'delivered',
                     now(), now()),
                    (gen_random_uuid(), '{tenant}', '{WEBHOOK}', '{PENDING}', 'pending',
                     now(), now())"
        ),
    )
    .await;

    let removed = maintenance::remove_ended(&app.platform).await.unwrap();
    assert_eq!(
        removed,
        Removed {
            sessions: 2,
            invitations: 2,
            webhook_events: 1,
        }
    );
    assert_eq!(ids(&app, "webhook_events").await, vec![PENDING.to_owned()]);
    assert_eq!(ids(&app, "webhook_messages").await.len(), 1);
    let mut remaining = vec![recent, pending];
    remaining.sort();
    assert_eq!(ids(&app, "invitations").await, remaining);
    assert_eq!(ids(&app, "sessions").await.len(), 1);

    // The session left is Alice's newest, which still signs her in.
    let me = app
        .data(
            Some(&alice_again.access_token),
            "{ me { user { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["user"]["email"], "alice@example.com");
    let again = maintenance::remove_ended(&app.platform).await.unwrap();
    assert_eq!(again, Removed::default());
    app.shutdown().await;
}
