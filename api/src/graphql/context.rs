//! Access to the platform and the authenticated caller from a resolver.

use async_graphql::Context;
use service::{Platform, RequestContext, RequestOrigin, ServiceError};

use super::error::to_graphql_error;

/// The outcome of authenticating the request's credentials, stored in the GraphQL context.
/// `Anonymous` when no credentials were sent; an error when they were sent and rejected.
#[derive(Clone)]
pub enum Caller {
    Anonymous,
    Authenticated(RequestContext),
    Rejected(Rejection),
}

/// The reason credentials that were sent were not accepted.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub message: String,
    /// True when the credentials are valid but their tenant may not be used, such as a
    /// suspended tenant; false when they do not authenticate.
    pub forbidden: bool,
    /// True when they could not be checked, because the database or Redis failed.
    pub unavailable: bool,
}

impl Rejection {
    pub fn to_service_error(&self) -> ServiceError {
        if self.forbidden {
            ServiceError::Forbidden(self.message.clone())
        } else {
            ServiceError::Unauthenticated(self.message.clone())
        }
    }
}

pub fn platform<'a>(ctx: &Context<'a>) -> &'a Platform {
    ctx.data_unchecked::<Platform>()
}

/// Returns the request's origin, for audit rows of callers without a context. A request
/// over WebSocket carries none and gets an empty one.
pub fn origin(ctx: &Context<'_>) -> RequestOrigin {
    ctx.data_opt::<RequestOrigin>().cloned().unwrap_or_default()
}

/// Returns the caller's context, or UNAUTHENTICATED.
pub fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::Authenticated(request)) => Ok(request),
        Some(Caller::Rejected(rejection)) => Err(to_graphql_error(rejection.to_service_error())),
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

/// Returns the caller's context when credentials were sent, `None` for an anonymous caller,
/// or UNAUTHENTICATED when the credentials were rejected.
pub fn optional_caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<Option<&'a RequestContext>> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::Rejected(_)) => caller(ctx).map(Some),
        Some(Caller::Authenticated(request)) => Ok(Some(request)),
        Some(Caller::Anonymous) | None => Ok(None),
    }
}
