//! The identity service in this process: each request is parsed as the gRPC port would
//! ([`crate::grpc::convert`]), then served by [`IdentityService`] as the given caller.

use super::IdentityClient;
use crate::checks::{Act, Caller, CallerChecks};
use crate::grpc::convert;
use crate::permissions::Permission;
use crate::policy::SecurityPolicy;
use crate::service::{IdentityService, NewStaff, PlaceUpdate, Principal, TenantUpdate};
use crate::store::StoredReply;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{ApiKeyId, BrandId, StaffId, StoreId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use loyalty_proto::identity::v1 as pb;
use std::sync::Arc;

/// The identity service of this process, as a client.
#[derive(Clone)]
pub struct InProcessIdentity {
    service: Arc<IdentityService>,
}

impl InProcessIdentity {
    pub fn new(service: Arc<IdentityService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl CallerChecks for InProcessIdentity {
    async fn authenticate(&self, credential: &str) -> ServiceResult<Principal> {
        self.service.authenticate(credential).await
    }

    async fn authorize(
        &self,
        caller: Caller<'_>,
        domain: &str,
        permission: Permission,
        request_id: &str,
    ) -> ServiceResult<()> {
        let principal = caller.principal;
        self.service
            .authorize(principal, domain, permission, request_id)
            .await
    }

    async fn record(&self, caller: Caller<'_>, act: Act<'_>) -> ServiceResult<()> {
        let Act {
            tenant,
            action,
            target,
            outcome,
            request_id,
        } = act;
        self.service
            .record(
                caller.principal,
                tenant,
                action,
                target,
                outcome,
                request_id,
            )
            .await
    }
}

const DONE: pb::Done = pb::Done {};

#[async_trait]
impl IdentityClient for InProcessIdentity {
    async fn login(&self, r: pb::LoginRequest) -> ServiceResult<pb::Tokens> {
        let code = r.code.as_deref();
        let logged_in = self
            .service
            .login(&r.tenant, &r.username, &r.password, code, &r.request_id)
            .await?;
        Ok(convert::tokens(logged_in, self.service.now()))
    }

    async fn refresh(&self, r: pb::RefreshRequest) -> ServiceResult<pb::Tokens> {
        let logged_in = self
            .service
            .refresh(&r.refresh_token, &r.request_id)
            .await?;
        Ok(convert::tokens(logged_in, self.service.now()))
    }

    async fn logout(&self, caller: &Principal, r: pb::LogoutRequest) -> ServiceResult<pb::Done> {
        self.service.logout(caller, &r.request_id).await?;
        Ok(DONE)
    }

    async fn change_password(
        &self,
        caller: &Principal,
        r: pb::ChangePasswordRequest,
    ) -> ServiceResult<pb::Done> {
        self.service
            .change_password(caller, &r.current, &r.new, &r.request_id)
            .await?;
        Ok(DONE)
    }

    async fn get_jwks(&self) -> ServiceResult<pb::Document> {
        Ok(convert::document(self.service.jwks()))
    }

    async fn list_grants(
        &self,
        caller: &Principal,
        r: pb::ListGrantsRequest,
    ) -> ServiceResult<pb::Grants> {
        let granted = self.service.grants(caller, &r.domain).await?;
        let mut grants = convert::grants(&granted);
        grants.time_zone = self
            .service
            .time_zone_of(&r.domain)
            .await?
            .unwrap_or_default();
        Ok(grants)
    }

    async fn create_tenant(
        &self,
        caller: &Principal,
        r: pb::CreateTenantRequest,
    ) -> ServiceResult<pb::Tenant> {
        let id = TenantId::parse(r.tenant_id)?;
        let tenant = self
            .service
            .create_tenant(caller, &id, &r.name, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn get_tenant(&self, caller: &Principal, r: pb::TenantRef) -> ServiceResult<pb::Tenant> {
        let id = TenantId::parse(r.tenant_id)?;
        let tenant = self.service.tenant(caller, &id, &r.request_id).await?;
        Ok(convert::tenant(tenant))
    }

    async fn add_brand(
        &self,
        caller: &Principal,
        r: pb::AddBrandRequest,
    ) -> ServiceResult<pb::Tenant> {
        let brand = convert::brand_from(r.brand)?;
        let id = TenantId::parse(r.tenant_id)?;
        let tenant = self
            .service
            .add_brand(caller, &id, brand, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn add_store(
        &self,
        caller: &Principal,
        r: pb::AddStoreRequest,
    ) -> ServiceResult<pb::Tenant> {
        let store = convert::store_from(r.store)?;
        let id = TenantId::parse(r.tenant_id)?;
        let tenant = self
            .service
            .add_store(caller, &id, store, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn set_security_policy(
        &self,
        caller: &Principal,
        r: pb::SetSecurityPolicyRequest,
    ) -> ServiceResult<pb::Tenant> {
        let policy: SecurityPolicy = convert::parse(&r.policy_json, "security policy")?;
        let id = TenantId::parse(r.tenant_id)?;
        let tenant = self
            .service
            .set_policy(caller, &id, policy, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn create_staff(
        &self,
        caller: &Principal,
        r: pb::CreateStaffRequest,
    ) -> ServiceResult<pb::CreatedStaff> {
        let new = NewStaff {
            username: r.username,
            display_name: r.display_name,
            roles: r.roles.into_iter().map(|r| (r.role, r.domain)).collect(),
            password: r.password,
        };
        let created = self
            .service
            .create_staff(caller, &r.tenant_id, new, &r.request_id)
            .await?;
        Ok(pb::CreatedStaff {
            staff_id: created.id.to_string(),
            initial_password: created.initial_password,
            totp_uri: created.totp_uri,
        })
    }

    async fn reset_password(
        &self,
        caller: &Principal,
        r: pb::StaffRef,
    ) -> ServiceResult<pb::TemporaryPassword> {
        let id = StaffId::parse(&r.staff_id)?;
        let password = self
            .service
            .reset_password(caller, id, &r.request_id)
            .await?;
        Ok(pb::TemporaryPassword { password })
    }

    async fn unlock(&self, caller: &Principal, r: pb::StaffRef) -> ServiceResult<pb::Done> {
        let id = StaffId::parse(&r.staff_id)?;
        self.service.unlock(caller, id, &r.request_id).await?;
        Ok(DONE)
    }

    async fn change_role(
        &self,
        caller: &Principal,
        r: pb::ChangeRoleRequest,
    ) -> ServiceResult<pb::RoleChanged> {
        let (tenant, subject, role, domain) = (&r.tenant_id, &r.subject, &r.role, &r.domain);
        let changed = if r.revoke {
            let revoke = self
                .service
                .revoke(caller, tenant, subject, role, domain, &r.request_id);
            revoke.await?
        } else {
            let grant = self
                .service
                .grant(caller, tenant, subject, role, domain, &r.request_id);
            grant.await?
        };
        Ok(pb::RoleChanged { changed })
    }

    async fn create_api_key(
        &self,
        caller: &Principal,
        r: pb::CreateApiKeyRequest,
    ) -> ServiceResult<pb::NewApiKey> {
        let id = TenantId::parse(r.tenant_id)?;
        let expires_at = (r.expires_at_ms != 0).then_some(Timestamp(r.expires_at_ms));
        let key = self
            .service
            .create_api_key(caller, &id, &r.name, &r.roles, expires_at, &r.request_id)
            .await?;
        Ok(pb::NewApiKey {
            id: key.id.to_string(),
            key: key.key,
        })
    }

    async fn revoke_api_key(
        &self,
        caller: &Principal,
        r: pb::ApiKeyRef,
    ) -> ServiceResult<pb::Done> {
        let id = ApiKeyId::parse(&r.api_key_id)?;
        self.service
            .revoke_api_key(caller, id, &r.request_id)
            .await?;
        Ok(DONE)
    }

    async fn rotate_api_key(
        &self,
        caller: &Principal,
        r: pb::ApiKeyRef,
    ) -> ServiceResult<pb::NewApiKey> {
        let id = ApiKeyId::parse(&r.api_key_id)?;
        let key = self
            .service
            .rotate_api_key(caller, id, &r.request_id)
            .await?;
        Ok(pb::NewApiKey {
            id: key.id.to_string(),
            key: key.key,
        })
    }

    async fn list_audit_records(
        &self,
        caller: &Principal,
        r: pb::ListAuditRecordsRequest,
    ) -> ServiceResult<pb::AuditRecords> {
        if !(1..=1000).contains(&r.limit) {
            return Err(ServiceError::invalid("limit must be between 1 and 1000"));
        }
        let tenant = TenantId::parse(r.tenant_id)?;
        let records = self
            .service
            .audit_records(
                caller,
                tenant.as_str(),
                r.from,
                r.limit as usize,
                &r.request_id,
            )
            .await?;
        Ok(pb::AuditRecords {
            records: records.iter().map(convert::document).collect(),
        })
    }

    async fn list_tenants(
        &self,
        caller: &Principal,
        r: pb::ListTenantsRequest,
    ) -> ServiceResult<pb::Tenants> {
        let tenants = self.service.list_tenants(caller, &r.request_id).await?;
        Ok(pb::Tenants {
            tenants: tenants.into_iter().map(convert::tenant).collect(),
        })
    }

    async fn update_tenant(
        &self,
        caller: &Principal,
        r: pb::UpdateTenantRequest,
    ) -> ServiceResult<pb::Tenant> {
        let id = TenantId::parse(r.tenant_id)?;
        let update = TenantUpdate {
            name: r.name,
            time_zone: r.time_zone,
        };
        let tenant = self
            .service
            .update_tenant(caller, &id, update, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn update_brand(
        &self,
        caller: &Principal,
        r: pb::UpdateBrandRequest,
    ) -> ServiceResult<pb::Tenant> {
        let (tenant, brand) = (TenantId::parse(r.tenant_id)?, BrandId::parse(r.brand_id)?);
        let update = PlaceUpdate {
            name: r.name,
            brand: None,
            active: r.active,
        };
        let tenant = self
            .service
            .update_brand(caller, &tenant, &brand, update, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn update_store(
        &self,
        caller: &Principal,
        r: pb::UpdateStoreRequest,
    ) -> ServiceResult<pb::Tenant> {
        let (tenant, store) = (TenantId::parse(r.tenant_id)?, StoreId::parse(r.store_id)?);
        let update = PlaceUpdate {
            name: r.name,
            brand: r.brand,
            active: r.active,
        };
        let tenant = self
            .service
            .update_store(caller, &tenant, &store, update, &r.request_id)
            .await?;
        Ok(convert::tenant(tenant))
    }

    async fn list_staff(
        &self,
        caller: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::StaffList> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let staff = self
            .service
            .list_staff(caller, &tenant, &r.request_id)
            .await?;
        Ok(pb::StaffList {
            staff: staff.into_iter().map(convert::staff_member).collect(),
        })
    }

    async fn get_staff(
        &self,
        caller: &Principal,
        r: pb::StaffRef,
    ) -> ServiceResult<pb::StaffMember> {
        let id = StaffId::parse(&r.staff_id)?;
        let staff = self.service.staff_member(caller, id, &r.request_id).await?;
        Ok(convert::staff_member(staff))
    }

    async fn update_staff(
        &self,
        caller: &Principal,
        r: pb::UpdateStaffRequest,
    ) -> ServiceResult<pb::StaffMember> {
        let id = StaffId::parse(&r.staff_id)?;
        let staff = self
            .service
            .update_staff(caller, id, r.display_name, &r.request_id)
            .await?;
        Ok(convert::staff_member(staff))
    }

    async fn set_staff_active(
        &self,
        caller: &Principal,
        r: pb::SetStaffActiveRequest,
    ) -> ServiceResult<pb::StaffMember> {
        let id = StaffId::parse(&r.staff_id)?;
        let staff = self
            .service
            .set_staff_active(caller, id, r.active, &r.request_id)
            .await?;
        Ok(convert::staff_member(staff))
    }

    async fn list_api_keys(
        &self,
        caller: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::ApiKeys> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let keys = self
            .service
            .list_api_keys(caller, &tenant, &r.request_id)
            .await?;
        Ok(pb::ApiKeys {
            keys: keys.into_iter().map(convert::api_key_info).collect(),
        })
    }

    async fn get_api_key(
        &self,
        caller: &Principal,
        r: pb::ApiKeyRef,
    ) -> ServiceResult<pb::ApiKeyInfo> {
        let id = ApiKeyId::parse(&r.api_key_id)?;
        let key = self.service.api_key_info(caller, id, &r.request_id).await?;
        Ok(convert::api_key_info(key))
    }

    async fn list_roles(&self, caller: &Principal, r: pb::TenantRef) -> ServiceResult<pb::Roles> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let roles = self
            .service
            .list_roles(caller, &tenant, &r.request_id)
            .await?;
        Ok(pb::Roles {
            roles: roles.into_iter().map(convert::role_info).collect(),
        })
    }

    async fn verify_audit(
        &self,
        caller: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::AuditVerification> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let checked = self
            .service
            .verify_audit(caller, &tenant, &r.request_id)
            .await?;
        Ok(match checked {
            Ok(records) => pb::AuditVerification {
                intact: true,
                records,
                broken_at: 0,
                problem: String::new(),
            },
            Err(broken) => pb::AuditVerification {
                intact: false,
                records: broken.seq.saturating_sub(1),
                broken_at: broken.seq,
                problem: broken.reason,
            },
        })
    }

    async fn get_kept_reply(
        &self,
        caller: &Principal,
        r: pb::KeptReplyRef,
    ) -> ServiceResult<pb::KeptReply> {
        let record = IdentityService::reply_record(&caller.subject, &r.path, &r.idempotency_key);
        let kept = self.service.kept_reply(&record).await?;
        Ok(pb::KeptReply {
            reply: kept.as_ref().map(convert::document),
        })
    }

    async fn keep_reply(
        &self,
        caller: &Principal,
        r: pb::KeepReplyRequest,
    ) -> ServiceResult<pb::Done> {
        let at = r
            .r#ref
            .ok_or_else(|| ServiceError::invalid("ref is required"))?;
        let reply = r
            .reply
            .ok_or_else(|| ServiceError::invalid("reply is required"))?;
        let mut reply: StoredReply = convert::parse(&reply.json, "reply")?;
        reply.at = self.service.now();
        let record = IdentityService::reply_record(&caller.subject, &at.path, &at.idempotency_key);
        self.service.keep_reply(&record, &reply).await?;
        Ok(DONE)
    }
}
