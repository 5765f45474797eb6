//! Authentication of a request's credentials and the per-request GraphQL data built from
//! the result, shared by the HTTP and WebSocket transports.

use async_graphql::{Data, dataloader::DataLoader};
use axum::http::HeaderMap;
use service::{Platform, ServiceError, api_keys, auth};
use tracing::warn;

use crate::graphql::{
    context::{Caller, Rejection},
    loaders::{AgentLoader, MemberLoader, RecentRunsLoader, RunStepsLoader, ToolExecutionsLoader},
};

/// Authenticates the credentials, if any were sent.
pub(super) async fn identify(
    platform: &Platform,
    token: Option<&str>,
    request_id: String,
) -> Caller {
    let Some(token) = token else {
        return Caller::Anonymous;
    };
    let authenticated = if token.starts_with(api_keys::KEY_PREFIX) {
        api_keys::authenticate(platform, token, request_id).await
    } else {
        auth::authenticate(platform, token, request_id).await
    };
    match authenticated {
        Ok(ctx) => Caller::Authenticated(ctx),
        Err(error) => {
            if error.is_internal() {
                warn!(error = ?error, "authenticating a request failed");
            }
            let message = if error.is_internal() {
                "authentication is unavailable, try again shortly".into()
            } else {
                error.to_string()
            };
            Caller::Rejected(Rejection {
                message,
                forbidden: matches!(error, ServiceError::Forbidden(_)),
                unavailable: error.is_internal(),
            })
        }
    }
}

/// Per-request GraphQL data: the caller and DataLoaders scoped to the caller's tenant.
pub(super) fn request_data(platform: &Platform, caller: Caller) -> Data {
    let mut data = Data::default();
    if let Caller::Authenticated(ctx) = &caller {
        let tenant_id = ctx.tenant_id;
        data.insert(DataLoader::new(
            AgentLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
        data.insert(DataLoader::new(
            MemberLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
        data.insert(DataLoader::new(
            RecentRunsLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
        data.insert(DataLoader::new(
            RunStepsLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
        data.insert(DataLoader::new(
            ToolExecutionsLoader {
                platform: platform.clone(),
                tenant_id,
            },
            tokio::spawn,
        ));
    }
    data.insert(caller);
    data
}

/// Reads the credential of a request: an access token or API key from an
/// `Authorization: Bearer <token>` header, or an API key from an `X-API-Key` header.
pub(super) fn request_credential(headers: &HeaderMap) -> Option<String> {
    bearer_token(headers).or_else(|| {
        let key = headers.get("x-api-key")?.to_str().ok()?.trim();
        (!key.is_empty()).then(|| key.to_owned())
    })
}

/// Reads the token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}
