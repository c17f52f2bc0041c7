//! How other services call the identity service: [`CallerChecks`] for the checks every edge
//! makes (who is calling, may they, record what they did), and [`IdentityClient`] for the
//! rest: sessions, administration and the replies kept for idempotency keys. Both speak the
//! `identity.v1` messages and have an implementation in this process ([`InProcessIdentity`])
//! and one over gRPC ([`GrpcIdentityClient`]); a caller cannot tell which it has.
//!
//! Administration runs as a caller the edge has authenticated. In process that is the
//! principal given; over gRPC the transport forwards the caller's own credential, which the
//! identity service authenticates again, so no call acts for a caller it merely names.

mod grpc;
mod in_process;

pub use grpc::GrpcIdentityClient;
pub use in_process::InProcessIdentity;

use crate::checks::CallerChecks;
use crate::service::Principal;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::identity::v1 as pb;

/// The identity service's operations beyond the checks of [`CallerChecks`].
#[async_trait]
pub trait IdentityClient: CallerChecks {
    async fn login(&self, r: pb::LoginRequest) -> ServiceResult<pb::Tokens>;
    async fn refresh(&self, r: pb::RefreshRequest) -> ServiceResult<pb::Tokens>;
    async fn logout(&self, caller: &Principal, r: pb::LogoutRequest) -> ServiceResult<pb::Done>;
    async fn change_password(
        &self,
        caller: &Principal,
        r: pb::ChangePasswordRequest,
    ) -> ServiceResult<pb::Done>;
    async fn get_jwks(&self) -> ServiceResult<pb::Document>;
    /// What the caller's roles grant it in a domain of its tenant (nothing is recorded).
    async fn list_grants(
        &self,
        caller: &Principal,
        r: pb::ListGrantsRequest,
    ) -> ServiceResult<pb::Grants>;

    async fn create_tenant(
        &self,
        caller: &Principal,
        r: pb::CreateTenantRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn get_tenant(&self, caller: &Principal, r: pb::TenantRef) -> ServiceResult<pb::Tenant>;
    async fn add_brand(
        &self,
        caller: &Principal,
        r: pb::AddBrandRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn add_store(
        &self,
        caller: &Principal,
        r: pb::AddStoreRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn set_security_policy(
        &self,
        caller: &Principal,
        r: pb::SetSecurityPolicyRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn create_staff(
        &self,
        caller: &Principal,
        r: pb::CreateStaffRequest,
    ) -> ServiceResult<pb::CreatedStaff>;
    async fn reset_password(
        &self,
        caller: &Principal,
        r: pb::StaffRef,
    ) -> ServiceResult<pb::TemporaryPassword>;
    async fn unlock(&self, caller: &Principal, r: pb::StaffRef) -> ServiceResult<pb::Done>;
    async fn change_role(
        &self,
        caller: &Principal,
        r: pb::ChangeRoleRequest,
    ) -> ServiceResult<pb::RoleChanged>;
    async fn create_api_key(
        &self,
        caller: &Principal,
        r: pb::CreateApiKeyRequest,
    ) -> ServiceResult<pb::NewApiKey>;
    async fn revoke_api_key(&self, caller: &Principal, r: pb::ApiKeyRef)
    -> ServiceResult<pb::Done>;
    async fn rotate_api_key(
        &self,
        caller: &Principal,
        r: pb::ApiKeyRef,
    ) -> ServiceResult<pb::NewApiKey>;
    async fn list_audit_records(
        &self,
        caller: &Principal,
        r: pb::ListAuditRecordsRequest,
    ) -> ServiceResult<pb::AuditRecords>;

    async fn list_tenants(
        &self,
        caller: &Principal,
        r: pb::ListTenantsRequest,
    ) -> ServiceResult<pb::Tenants>;
    async fn update_tenant(
        &self,
        caller: &Principal,
        r: pb::UpdateTenantRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn update_brand(
        &self,
        caller: &Principal,
        r: pb::UpdateBrandRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn update_store(
        &self,
        caller: &Principal,
        r: pb::UpdateStoreRequest,
    ) -> ServiceResult<pb::Tenant>;
    async fn list_staff(
        &self,
        caller: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::StaffList>;
    async fn get_staff(
        &self,
        caller: &Principal,
        r: pb::StaffRef,
    ) -> ServiceResult<pb::StaffMember>;
    async fn update_staff(
        &self,
        caller: &Principal,
        r: pb::UpdateStaffRequest,
    ) -> ServiceResult<pb::StaffMember>;
    async fn set_staff_active(
        &self,
        caller: &Principal,
        r: pb::SetStaffActiveRequest,
    ) -> ServiceResult<pb::StaffMember>;
    async fn list_api_keys(
        &self,
        caller: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::ApiKeys>;
    async fn get_api_key(
        &self,
        caller: &Principal,
        r: pb::ApiKeyRef,
    ) -> ServiceResult<pb::ApiKeyInfo>;
    async fn list_roles(&self, caller: &Principal, r: pb::TenantRef) -> ServiceResult<pb::Roles>;
    async fn verify_audit(
        &self,
        caller: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::AuditVerification>;
    async fn get_kept_reply(
        &self,
        caller: &Principal,
        r: pb::KeptReplyRef,
    ) -> ServiceResult<pb::KeptReply>;
    async fn keep_reply(
        &self,
        caller: &Principal,
        r: pb::KeepReplyRequest,
    ) -> ServiceResult<pb::Done>;
}
