//! Roles: granting and revoking them, and a tenant's own roles.

use super::*;

impl IdentityService {
    /// Gives `role` in `domain` to a staff account or API key of `tenant`.
    pub async fn grant(
        &self,
        principal: &Principal,
        tenant: &str,
        subject: &str,
        role: &str,
        domain: &str,
        request_id: &str,
    ) -> ServiceResult<bool> {
        let grant = RoleChange::Grant;
        self.change_role(
            principal,
            tenant,
            subject,
            (grant, role, domain),
            request_id,
        )
        .await
    }

    /// Takes `role` in `domain` from a staff account or API key of `tenant`.
    pub async fn revoke(
        &self,
        principal: &Principal,
        tenant: &str,
        subject: &str,
        role: &str,
        domain: &str,
        request_id: &str,
    ) -> ServiceResult<bool> {
        let revoke = RoleChange::Revoke;
        self.change_role(
            principal,
            tenant,
            subject,
            (revoke, role, domain),
            request_id,
        )
        .await
    }

    /// Grants or revokes; true if the subject's roles changed.
    pub(super) async fn change_role(
        &self,
        principal: &Principal,
        tenant: &str,
        subject: &str,
        (change, role, domain): (RoleChange, &str, &str),
        request_id: &str,
    ) -> ServiceResult<bool> {
        self.check_grant(principal, tenant, role, domain, request_id)
            .await?;
        let (changed, verb) = match change {
            RoleChange::Grant => (self.authorizer.grant(subject, role, domain).await?, "grant"),
            RoleChange::Revoke => (
                self.authorizer.revoke(subject, role, domain).await?,
                "revoke",
            ),
        };
        if changed {
            self.announce(Change::Policy).await;
        }
        let action = format!("identity.role.{verb}:{role}@{domain}");
        self.record(
            principal,
            tenant,
            &action,
            subject,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(changed)
    }

    /// Defines (or extends) a tenant's custom role `<tenant>:<name>`.
    pub async fn define_role(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        name: &str,
        allowed: &[Permission],
        request_id: &str,
    ) -> ServiceResult<String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(ServiceError::invalid(
                "a role name is 1 to 64 letters, digits, '_' or '-'",
            ));
        }
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::ROLES_WRITE,
            request_id,
        )
        .await?;
        let role = format!("{tenant}:{name}");
        for permission in allowed {
            self.authorizer
                .allow_role(&role, tenant.as_str(), *permission)
                .await?;
        }
        self.announce(Change::Policy).await;
        self.record(
            principal,
            tenant.as_str(),
            "identity.role.define",
            &role,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(role)
    }
}
