//! The authenticated caller of a request, passed into every service call on tenant data.

use std::net::IpAddr;

use entity::Role;
use uuid::Uuid;

use crate::{
    error::{ServiceError, ServiceResult},
    quota::{KeyPayer, MinuteLimits},
};

/// A tenant id that came from authentication, never from client input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(Uuid);

impl TenantId {
    pub(crate) fn new(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// The origin of a request as the audit log records it: the request's id (empty when
/// there is none) and the client's address.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
}

/// The caller: tenant, user, session and role, made once at the edge of the api.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub tenant_id: TenantId,
    pub user_id: Uuid,
    /// The session of the access token, or nil for a request made with an API key.
    pub session_id: Uuid,
    pub role: Role,
    pub request_id: String,
    /// The API key the request was made with, acting for `user_id`.
    pub api_key_id: Option<Uuid>,
    /// The per-minute limits the API key sets for itself; none without a key.
    pub api_key_limits: MinuteLimits,
    /// The client's IP address as the HTTP layer determined it, or `None` when unknown.
    pub client_ip: Option<IpAddr>,
}

impl RequestContext {
    pub fn tenant(&self) -> Uuid {
        self.tenant_id.as_uuid()
    }

    pub fn origin(&self) -> RequestOrigin {
        RequestOrigin {
            request_id: self.request_id.clone(),
            client_ip: self.client_ip,
        }
    }

    /// Returns the API key the request was made with and its own limits, for budget
    /// reservations.
    pub fn key_payer(&self) -> Option<KeyPayer> {
        self.api_key_id.map(|id| KeyPayer {
            id,
            own: self.api_key_limits,
        })
    }

    /// Fails with FORBIDDEN unless the caller's role is `minimum` or higher.
    pub fn require(&self, minimum: Role) -> ServiceResult<()> {
        if role_at_least(self.role, minimum) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this operation needs the {} role or higher",
                role_name(minimum)
            )))
        }
    }

    /// Fails with FORBIDDEN for a request made with an API key, for operations on the
    /// user's own account and credentials, which need a signed-in session.
    pub fn require_session(&self) -> ServiceResult<()> {
        match self.api_key_id {
            None => Ok(()),
            Some(_) => Err(ServiceError::Forbidden(
                "an API key cannot do this; sign in with a password first".into(),
            )),
        }
    }

    /// Whether the caller may see every conversation of the tenant, not only their own.
    pub fn sees_all_conversations(&self) -> bool {
        role_rank(self.role) >= role_rank(Role::Admin)
    }
}

/// Whether `role` is `minimum` or a more privileged role.
pub fn role_at_least(role: Role, minimum: Role) -> bool {
    role_rank(role) >= role_rank(minimum)
}

/// Orders roles from viewer (0) to owner (3).
pub fn role_rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Member => 1,
        Role::Admin => 2,
        Role::Owner => 3,
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
        Role::Viewer => "viewer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(role: Role) -> RequestContext {
        RequestContext {
            tenant_id: TenantId::new(Uuid::now_v7()),
            user_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            role,
            request_id: "test".into(),
            api_key_id: None,
            api_key_limits: MinuteLimits::default(),
            client_ip: None,
        }
    }

    #[test]
    fn require_allows_higher_roles() {
        assert!(context(Role::Owner).require(Role::Member).is_ok());
        assert!(context(Role::Member).require(Role::Member).is_ok());
    }

    #[test]
    fn require_rejects_lower_roles() {
        let error = context(Role::Viewer).require(Role::Member).unwrap_err();
        assert!(matches!(error, ServiceError::Forbidden(_)));
        assert_eq!(
            error.to_string(),
            "this operation needs the member role or higher"
        );
    }
}
