//! Tenants: creating one, reading it, its brands, stores and security policy.

use super::*;

impl IdentityService {
    /// Creates a tenant (the platform's own staff only).
    pub async fn create_tenant(
        &self,
        principal: &Principal,
        id: &TenantId,
        name: &str,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            id.as_str(),
            permissions::TENANT_WRITE,
            request_id,
        )
        .await?;
        let tenant = Tenant {
            id: id.clone(),
            name: name.into(),
            brands: Vec::new(),
            stores: Vec::new(),
            policy: SecurityPolicy::default(),
            time_zone: None,
            created_at: self.now(),
            version: 1,
        };
        if self.ports.tenants.put_tenant(&tenant).await? == Applied::Conflict {
            return Err(already_exists(&format!("tenant {id}")));
        }
        let target = format!("tenant:{id}");
        self.record(
            principal,
            id.as_str(),
            "identity.tenant.create",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(tenant)
    }

    pub async fn tenant(
        &self,
        principal: &Principal,
        id: &TenantId,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(principal, id.as_str(), permissions::TENANT_READ, request_id)
            .await?;
        self.ports
            .tenants
            .tenant(id)
            .await?
            .ok_or_else(|| not_found("tenant"))
    }

    /// Changes a tenant with `change`, re-reading and retrying if another write came first.
    pub(super) async fn change_tenant(
        &self,
        id: &TenantId,
        change: impl Fn(&mut Tenant) -> ServiceResult<()>,
    ) -> ServiceResult<Tenant> {
        for _ in 0..8 {
            let mut tenant = self
                .ports
                .tenants
                .tenant(id)
                .await?
                .ok_or_else(|| not_found("tenant"))?;
            change(&mut tenant)?;
            tenant.version += 1;
            if self.ports.tenants.put_tenant(&tenant).await? == Applied::Yes {
                return Ok(tenant);
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the tenant is busy; retry",
        ))
    }

    pub async fn add_brand(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        brand: Brand,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STORES_WRITE,
            request_id,
        )
        .await?;
        let target = format!("brand:{tenant}/{}", brand.id);
        let updated = self
            .change_tenant(tenant, |t| {
                if t.brands.iter().any(|b| b.id == brand.id) {
                    return Err(already_exists(&format!("brand {}", brand.id)));
                }
                t.brands.push(brand.clone());
                Ok(())
            })
            .await?;
        self.record(
            principal,
            tenant.as_str(),
            "identity.brand.create",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn add_store(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        store: Store,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::STORES_WRITE,
            request_id,
        )
        .await?;
        let target = format!("store:{tenant}/{}", store.id);
        let updated = self
            .change_tenant(tenant, |t| {
                if t.stores.iter().any(|s| s.id == store.id) {
                    return Err(already_exists(&format!("store {}", store.id)));
                }
                if let Some(brand) = &store.brand
                    && !t.brands.iter().any(|b| &b.id == brand)
                {
                    return Err(not_found(&format!("brand {brand}")));
                }
                t.stores.push(store.clone());
                Ok(())
            })
            .await?;
        self.record(
            principal,
            tenant.as_str(),
            "identity.store.create",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }

    pub async fn set_policy(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        policy: SecurityPolicy,
        request_id: &str,
    ) -> ServiceResult<Tenant> {
        self.authorize(
            principal,
            tenant.as_str(),
            permissions::POLICY_WRITE,
            request_id,
        )
        .await?;
        let updated = self
            .change_tenant(tenant, |t| {
                t.policy = policy.clone();
                Ok(())
            })
            .await?;
        let target = format!("tenant:{tenant}");
        self.record(
            principal,
            tenant.as_str(),
            "identity.policy.update",
            &target,
            Outcome::Allowed,
            request_id,
        )
        .await?;
        Ok(updated)
    }
}
