//! Access to the platform and the authenticated caller from a resolver.

use async_graphql::Context;
use service::{Platform, RequestContext, ServiceError};

use super::error::to_graphql_error;

/// The outcome of authenticating the request's credentials, stored in the GraphQL context.
/// `Anonymous` when no credentials were sent; an error when they were sent and rejected.
#[derive(Clone)]
pub enum Caller {
    Anonymous,
    Authenticated(RequestContext),
    Rejected(String),
}

pub fn platform<'a>(ctx: &Context<'a>) -> &'a Platform {
    ctx.data_unchecked::<Platform>()
}

/// Returns the caller's context, or UNAUTHENTICATED.
pub fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::Authenticated(request)) => Ok(request),
        Some(Caller::Rejected(message)) => Err(to_graphql_error(ServiceError::Unauthenticated(
            message.clone(),
        ))),
        Some(Caller::Anonymous) | None => Err(to_graphql_error(ServiceError::Unauthenticated(
            "sign in first: send Authorization: Bearer <access token>".into(),
        ))),
    }
}

/// Parses an `ID` argument as a UUID; a malformed id reads like an unknown one.
pub fn parse_id(field: &str, id: &async_graphql::ID) -> async_graphql::Result<uuid::Uuid> {
    id.parse()
        .map_err(|_| super::error::bad_input(field, "is not a valid id"))
}
