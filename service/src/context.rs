//! The authenticated caller of a request, passed into every service call on tenant data.

use entity::Role;
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

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

/// The caller: tenant, user, session and role, made once at the edge of the api.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub tenant_id: TenantId,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    pub request_id: String,
}

impl RequestContext {
    pub fn tenant(&self) -> Uuid {
        self.tenant_id.as_uuid()
    }

    /// Fails with FORBIDDEN unless the caller's role is `minimum` or higher.
    pub fn require(&self, minimum: Role) -> ServiceResult<()> {
        if rank(self.role) >= rank(minimum) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this operation needs the {} role or higher",
                role_name(minimum)
            )))
        }
    }

    /// Whether the caller may see every conversation of the tenant, not only their own.
    pub fn sees_all_conversations(&self) -> bool {
        rank(self.role) >= rank(Role::Admin)
    }
}

fn rank(role: Role) -> u8 {
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
