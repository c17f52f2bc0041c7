//! What administrators read: the tenants, a tenant's staff with their roles, its API keys
//! (never a secret: the views below leave them out), and the roles its staff and keys can
//! hold with what each allows. Reads are authorized like writes; nothing is recorded.

use super::*;
use crate::rbac::BUILT_IN;

/// A staff account as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffView {
    pub id: StaffId,
    pub tenant: String,
    pub username: String,
    pub display_name: String,
    /// `(role, domain)`: the domain is the tenant or one of its stores.
    pub roles: Vec<(String, String)>,
    pub active: bool,
    pub locked_until: Option<Timestamp>,
    pub second_factor: bool,
    pub must_change_password: bool,
    pub created_at: Timestamp,
}

/// A role and what it allows, as `object:action` (`*` for both actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    pub name: String,
    pub built_in: bool,
    pub permissions: Vec<String>,
}

impl IdentityService {
    /// Every tenant, by id (the platform's own staff only).
    pub async fn list_tenants(
        &self,
        principal: &Principal,
        request_id: &str,
    ) -> ServiceResult<Vec<Tenant>> {
        self.authorize(principal, PLATFORM, permissions::TENANT_READ, request_id)
            .await?;
        let mut tenants = self.ports.tenants.tenants().await?;
        tenants.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(tenants)
    }

    pub(crate) async fn staff_view(&self, staff: &Staff) -> StaffView {
        StaffView {
            id: staff.id,
            tenant: staff.tenant.clone(),
            username: staff.username.as_str().to_string(),
            display_name: staff.display_name.clone(),
            roles: self.authorizer.grants_of(&staff.subject()).await,
            active: !staff.disabled,
            locked_until: staff.failures.locked(self.now()),
            second_factor: staff.totp.as_ref().is_some_and(|t| t.confirmed),
            must_change_password: staff.must_change_password,
            created_at: staff.created_at,
        }
    }

    /// A tenant's staff accounts, by username.
    pub async fn list_staff(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        request_id: &str,
    ) -> ServiceResult<Vec<StaffView>> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STAFF_READ,
            request_id,
        )
        .await?;
        let mut staff = self.ports.staff.staff_of(tenant.as_str()).await?;
        staff.sort_by(|a, b| a.username.as_str().cmp(b.username.as_str()));
        let mut views = Vec::with_capacity(staff.len());
        for one in &staff {
            views.push(self.staff_view(one).await);
        }
        Ok(views)
    }

    /// One staff account, in the tenant the caller may read staff of.
    pub async fn staff_member(
        &self,
        principal: &Principal,
        id: StaffId,
        request_id: &str,
    ) -> ServiceResult<StaffView> {
        let staff = self
            .ports
            .staff
            .staff(id)
            .await?
            .ok_or_else(|| not_found("staff account"))?;
        self.authorize(
            principal,
            &staff.tenant,
            permissions::STAFF_READ,
            request_id,
        )
        .await?;
        Ok(self.staff_view(&staff).await)
    }

    /// A tenant's API keys, newest first: those who manage keys see them.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        request_id: &str,
    ) -> ServiceResult<Vec<ApiKey>> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::API_KEYS_WRITE,
            request_id,
        )
        .await?;
        let mut keys = self.ports.api_keys.api_keys_of(tenant).await?;
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(keys)
    }

    pub async fn api_key_info(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        request_id: &str,
    ) -> ServiceResult<ApiKey> {
        let key = self
            .ports
            .api_keys
            .api_key(id)
            .await?
            .ok_or_else(|| not_found("API key"))?;
        self.authorize(
            principal,
            key.tenant.as_str(),
            permissions::API_KEYS_WRITE,
            request_id,
        )
        .await?;
        Ok(key)
    }

    /// Checks the tenant's audit chain from its first record to its stored head: how many
    /// records checked out, or the first that does not.
    pub async fn verify_audit(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        request_id: &str,
    ) -> ServiceResult<Result<u64, crate::audit::Broken>> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::AUDIT_READ,
            request_id,
        )
        .await?;
        self.audit.verify_tenant(tenant.as_str()).await
    }

    /// The roles a tenant's staff and keys can hold: the built-in ones, then the tenant's own.
    pub async fn list_roles(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        request_id: &str,
    ) -> ServiceResult<Vec<RoleView>> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STAFF_READ,
            request_id,
        )
        .await?;
        let mut roles: Vec<RoleView> = Vec::new();
        // The platform's administrator is held in the platform's domain only.
        for (role, object, action) in BUILT_IN.iter().filter(|r| r.0 != "platform_admin") {
            push_permission(&mut roles, role, true, &format!("{object}:{action}"));
        }
        for (role, object, action) in self.authorizer.rules_in(tenant.as_str()).await {
            push_permission(&mut roles, &role, false, &format!("{object}:{action}"));
        }
        Ok(roles)
    }
}

fn push_permission(roles: &mut Vec<RoleView>, role: &str, built_in: bool, permission: &str) {
    match roles.iter_mut().find(|r| r.name == role) {
        Some(found) => found.permissions.push(permission.to_string()),
        None => roles.push(RoleView {
            name: role.to_string(),
            built_in,
            permissions: vec![permission.to_string()],
        }),
    }
}
