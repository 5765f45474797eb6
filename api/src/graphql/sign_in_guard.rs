//! Throttles the `login` and `register` mutations per client IP address and per email
//! address, before the operation runs.
//!
//! Every `login` or `register` field counts as one attempt, so aliases, fragments and
//! batches cannot try several passwords for the price of one.

use std::{net::IpAddr, sync::Arc};

use async_graphql::{
    ErrorExtensionValues, Name, Request, ServerError, ServerResult, Value as ConstValue, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
    parser::types::{Field, OperationType},
};

use super::{
    document::{root_fields, selected_operation},
    error::code,
};
use crate::throttle::{SignInThrottle, Throttled, ThrottledBy};
use service::Platform;

/// Mutation fields that check a password or create an account.
const SIGN_IN_FIELDS: [&str; 2] = ["login", "register"];

/// The client's IP address, which the HTTP transport puts in the request data.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Schema extension that applies a [`SignInThrottle`].
#[derive(Clone)]
pub struct SignInGuard {
    throttle: Arc<SignInThrottle>,
}

impl SignInGuard {
    pub fn new(throttle: SignInThrottle) -> Self {
        Self {
            throttle: Arc::new(throttle),
        }
    }
}

impl ExtensionFactory for SignInGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for SignInGuard {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // NOTE: the WebSocket transport stores no ClientIp, so mutations sent over it are
        // limited per email address only.
        let client_ip = request
            .data
            .get(&std::any::TypeId::of::<ClientIp>())
            .and_then(|data| data.downcast_ref::<ClientIp>())
            .or_else(|| ctx.data_opt::<ClientIp>())
            .map(|client_ip| client_ip.0);
        let attempts = sign_in_attempts(&mut request)?;
        if !attempts.is_empty() {
            let platform = ctx.data_unchecked::<Platform>();
            for email in attempts {
                self.throttle
                    .check(platform, client_ip, email.as_deref())
                    .await
                    .map_err(throttled_error)?;
            }
        }
        next.run(ctx, request).await
    }
}

/// Returns the email address of every sign-in field of the operation that `request`
/// runs, `None` where the address is not a string.
fn sign_in_attempts(request: &mut Request) -> ServerResult<Vec<Option<String>>> {
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    let document = request.parsed_query()?;
    let Some(operation) = selected_operation(document, operation_name.as_deref()) else {
        return Ok(Vec::new());
    };
    if operation.node.ty != OperationType::Mutation {
        return Ok(Vec::new());
    }
    let attempts = root_fields(document, &operation.node)
        .into_iter()
        .filter(|field| SIGN_IN_FIELDS.contains(&field.node.name.node.as_str()))
        .map(|field| input_email(&field.node, &variables))
        .collect();
    Ok(attempts)
}

/// Reads `input.email` of a sign-in field, from a literal or from variables.
fn input_email(field: &Field, variables: &Variables) -> Option<String> {
    let input = field
        .get_argument("input")?
        .node
        .clone()
        .into_const_with(|name: Name| variables.get(&name).cloned().ok_or(()))
        .ok()?;
    let ConstValue::Object(input) = input else {
        return None;
    };
    match input.get("email")? {
        ConstValue::String(email) => Some(email.clone()),
        _ => None,
    }
}

/// Builds a request error with code RATE_LIMITED and the seconds until a retry.
fn throttled_error(throttled: Throttled) -> ServerError {
    let seconds = throttled.retry_after_seconds();
    let (source, limit) = match throttled.by {
        ThrottledBy::ClientIp => ("from this IP address", "sign_in_per_ip"),
        ThrottledBy::Email => ("for this email address", "sign_in_per_email"),
    };
    service::metrics::rate_limited(limit);
    let mut error = ServerError::new(
        format!("too many sign-in and registration attempts {source}, retry in {seconds} seconds"),
        None,
    );
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code::RATE_LIMITED);
    extensions.set(super::error::RETRY_AFTER, seconds);
    error.extensions = Some(extensions);
    error
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attempts(query: &str, variables: serde_json::Value) -> Vec<Option<String>> {
        let mut request = Request::new(query).variables(Variables::from_json(variables));
        sign_in_attempts(&mut request).unwrap()
    }

    #[test]
    fn literal_and_variable_emails_read() {
        let query = r#"mutation($input: LoginInput!, $email: String!) {
            a: login(input: $input) { accessToken }
            b: login(input: { email: $email, password: "x" }) { accessToken }
            register(input: { email: "c@example.com", password: "x" }) { accessToken }
        }"#;
        let variables = json!({
            "input": { "email": "a@example.com", "password": "x" },
            "email": "b@example.com",
        });
        assert_eq!(
            attempts(query, variables),
            [
                Some("a@example.com".to_owned()),
                Some("b@example.com".to_owned()),
                Some("c@example.com".to_owned()),
            ]
        );
    }

    #[test]
    fn fields_inside_fragments_counted_per_spread() {
        let query = r#"mutation { ...F ...F }
            fragment F on Mutation { login(input: { email: "a@example.com", password: "x" }) { role } }"#;
        assert_eq!(attempts(query, json!({})).len(), 2);
    }

    #[test]
    fn queries_and_other_mutations_ignored() {
        assert!(attempts("{ me { role } }", json!({})).is_empty());
        assert!(attempts("mutation { logout { success } }", json!({})).is_empty());
    }

    #[test]
    fn missing_email_still_an_attempt() {
        let query = "mutation($input: LoginInput!) { login(input: $input) { role } }";
        assert_eq!(attempts(query, json!({})), [None]);
    }
}
