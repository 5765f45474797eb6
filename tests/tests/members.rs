//! Invitations, role changes and removal take effect at once; the last owner stays; users
//! switch tenants and manage their own sessions.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tests::{MEMBER_PASSWORD, Session, TestApp, error_code, error_message};

const INVITE: &str = "mutation($input: InviteMemberInput!) { inviteMember(input: $input) {
    token invitation { id email role expiresAt } } }";
const ACCEPT: &str = "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) {
    accessToken refreshToken user { id email } tenant { id } role } }";
const CHANGE_ROLE: &str = "mutation($input: ChangeMemberRoleInput!) {
    changeMemberRole(input: $input) { member { user { id } role } } }";
const REMOVE: &str = "mutation($input: RemoveMemberInput!) {
    removeMember(input: $input) { member { user { email } role } } }";
const CREATE_TASK: &str = "mutation { createTask(input: { title: \"Check\" }) { task { id } } }";
const ME: &str = "{ me { role tenant { id } } }";

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
}

async fn invite(app: &TestApp, token: &str, email: &str, role: &str) -> Value {
    app.graphql(
        Some(token),
        INVITE,
        json!({ "input": { "email": email, "role": role } }),
    )
    .await
}

async fn accept(app: &TestApp, caller: Option<&str>, input: Value) -> Value {
    app.graphql(caller, ACCEPT, json!({ "input": input })).await
}

async fn set_role(app: &TestApp, token: &str, user_id: &str, role: &str) -> Value {
    app.graphql(
        Some(token),
        CHANGE_ROLE,
        json!({ "input": { "userId": user_id, "role": role } }),
    )
    .await
}

#[tokio::test]
async fn invitation_creates_account_once() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("owner@example.com", "Acme").await;

    let invited = invite(
        &app,
        &owner.access_token,
        "New.Person@Example.com",
        "MEMBER",
    )
    .await;
    let payload = &invited["data"]["inviteMember"];
    let token = payload["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("inv_"), "{token}");
    assert_eq!(payload["invitation"]["email"], "new.person@example.com");
    assert_eq!(payload["invitation"]["role"], "MEMBER");

    // Only the token's hash is stored.
    let stored = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT token_hash FROM invitations".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let hash: String = stored.try_get("", "token_hash").unwrap();
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains(&token[4..]));

    let missing_password = accept(&app, None, json!({ "token": token, "fullName": "New" })).await;
    assert_eq!(field(&missing_password), "password", "{missing_password}");

    let accepted = accept(
        &app,
        None,
        json!({ "token": token, "fullName": "New Person", "password": MEMBER_PASSWORD }),
    )
    .await;
    let session = &accepted["data"]["acceptInvitation"];
    assert_eq!(session["role"], "MEMBER", "{accepted}");
    assert_eq!(session["tenant"]["id"], owner.tenant_id.as_str());
    assert_eq!(session["user"]["email"], "new.person@example.com");
    let member_token = session["accessToken"].as_str().unwrap();
    let created = app
        .graphql(Some(member_token), CREATE_TASK, json!({}))
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");

    let again = accept(
        &app,
        None,
        json!({ "token": token, "fullName": "New Person", "password": MEMBER_PASSWORD }),
    )
    .await;
    assert_eq!(field(&again), "token", "{again}");
    assert!(
        error_message(&again).contains("already been accepted"),
        "{again}"
    );

    let members = app
        .data(
            Some(&owner.access_token),
            "{ members { edges { node { user { email } role } } } }",
            json!({}),
        )
        .await;
    let roles: Vec<(String, String)> = members["members"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (
                edge["node"]["user"]["email"].as_str().unwrap().to_owned(),
                edge["node"]["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("owner@example.com".to_owned(), "OWNER".to_owned()),
            ("new.person@example.com".to_owned(), "MEMBER".to_owned()),
        ]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn existing_user_joins_second_tenant() {
    let app = TestApp::spawn().await.unwrap();
    let first = app.register("first@example.com", "First").await;
    let second = app.register("second@example.com", "Second").await;

    let invited = invite(&app, &first.access_token, "second@example.com", "VIEWER").await;
    let token = invited["data"]["inviteMember"]["token"].as_str().unwrap();

    let wrong = accept(
        &app,
        None,
        json!({ "token": token, "password": "not-the-password" }),
    )
    .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED", "{wrong}");
    let by_stranger = accept(&app, Some(&first.access_token), json!({ "token": token })).await;
    assert_eq!(error_code(&by_stranger), "FORBIDDEN", "{by_stranger}");

    // Signed in as the invited user, no password is needed.
    let accepted = accept(&app, Some(&second.access_token), json!({ "token": token })).await;
    let joined = &accepted["data"]["acceptInvitation"];
    assert_eq!(joined["role"], "VIEWER", "{accepted}");
    assert_eq!(joined["tenant"]["id"], first.tenant_id.as_str());

    let tenants = app
        .data(
            Some(&second.access_token),
            "{ myTenants { tenant { id name } role } }",
            json!({}),
        )
        .await;
    let tenants = tenants["myTenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2);
    assert_eq!(tenants[0]["tenant"]["name"], "Second");
    assert_eq!(tenants[0]["role"], "OWNER");
    assert_eq!(tenants[1]["tenant"]["name"], "First");
    assert_eq!(tenants[1]["role"], "VIEWER");

    let switched = app
        .data(
            Some(&second.access_token),
            "mutation($input: SwitchTenantInput!) { switchTenant(input: $input) {
                accessToken tenant { id } role } }",
            json!({ "input": { "tenantId": first.tenant_id } }),
        )
        .await;
    let switched = &switched["switchTenant"];
    assert_eq!(switched["tenant"]["id"], first.tenant_id.as_str());
    assert_eq!(switched["role"], "VIEWER");
    let viewer_token = switched["accessToken"].as_str().unwrap();
    let me = app.data(Some(viewer_token), ME, json!({})).await;
    assert_eq!(me["me"]["tenant"]["id"], first.tenant_id.as_str());
    let denied = app
        .graphql(Some(viewer_token), CREATE_TASK, json!({}))
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN", "{denied}");

    // A tenant the user does not belong to reads as not found.
    let third = app.register("third@example.com", "Third").await;
    let foreign = app
        .graphql(
            Some(&second.access_token),
            "mutation($input: SwitchTenantInput!) { switchTenant(input: $input) { role } }",
            json!({ "input": { "tenantId": third.tenant_id } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND", "{foreign}");

    // Login chooses the tenant too.
    let login = app
        .data(
            None,
            "mutation($input: LoginInput!) { login(input: $input) { tenant { name } role } }",
            json!({ "input": { "email": "second@example.com", "password": "correct horse battery",
                               "tenantId": first.tenant_id } }),
        )
        .await;
    assert_eq!(login["login"]["tenant"]["name"], "First");
    assert_eq!(login["login"]["role"], "VIEWER");
    app.shutdown().await;
}

#[tokio::test]
async fn revoked_and_expired_invitations_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("inviter@example.com", "Inviter").await;
    let token = owner.access_token.as_str();

    let first = invite(&app, token, "late@example.com", "MEMBER").await;
    let first_token = first["data"]["inviteMember"]["token"].as_str().unwrap();
    // Inviting the same address again replaces the pending invitation.
    let second = invite(&app, token, "late@example.com", "ADMIN").await;
    let second_id = second["data"]["inviteMember"]["invitation"]["id"]
        .as_str()
        .unwrap();
    let second_token = second["data"]["inviteMember"]["token"].as_str().unwrap();
    let replaced = accept(
        &app,
        None,
        json!({ "token": first_token, "fullName": "Late", "password": MEMBER_PASSWORD }),
    )
    .await;
    assert!(error_message(&replaced).contains("revoked"), "{replaced}");

    let pending = app
        .data(Some(token), "{ invitations { id role } }", json!({}))
        .await;
    assert_eq!(
        pending["invitations"],
        json!([{ "id": second_id, "role": "ADMIN" }])
    );

    let revoked = app
        .data(
            Some(token),
            "mutation($input: RevokeInvitationInput!) { revokeInvitation(input: $input) {
                invitation { revokedAt } } }",
            json!({ "input": { "id": second_id } }),
        )
        .await;
    assert!(revoked["revokeInvitation"]["invitation"]["revokedAt"].is_string());
    let after_revoke = accept(
        &app,
        None,
        json!({ "token": second_token, "fullName": "Late", "password": MEMBER_PASSWORD }),
    )
    .await;
    assert!(
        error_message(&after_revoke).contains("revoked"),
        "{after_revoke}"
    );

    let third = invite(&app, token, "late@example.com", "MEMBER").await;
    let third_token = third["data"]["inviteMember"]["token"].as_str().unwrap();
    app.db
        .execute_unprepared("UPDATE invitations SET expires_at = now() - interval '1 second'")
        .await
        .unwrap();
    let expired = accept(
        &app,
        None,
        json!({ "token": third_token, "fullName": "Late", "password": MEMBER_PASSWORD }),
    )
    .await;
    assert!(error_message(&expired).contains("expired"), "{expired}");

    let unknown = accept(
        &app,
        None,
        json!({ "token": "inv_unknown", "fullName": "Late", "password": MEMBER_PASSWORD }),
    )
    .await;
    assert_eq!(field(&unknown), "token", "{unknown}");

    // No account was created by any of the rejected attempts.
    let accounts = app
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*)::bigint AS n FROM users WHERE email = 'late@example.com'".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accounts.try_get::<i64>("", "n").unwrap(), 0);

    let existing = invite(&app, token, "inviter@example.com", "MEMBER").await;
    assert_eq!(field(&existing), "email", "{existing}");
    let bad_email = invite(&app, token, "not-an-email", "MEMBER").await;
    assert_eq!(field(&bad_email), "email", "{bad_email}");
    app.shutdown().await;
}

#[tokio::test]
async fn role_change_applies_to_existing_token() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("boss@example.com", "Roles").await;
    let member = app
        .add_member(&owner.access_token, "worker@example.com", "MEMBER")
        .await;

    let created = app
        .graphql(Some(&member.access_token), CREATE_TASK, json!({}))
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");

    let changed = set_role(&app, &owner.access_token, &member.user_id, "VIEWER").await;
    assert_eq!(
        changed["data"]["changeMemberRole"]["member"]["role"],
        "VIEWER"
    );
    // The member's token was issued as MEMBER; the new role applies to it at once.
    let denied = app
        .graphql(Some(&member.access_token), CREATE_TASK, json!({}))
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN", "{denied}");
    let me = app.data(Some(&member.access_token), ME, json!({})).await;
    assert_eq!(me["me"]["role"], "VIEWER");

    set_role(&app, &owner.access_token, &member.user_id, "ADMIN").await;
    let pending = app
        .graphql(
            Some(&member.access_token),
            "{ invitations { id } }",
            json!({}),
        )
        .await;
    assert_eq!(pending["errors"], Value::Null, "{pending}");
    app.shutdown().await;
}

#[tokio::test]
async fn owner_rules_hold() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("sole-owner@example.com", "Owners").await;
    let admin = app
        .add_member(&owner.access_token, "admin@example.com", "ADMIN")
        .await;

    let demote_self = set_role(&app, &owner.access_token, &owner.user_id, "ADMIN").await;
    assert_eq!(field(&demote_self), "role", "{demote_self}");
    assert!(
        error_message(&demote_self).contains("last owner"),
        "{demote_self}"
    );
    let remove_self = app
        .graphql(
            Some(&owner.access_token),
            REMOVE,
            json!({ "input": { "userId": owner.user_id } }),
        )
        .await;
    assert!(
        error_message(&remove_self).contains("last owner"),
        "{remove_self}"
    );
    let leave = app
        .graphql(
            Some(&owner.access_token),
            "mutation { leaveTenant { member { role } } }",
            json!({}),
        )
        .await;
    assert!(error_message(&leave).contains("last owner"), "{leave}");

    // Admins manage members but not owners.
    let by_admin = set_role(&app, &admin.access_token, &owner.user_id, "MEMBER").await;
    assert_eq!(error_code(&by_admin), "FORBIDDEN", "{by_admin}");
    let promote = set_role(&app, &admin.access_token, &admin.user_id, "OWNER").await;
    assert_eq!(error_code(&promote), "FORBIDDEN", "{promote}");
    let invite_owner = invite(&app, &admin.access_token, "x@example.com", "OWNER").await;
    assert_eq!(error_code(&invite_owner), "FORBIDDEN", "{invite_owner}");

    // With a second owner, the first may step down.
    let promoted = set_role(&app, &owner.access_token, &admin.user_id, "OWNER").await;
    assert_eq!(
        promoted["data"]["changeMemberRole"]["member"]["role"],
        "OWNER"
    );
    let stepped_down = set_role(&app, &owner.access_token, &owner.user_id, "ADMIN").await;
    assert_eq!(
        stepped_down["data"]["changeMemberRole"]["member"]["role"], "ADMIN",
        "{stepped_down}"
    );
    let last = set_role(&app, &admin.access_token, &admin.user_id, "MEMBER").await;
    assert!(error_message(&last).contains("last owner"), "{last}");
    app.shutdown().await;
}

#[tokio::test]
async fn removed_member_signed_out() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("remover@example.com", "Remove").await;
    let member = app
        .add_member(&owner.access_token, "gone@example.com", "MEMBER")
        .await;
    let viewer = app
        .add_member(&owner.access_token, "leaver@example.com", "VIEWER")
        .await;

    let removed = app
        .graphql(
            Some(&owner.access_token),
            REMOVE,
            json!({ "input": { "userId": member.user_id } }),
        )
        .await;
    assert_eq!(
        removed["data"]["removeMember"]["member"]["user"]["email"], "gone@example.com",
        "{removed}"
    );
    let after = app.graphql(Some(&member.access_token), ME, json!({})).await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");
    let refreshed = refresh(&app, &member).await;
    assert_eq!(error_code(&refreshed), "UNAUTHENTICATED", "{refreshed}");

    let left = app
        .graphql(
            Some(&viewer.access_token),
            "mutation { leaveTenant { member { role } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        left["data"]["leaveTenant"]["member"]["role"], "VIEWER",
        "{left}"
    );
    let after_leaving = app.graphql(Some(&viewer.access_token), ME, json!({})).await;
    assert_eq!(error_code(&after_leaving), "UNAUTHENTICATED");

    let members = app
        .data(
            Some(&owner.access_token),
            "{ members { edges { node { user { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(members["members"]["edges"].as_array().unwrap().len(), 1);

    // Invited again, the same account joins with the new role.
    let invited = invite(&app, &owner.access_token, "gone@example.com", "VIEWER").await;
    let token = invited["data"]["inviteMember"]["token"].as_str().unwrap();
    let back = accept(
        &app,
        None,
        json!({ "token": token, "password": MEMBER_PASSWORD }),
    )
    .await;
    let back_token = back["data"]["acceptInvitation"]["accessToken"]
        .as_str()
        .unwrap();
    let me = app.data(Some(back_token), ME, json!({})).await;
    assert_eq!(me["me"]["role"], "VIEWER");
    app.shutdown().await;
}

async fn refresh(app: &TestApp, session: &Session) -> Value {
    app.graphql(
        None,
        "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) { accessToken } }",
        json!({ "input": { "refreshToken": session.refresh_token } }),
    )
    .await
}

#[tokio::test]
async fn sessions_listed_and_revoked() {
    let app = TestApp::spawn().await.unwrap();
    let first = app.register("sessions@example.com", "Sessions").await;
    let login = "mutation { login(input: { email: \"sessions@example.com\",
        password: \"correct horse battery\" }) { accessToken refreshToken user { id }
        tenant { id } } }";
    let second = Session::from_payload(&app.data(None, login, json!({})).await["login"]);
    let third = Session::from_payload(&app.data(None, login, json!({})).await["login"]);

    let listed = app
        .data(
            Some(&first.access_token),
            "{ mySessions { id current } }",
            json!({}),
        )
        .await;
    let sessions = listed["mySessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1,
        "{listed}"
    );
    let second_id = sessions[1]["id"].as_str().unwrap();

    let revoked = app
        .data(
            Some(&first.access_token),
            "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) {
                session { id revokedAt } } }",
            json!({ "input": { "id": second_id } }),
        )
        .await;
    assert!(revoked["revokeSession"]["session"]["revokedAt"].is_string());
    let with_second = app.graphql(Some(&second.access_token), ME, json!({})).await;
    assert_eq!(error_code(&with_second), "UNAUTHENTICATED", "{with_second}");

    // Another user's session reads as not found.
    let stranger = app.register("stranger@example.com", "Stranger").await;
    let foreign = app
        .graphql(
            Some(&stranger.access_token),
            "mutation($input: RevokeSessionInput!) { revokeSession(input: $input) {
                session { id } } }",
            json!({ "input": { "id": sessions[0]["id"] } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND", "{foreign}");

    let change = "mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
        revokedSessions } }";
    let wrong = app
        .graphql(
            Some(&first.access_token),
            change,
            json!({ "input": { "currentPassword": "wrong-password", "newPassword": "new-password-2" } }),
        )
        .await;
    assert_eq!(field(&wrong), "currentPassword", "{wrong}");
    let short = app
        .graphql(
            Some(&first.access_token),
            change,
            json!({ "input": { "currentPassword": "correct horse battery", "newPassword": "short" } }),
        )
        .await;
    assert_eq!(field(&short), "newPassword", "{short}");

    let changed = app
        .data(
            Some(&first.access_token),
            change,
            json!({ "input": { "currentPassword": "correct horse battery",
                               "newPassword": "new-password-2" } }),
        )
        .await;
    // The third session is signed out; the second was already revoked.
    assert_eq!(changed["changePassword"]["revokedSessions"], 1);
    let with_third = app.graphql(Some(&third.access_token), ME, json!({})).await;
    assert_eq!(error_code(&with_third), "UNAUTHENTICATED");
    let third_refresh = refresh(&app, &third).await;
    assert_eq!(error_code(&third_refresh), "UNAUTHENTICATED");
    let with_first = app.graphql(Some(&first.access_token), ME, json!({})).await;
    assert_eq!(with_first["errors"], Value::Null, "{with_first}");

    let old_login = app.graphql(None, login, json!({})).await;
    assert_eq!(error_code(&old_login), "UNAUTHENTICATED");
    app.shutdown().await;
}
