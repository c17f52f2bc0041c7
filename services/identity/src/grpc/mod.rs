//! `identity.v1` over gRPC: [`IdentityGrpc`] serves the identity service to other processes
//! (`memberd --target identity`). The checks other services make carry the caller's
//! credential in their messages; sessions and administration take it from the
//! `authorization` metadata. Either way the identity service authenticates it here, so a
//! request never acts for a caller it merely names. Other processes call it through
//! [`crate::client::GrpcIdentityClient`].

pub mod convert;

use crate::client::{IdentityClient, InProcessIdentity};
use crate::model::PLATFORM;
use crate::service::{IdentityService, Principal};
use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use loyalty_proto::identity::v1 as pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The server side.
pub struct IdentityGrpc {
    service: Arc<IdentityService>,
    client: InProcessIdentity,
}

impl IdentityGrpc {
    pub fn new(service: Arc<IdentityService>) -> Self {
        Self {
            client: InProcessIdentity::new(Arc::clone(&service)),
            service,
        }
    }

    /// The caller whose credential is in the request's metadata.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let headers = request.metadata().clone().into_headers();
        let credential =
            crate::credential::from_headers(&headers)?.ok_or_else(crate::credential::missing)?;
        Ok(self.service.authenticate(credential).await?)
    }
}

/// Serves each method by the in-process client: `as_caller` ones as the caller of the
/// request's metadata, `open` ones as they are (they carry their own secrets).
macro_rules! serve {
    (
        checks { $($checks:item)* }
        open { $($open:ident($open_request:ty) -> $open_reply:ty;)* }
        as_caller { $($method:ident($request:ty) -> $reply:ty;)* }
    ) => {
        #[tonic::async_trait]
        impl pb::identity_service_server::IdentityService for IdentityGrpc {
            $($checks)*
            $(
                async fn $open(
                    &self,
                    request: Request<$open_request>,
                ) -> Result<Response<$open_reply>, Status> {
                    let reply = self.client.$open(request.into_inner()).await?;
                    Ok(Response::new(reply))
                }
            )*
            $(
                async fn $method(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$reply>, Status> {
                    let caller = self.caller(&request).await?;
                    let reply = self.client.$method(&caller, request.into_inner()).await?;
                    Ok(Response::new(reply))
                }
            )*
        }
    };
}

serve! {
    checks {
        async fn authenticate(
            &self,
            request: Request<pb::AuthenticateRequest>,
        ) -> Result<Response<pb::Principal>, Status> {
            let credential = request.into_inner().credential;
            let principal = self.service.authenticate(&credential).await?;
            Ok(Response::new(convert::principal(&principal)))
        }

        async fn authorize(
            &self,
            request: Request<pb::AuthorizeRequest>,
        ) -> Result<Response<pb::AuthorizeReply>, Status> {
            let r = request.into_inner();
            let principal = self.service.authenticate(&r.credential).await?;
            let permission = convert::permission(&r.object, &r.action)?;
            self.service
                .authorize(&principal, &r.domain, permission, &r.request_id)
                .await?;
            Ok(Response::new(pb::AuthorizeReply {}))
        }

        async fn record(
            &self,
            request: Request<pb::RecordRequest>,
        ) -> Result<Response<pb::RecordReply>, Status> {
            let r = request.into_inner();
            let principal = self.service.authenticate(&r.credential).await?;
            // A caller's acts go in its own tenant's chain only (the platform's staff act in
            // any).
            if principal.tenant != PLATFORM && principal.tenant != r.tenant {
                return Err(ServiceError::new(
                    ErrorCode::Forbidden,
                    "this caller belongs to another tenant",
                )
                .into());
            }
            let outcome = convert::outcome_from(&r.outcome, r.outcome_code)?;
            self.service
                .record(&principal, &r.tenant, &r.action, &r.target, outcome, &r.request_id)
                .await?;
            Ok(Response::new(pb::RecordReply {}))
        }

        async fn get_jwks(
            &self,
            _: Request<pb::GetJwksRequest>,
        ) -> Result<Response<pb::Document>, Status> {
            Ok(Response::new(self.client.get_jwks().await?))
        }
    }
    open {
        login(pb::LoginRequest) -> pb::Tokens;
        refresh(pb::RefreshRequest) -> pb::Tokens;
    }
    as_caller {
        logout(pb::LogoutRequest) -> pb::Done;
        change_password(pb::ChangePasswordRequest) -> pb::Done;
        list_grants(pb::ListGrantsRequest) -> pb::Grants;
        create_tenant(pb::CreateTenantRequest) -> pb::Tenant;
        get_tenant(pb::TenantRef) -> pb::Tenant;
        add_brand(pb::AddBrandRequest) -> pb::Tenant;
        add_store(pb::AddStoreRequest) -> pb::Tenant;
        set_security_policy(pb::SetSecurityPolicyRequest) -> pb::Tenant;
        create_staff(pb::CreateStaffRequest) -> pb::CreatedStaff;
        reset_password(pb::StaffRef) -> pb::TemporaryPassword;
        unlock(pb::StaffRef) -> pb::Done;
        change_role(pb::ChangeRoleRequest) -> pb::RoleChanged;
        create_api_key(pb::CreateApiKeyRequest) -> pb::NewApiKey;
        revoke_api_key(pb::ApiKeyRef) -> pb::Done;
        rotate_api_key(pb::ApiKeyRef) -> pb::NewApiKey;
        list_audit_records(pb::ListAuditRecordsRequest) -> pb::AuditRecords;
        list_tenants(pb::ListTenantsRequest) -> pb::Tenants;
        update_tenant(pb::UpdateTenantRequest) -> pb::Tenant;
        update_brand(pb::UpdateBrandRequest) -> pb::Tenant;
        update_store(pb::UpdateStoreRequest) -> pb::Tenant;
        list_staff(pb::TenantRef) -> pb::StaffList;
        get_staff(pb::StaffRef) -> pb::StaffMember;
        update_staff(pb::UpdateStaffRequest) -> pb::StaffMember;
        set_staff_active(pb::SetStaffActiveRequest) -> pb::StaffMember;
        list_api_keys(pb::TenantRef) -> pb::ApiKeys;
        get_api_key(pb::ApiKeyRef) -> pb::ApiKeyInfo;
        list_roles(pb::TenantRef) -> pb::Roles;
        verify_audit(pb::TenantRef) -> pb::AuditVerification;
        get_kept_reply(pb::KeptReplyRef) -> pb::KeptReply;
        keep_reply(pb::KeepReplyRequest) -> pb::Done;
    }
}
