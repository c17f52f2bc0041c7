//! The identity service in another process, over its gRPC port. The checks carry the
//! caller's credential in their messages; sessions and administration carry it in the
//! metadata the transport forwards ([`loyalty_proto::transport::FORWARDED`]), so the caller
//! given to those methods is not sent: the identity service finds it again from the
//! credential. Reads are retried when the service could not be reached; writes are not,
//! since their repeat would answer differently (a second API key, a consumed refresh token).

use super::IdentityClient;
use crate::checks::{Act, Caller, CallerChecks};
use crate::grpc::convert;
use crate::permissions::Permission;
use crate::service::Principal;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_proto::identity::v1 as pb;
use loyalty_proto::identity::v1::identity_service_client::IdentityServiceClient;
use loyalty_proto::transport::{Transport, retry_idempotent};

/// A client of the identity service's replicas behind `transport`.
#[derive(Clone)]
pub struct GrpcIdentityClient {
    client: IdentityServiceClient<Transport>,
}

impl GrpcIdentityClient {
    pub fn new(transport: Transport) -> Self {
        Self {
            client: IdentityServiceClient::new(transport),
        }
    }
}

/// The credential a remote identity service checks again.
fn credential_of(caller: Caller<'_>) -> ServiceResult<String> {
    caller.credential.map(String::from).ok_or_else(|| {
        ServiceError::unavailable(
            "this service asks a remote identity service, which needs the caller's credential",
        )
    })
}

/// Calls `method` with `request`: `retried` again if the service could not be reached,
/// `once` only once.
macro_rules! call {
    (retried, $self:ident, $method:ident, $request:expr) => {{
        let request = $request;
        let reply = retry_idempotent(|| {
            let mut client = $self.client.clone();
            let request = request.clone();
            async move { client.$method(request).await }
        })
        .await?;
        Ok(reply.into_inner())
    }};
    (once, $self:ident, $method:ident, $request:expr) => {{
        let reply = $self.client.clone().$method($request).await?;
        Ok(reply.into_inner())
    }};
}

#[async_trait]
impl CallerChecks for GrpcIdentityClient {
    async fn authenticate(&self, credential: &str) -> ServiceResult<Principal> {
        let request = pb::AuthenticateRequest {
            credential: credential.into(),
        };
        let principal: ServiceResult<pb::Principal> = call!(retried, self, authenticate, request);
        convert::principal_from(Some(principal?))
    }

    async fn authorize(
        &self,
        caller: Caller<'_>,
        domain: &str,
        permission: Permission,
        request_id: &str,
    ) -> ServiceResult<()> {
        let request = pb::AuthorizeRequest {
            credential: credential_of(caller)?,
            domain: domain.into(),
            object: permission.object.into(),
            action: permission.action.as_str().into(),
            request_id: request_id.into(),
        };
        let done: ServiceResult<pb::AuthorizeReply> = call!(retried, self, authorize, request);
        done.map(drop)
    }

    async fn record(&self, caller: Caller<'_>, act: Act<'_>) -> ServiceResult<()> {
        let (outcome, outcome_code) = convert::outcome(&act.outcome);
        let request = pb::RecordRequest {
            credential: credential_of(caller)?,
            tenant: act.tenant.into(),
            action: act.action.into(),
            target: act.target.into(),
            outcome: outcome.into(),
            outcome_code,
            request_id: act.request_id.into(),
        };
        let done: ServiceResult<pb::RecordReply> = call!(once, self, record, request);
        done.map(drop)
    }
}

#[async_trait]
impl IdentityClient for GrpcIdentityClient {
    async fn login(&self, r: pb::LoginRequest) -> ServiceResult<pb::Tokens> {
        call!(once, self, login, r)
    }
    async fn refresh(&self, r: pb::RefreshRequest) -> ServiceResult<pb::Tokens> {
        call!(once, self, refresh, r)
    }
    async fn logout(&self, _: &Principal, r: pb::LogoutRequest) -> ServiceResult<pb::Done> {
        call!(once, self, logout, r)
    }
    async fn change_password(
        &self,
        _: &Principal,
        r: pb::ChangePasswordRequest,
    ) -> ServiceResult<pb::Done> {
        call!(once, self, change_password, r)
    }
    async fn get_jwks(&self) -> ServiceResult<pb::Document> {
        call!(retried, self, get_jwks, pb::GetJwksRequest {})
    }
    async fn list_grants(
        &self,
        _: &Principal,
        r: pb::ListGrantsRequest,
    ) -> ServiceResult<pb::Grants> {
        call!(retried, self, list_grants, r)
    }
    async fn create_tenant(
        &self,
        _: &Principal,
        r: pb::CreateTenantRequest,
    ) -> ServiceResult<pb::Tenant> {
        call!(once, self, create_tenant, r)
    }
    async fn get_tenant(&self, _: &Principal, r: pb::TenantRef) -> ServiceResult<pb::Tenant> {
        call!(retried, self, get_tenant, r)
    }
    async fn add_brand(&self, _: &Principal, r: pb::AddBrandRequest) -> ServiceResult<pb::Tenant> {
        call!(once, self, add_brand, r)
    }
    async fn add_store(&self, _: &Principal, r: pb::AddStoreRequest) -> ServiceResult<pb::Tenant> {
        call!(once, self, add_store, r)
    }
    async fn set_security_policy(
        &self,
        _: &Principal,
        r: pb::SetSecurityPolicyRequest,
    ) -> ServiceResult<pb::Tenant> {
        call!(retried, self, set_security_policy, r)
    }
    async fn create_staff(
        &self,
        _: &Principal,
        r: pb::CreateStaffRequest,
    ) -> ServiceResult<pb::CreatedStaff> {
        call!(once, self, create_staff, r)
    }
    async fn reset_password(
        &self,
        _: &Principal,
        r: pb::StaffRef,
    ) -> ServiceResult<pb::TemporaryPassword> {
        call!(once, self, reset_password, r)
    }
    async fn unlock(&self, _: &Principal, r: pb::StaffRef) -> ServiceResult<pb::Done> {
        call!(retried, self, unlock, r)
    }
    async fn change_role(
        &self,
        _: &Principal,
        r: pb::ChangeRoleRequest,
    ) -> ServiceResult<pb::RoleChanged> {
        call!(once, self, change_role, r)
    }
    async fn create_api_key(
        &self,
        _: &Principal,
        r: pb::CreateApiKeyRequest,
    ) -> ServiceResult<pb::NewApiKey> {
        call!(once, self, create_api_key, r)
    }
    async fn revoke_api_key(&self, _: &Principal, r: pb::ApiKeyRef) -> ServiceResult<pb::Done> {
        call!(retried, self, revoke_api_key, r)
    }
    async fn rotate_api_key(
        &self,
        _: &Principal,
        r: pb::ApiKeyRef,
    ) -> ServiceResult<pb::NewApiKey> {
        call!(once, self, rotate_api_key, r)
    }
    async fn list_audit_records(
        &self,
        _: &Principal,
        r: pb::ListAuditRecordsRequest,
    ) -> ServiceResult<pb::AuditRecords> {
        call!(retried, self, list_audit_records, r)
    }
    async fn list_tenants(
        &self,
        _: &Principal,
        r: pb::ListTenantsRequest,
    ) -> ServiceResult<pb::Tenants> {
        call!(retried, self, list_tenants, r)
    }
    async fn update_tenant(
        &self,
        _: &Principal,
        r: pb::UpdateTenantRequest,
    ) -> ServiceResult<pb::Tenant> {
        call!(once, self, update_tenant, r)
    }
    async fn update_brand(
        &self,
        _: &Principal,
        r: pb::UpdateBrandRequest,
    ) -> ServiceResult<pb::Tenant> {
        call!(once, self, update_brand, r)
    }
    async fn update_store(
        &self,
        _: &Principal,
        r: pb::UpdateStoreRequest,
    ) -> ServiceResult<pb::Tenant> {
        call!(once, self, update_store, r)
    }
    async fn list_staff(&self, _: &Principal, r: pb::TenantRef) -> ServiceResult<pb::StaffList> {
        call!(retried, self, list_staff, r)
    }
    async fn get_staff(&self, _: &Principal, r: pb::StaffRef) -> ServiceResult<pb::StaffMember> {
        call!(retried, self, get_staff, r)
    }
    async fn update_staff(
        &self,
        _: &Principal,
        r: pb::UpdateStaffRequest,
    ) -> ServiceResult<pb::StaffMember> {
        call!(once, self, update_staff, r)
    }
    async fn set_staff_active(
        &self,
        _: &Principal,
        r: pb::SetStaffActiveRequest,
    ) -> ServiceResult<pb::StaffMember> {
        call!(once, self, set_staff_active, r)
    }
    async fn list_api_keys(&self, _: &Principal, r: pb::TenantRef) -> ServiceResult<pb::ApiKeys> {
        call!(retried, self, list_api_keys, r)
    }
    async fn get_api_key(&self, _: &Principal, r: pb::ApiKeyRef) -> ServiceResult<pb::ApiKeyInfo> {
        call!(retried, self, get_api_key, r)
    }
    async fn list_roles(&self, _: &Principal, r: pb::TenantRef) -> ServiceResult<pb::Roles> {
        call!(retried, self, list_roles, r)
    }
    async fn verify_audit(
        &self,
        _: &Principal,
        r: pb::TenantRef,
    ) -> ServiceResult<pb::AuditVerification> {
        call!(retried, self, verify_audit, r)
    }
    async fn get_kept_reply(
        &self,
        _: &Principal,
        r: pb::KeptReplyRef,
    ) -> ServiceResult<pb::KeptReply> {
        call!(retried, self, get_kept_reply, r)
    }
    async fn keep_reply(&self, _: &Principal, r: pb::KeepReplyRequest) -> ServiceResult<pb::Done> {
        call!(retried, self, keep_reply, r)
    }
}
