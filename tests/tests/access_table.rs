//! Every operation of the schema is in the access table, and the table holds: the lowest
//! allowed role gets past it, and the role just below gets FORBIDDEN (or UNAUTHENTICATED,
//! below the viewer role).

use std::{collections::HashMap, time::Duration};

use api::graphql::access::{Access, access_of};
use async_graphql::parser::types::OperationType;
use entity::Role;
use serde_json::{Value, json};
use tests::{
    MEMBER_PASSWORD, Session, TestApp, TestOptions, error_code, error_message, graphql_ws,
};

const INTROSPECTION: &str = "{ __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { name kind
        fields { name args { name type { ...TypeRef } } type { ...TypeRef } }
        inputFields { name type { ...TypeRef } }
        enumValues { name } } } }
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name } } } } }";

/// The schema's types by name, from introspection.
struct Types(HashMap<String, Value>);

impl Types {
    fn get(&self, name: &str) -> &Value {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("type {name} missing"))
    }

    /// Returns a GraphQL literal of the given type reference, filling only required fields
    /// of input objects. Strings are one character, so that every input check rejects them
    /// before any write.
    fn literal(&self, type_ref: &Value) -> String {
        match type_ref["kind"].as_str().unwrap() {
            "NON_NULL" => self.literal(&type_ref["ofType"]),
            "LIST" => format!("[{}]", self.literal(&type_ref["ofType"])),
            "ENUM" => {
                let name = type_ref["name"].as_str().unwrap();
                self.get(name)["enumValues"][0]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
            "INPUT_OBJECT" => {
                let name = type_ref["name"].as_str().unwrap();
                let fields: Vec<String> = self.get(name)["inputFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|field| field["type"]["kind"] == "NON_NULL")
                    .map(|field| {
                        format!(
                            "{}: {}",
                            field["name"].as_str().unwrap(),
                            self.literal(&field["type"])
                        )
                    })
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
            _ => match type_ref["name"].as_str().unwrap() {
                "ID" => format!("\"{}\"", uuid::Uuid::new_v4()),
                "Int" | "BigInt" => "1".to_owned(),
                "Float" => "0.5".to_owned(),
                "Boolean" => "false".to_owned(),
                "DateTime" => "\"2026-01-01T00:00:00Z\"".to_owned(),
                _ => "\"x\"".to_owned(),
            },
        }
    }

    /// Returns whether a type reference ends in an object, interface or union.
    fn needs_selection(&self, type_ref: &Value) -> bool {
        match type_ref["kind"].as_str().unwrap() {
            "NON_NULL" | "LIST" => self.needs_selection(&type_ref["ofType"]),
            kind => matches!(kind, "OBJECT" | "INTERFACE" | "UNION"),
        }
    }
}

/// One root field of the schema, as a call with placeholder arguments.
struct Operation {
    kind: OperationType,
    name: String,
    document: String,
}

async fn operations(app: &TestApp) -> (Vec<Operation>, Vec<String>) {
    let schema = app.data(None, INTROSPECTION, json!({})).await;
    let schema = &schema["__schema"];
    let types = Types(
        schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ty| (ty["name"].as_str().unwrap().to_owned(), ty.clone()))
            .collect(),
    );

    let mut operations = Vec::new();
    let mut missing = Vec::new();
    for (kind, keyword, root) in [
        (OperationType::Query, "query", "queryType"),
        (OperationType::Mutation, "mutation", "mutationType"),
        (
            OperationType::Subscription,
            "subscription",
            "subscriptionType",
        ),
    ] {
        let root_name = schema[root]["name"].as_str().unwrap();
        for field in types.get(root_name)["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap().to_owned();
            if access_of(kind, &name).is_none() {
                missing.push(format!("{keyword} {name}"));
                continue;
            }
            let arguments: Vec<String> = field["args"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|arg| arg["type"]["kind"] == "NON_NULL")
                .map(|arg| {
                    format!(
                        "{}: {}",
                        arg["name"].as_str().unwrap(),
                        types.literal(&arg["type"])
                    )
                })
                .collect();
            let arguments = if arguments.is_empty() {
                String::new()
            } else {
                format!("({})", arguments.join(", "))
            };
            let selection = if types.needs_selection(&field["type"]) {
                " { __typename }"
            } else {
                ""
            };
            let document = format!("{keyword} {{ {name}{arguments}{selection} }}");
            operations.push(Operation {
                kind,
                name,
                document,
            });
        }
    }
    (operations, missing)
}

/// The tokens of one tenant's members, one per role.
struct Members {
    owner: Session,
    admin: Session,
    member: Session,
    viewer: Session,
}

impl Members {
    fn token(&self, role: Role) -> &str {
        match role {
            Role::Owner => &self.owner.access_token,
            Role::Admin => &self.admin.access_token,
            Role::Member => &self.member.access_token,
            Role::Viewer => &self.viewer.access_token,
        }
    }
}

/// The role one step below `role`, or `None` below the viewer role.
fn role_below(role: Role) -> Option<Role> {
    match role {
        Role::Owner => Some(Role::Admin),
        Role::Admin => Some(Role::Member),
        Role::Member => Some(Role::Viewer),
        Role::Viewer => None,
    }
}

/// Sends the operation with `token` (anonymous when `None`) and returns the error code and
/// message of the first error, or empty strings when there was none.
async fn call(app: &TestApp, operation: &Operation, token: Option<&str>) -> (String, String) {
    if operation.kind == OperationType::Subscription {
        let result = graphql_ws::collect_subscription(
            &app.ws_url(),
            token.unwrap_or(""),
            &operation.document,
            json!({}),
            Duration::from_secs(10),
        )
        .await;
        return match result {
            // Errors of a started subscription arrive as a `next` payload before `complete`.
            Ok(payloads) => payloads
                .first()
                .map(|payload| {
                    (
                        error_code(payload).to_owned(),
                        error_message(payload).to_owned(),
                    )
                })
                .unwrap_or_default(),
            Err(error) => {
                let text = error.to_string();
                let code = [
                    "FORBIDDEN",
                    "UNAUTHENTICATED",
                    "NOT_FOUND",
                    "BAD_USER_INPUT",
                ]
                .into_iter()
                .find(|code| text.contains(code))
                .unwrap_or("OTHER");
                (code.to_owned(), text)
            }
        };
    }
    let body = app.graphql(token, &operation.document, json!({})).await;
    (
        error_code(&body).to_owned(),
        error_message(&body).to_owned(),
    )
}

/// Operations that end the caller's session or membership; they run last, each with its
/// own session.
const SESSION_ENDING: [&str; 2] = ["logout", "leaveTenant"];

#[tokio::test]
async fn every_operation_has_access() {
    let app = TestApp::spawn().await.unwrap();
    let (operations, missing) = operations(&app).await;
    assert!(
        missing.is_empty(),
        "operations missing from the access table: {missing:?}"
    );
    assert!(
        operations.len() > 40,
        "only {} operations",
        operations.len()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn lowest_role_passes_and_below_fails() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![(
            "PLATFORM_ADMINS".into(),
            "platform-admin@example.com".into(),
        )],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let platform_admin = app.login("platform-admin@example.com").await;
    let owner = app.register("access-owner@example.com", "Access").await;
    let members = Members {
        admin: app
            .add_member(&owner.access_token, "access-admin@example.com", "ADMIN")
            .await,
        member: app
            .add_member(&owner.access_token, "access-member@example.com", "MEMBER")
            .await,
        viewer: app
            .add_member(&owner.access_token, "access-viewer@example.com", "VIEWER")
            .await,
        owner,
    };
    let (mut operations, _) = operations(&app).await;
    operations.sort_by_key(|operation| SESSION_ENDING.contains(&operation.name.as_str()));

    let mut failures = Vec::new();
    for operation in &operations {
        let access = access_of(operation.kind, &operation.name).unwrap();
        let lowest = match access {
            Access::Public => {
                let (code, message) = call(&app, operation, None).await;
                if code == "FORBIDDEN" || message.contains("needs a signed-in caller") {
                    failures.push(format!(
                        "{}: public but got {code}: {message}",
                        operation.name
                    ));
                }
                continue;
            }
            Access::PlatformAdmin => {
                let token = Some(platform_admin.access_token.as_str());
                let (code, message) = call(&app, operation, token).await;
                if code == "FORBIDDEN" || code == "UNAUTHENTICATED" {
                    failures.push(format!(
                        "{}: a platform administrator got {code}: {message}",
                        operation.name
                    ));
                }
                // A tenant owner who is not a platform administrator is just below.
                let owner_token = Some(members.token(Role::Owner));
                let (code, message) = call(&app, operation, owner_token).await;
                if code != "FORBIDDEN" {
                    failures.push(format!(
                        "{}: a tenant owner expected FORBIDDEN but got {code:?}: {message}",
                        operation.name
                    ));
                }
                continue;
            }
            Access::Role(lowest) => lowest,
        };

        // A session-ending operation gets a session of its own, so the others keep theirs.
        let own_session;
        let token = if SESSION_ENDING.contains(&operation.name.as_str()) {
            own_session = login(&app, "access-viewer@example.com", &members.viewer).await;
            own_session.as_str()
        } else {
            members.token(lowest)
        };
        let (code, message) = call(&app, operation, Some(token)).await;
        if code == "FORBIDDEN" || code == "UNAUTHENTICATED" {
            failures.push(format!(
                "{}: {lowest:?} is allowed but got {code}: {message}",
                operation.name
            ));
        }

        let (below, expected) = match role_below(lowest) {
            Some(role) => (Some(members.token(role)), "FORBIDDEN"),
            None => (None, "UNAUTHENTICATED"),
        };
        let (code, message) = call(&app, operation, below).await;
        if code != expected {
            failures.push(format!(
                "{}: below {lowest:?} expected {expected} but got {code:?}: {message}",
                operation.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "access mismatches:\n{}",
        failures.join("\n")
    );
    app.shutdown().await;
}

/// Signs the user in to the session's tenant again and returns the new access token.
async fn login(app: &TestApp, email: &str, session: &Session) -> String {
    let data = app
        .data(
            None,
            "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            json!({ "input": { "email": email, "password": MEMBER_PASSWORD,
                               "tenantId": session.tenant_id } }),
        )
        .await;
    data["login"]["accessToken"].as_str().unwrap().to_owned()
}
