//! `identity.v1` over gRPC: [`IdentityGrpc`] serves the identity service to other processes
//! (`memberd --target identity`, or with every service), and [`RemoteIdentity`] is how a
//! service in another process asks it ([`CallerChecks`]).

use crate::audit::Outcome;
use crate::checks::{Act, Caller, CallerChecks};
use crate::model::PLATFORM;
use crate::permissions::{self, Permission};
use crate::service::{IdentityService, Principal, PrincipalKind};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId};
use loyalty_proto::identity::v1 as pb;
use loyalty_proto::identity::v1::identity_service_client::IdentityServiceClient;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The server side.
pub struct IdentityGrpc {
    service: Arc<IdentityService>,
}

impl IdentityGrpc {
    pub fn new(service: Arc<IdentityService>) -> Self {
        Self { service }
    }
}

fn to_wire(principal: &Principal) -> pb::Principal {
    let (kind, id, session) = match &principal.kind {
        PrincipalKind::Staff { id, session } => ("staff", id.to_string(), session.to_string()),
        PrincipalKind::ApiKey { id } => ("api_key", id.to_string(), String::new()),
        PrincipalKind::System => ("system", String::new(), String::new()),
    };
    pb::Principal {
        subject: principal.subject.clone(),
        tenant: principal.tenant.clone(),
        kind: kind.into(),
        id,
        session,
    }
}

fn from_wire(principal: Option<pb::Principal>) -> ServiceResult<Principal> {
    let p = principal.ok_or_else(|| ServiceError::invalid("the principal is missing"))?;
    let kind = match p.kind.as_str() {
        "staff" => PrincipalKind::Staff {
            id: StaffId::parse(&p.id)?,
            session: SessionId::parse(&p.session)?,
        },
        "api_key" => PrincipalKind::ApiKey {
            id: ApiKeyId::parse(&p.id)?,
        },
        "system" => PrincipalKind::System,
        other => {
            return Err(ServiceError::invalid(format!(
                "principal kind {other:?} is not staff, api_key or system"
            )));
        }
    };
    Ok(Principal {
        subject: p.subject,
        tenant: p.tenant,
        kind,
    })
}

fn permission(object: &str, action: &str) -> ServiceResult<Permission> {
    permissions::parse(object, action).ok_or_else(|| {
        ServiceError::invalid(format!("{action} on {object} is not a known permission"))
    })
}

fn outcome_to_wire(outcome: &Outcome) -> (&'static str, String) {
    match outcome {
        Outcome::Allowed => ("allowed", String::new()),
        Outcome::Denied(code) => ("denied", code.clone()),
        Outcome::Failed(code) => ("failed", code.clone()),
    }
}

fn outcome_from_wire(outcome: &str, code: String) -> ServiceResult<Outcome> {
    match outcome {
        "allowed" => Ok(Outcome::Allowed),
        "denied" => Ok(Outcome::Denied(code)),
        "failed" => Ok(Outcome::Failed(code)),
        other => Err(ServiceError::invalid(format!(
            "outcome {other:?} is not allowed, denied or failed"
        ))),
    }
}

#[tonic::async_trait]
impl pb::identity_service_server::IdentityService for IdentityGrpc {
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::Principal>, Status> {
        let credential = request.into_inner().credential;
        let principal = self.service.authenticate(&credential).await?;
        Ok(Response::new(to_wire(&principal)))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeReply>, Status> {
        let r = request.into_inner();
        let principal = self.service.authenticate(&r.credential).await?;
        let permission = permission(&r.object, &r.action)?;
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
        // A caller's acts go in its own tenant's chain only (the platform's staff act in any).
        if principal.tenant != PLATFORM && principal.tenant != r.tenant {
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "this caller belongs to another tenant",
            )
            .into());
        }
        let outcome = outcome_from_wire(&r.outcome, r.outcome_code)?;
        self.service
            .record(
                &principal,
                &r.tenant,
                &r.action,
                &r.target,
                outcome,
                &r.request_id,
            )
            .await?;
        Ok(Response::new(pb::RecordReply {}))
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

/// The identity service of another process, asked over gRPC.
#[derive(Clone)]
pub struct RemoteIdentity {
    client: IdentityServiceClient<Channel>,
}

impl RemoteIdentity {
    /// A lazily connecting client of the identity service at `endpoint` (`http://host:port`).
    pub fn connect_lazy(endpoint: &str) -> ServiceResult<Self> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| ServiceError::invalid(format!("identity endpoint {endpoint:?}: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            client: IdentityServiceClient::new(channel),
        })
    }
}

#[async_trait]
impl CallerChecks for RemoteIdentity {
    async fn authenticate(&self, credential: &str) -> ServiceResult<Principal> {
        let request = pb::AuthenticateRequest {
            credential: credential.into(),
        };
        let principal = self.client.clone().authenticate(request).await?;
        from_wire(Some(principal.into_inner()))
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
        self.client.clone().authorize(request).await?;
        Ok(())
    }

    async fn record(&self, caller: Caller<'_>, act: Act<'_>) -> ServiceResult<()> {
        let (outcome, outcome_code) = outcome_to_wire(&act.outcome);
        let request = pb::RecordRequest {
            credential: credential_of(caller)?,
            tenant: act.tenant.into(),
            action: act.action.into(),
            target: act.target.into(),
            outcome: outcome.into(),
            outcome_code,
            request_id: act.request_id.into(),
        };
        self.client.clone().record(request).await?;
        Ok(())
    }
}
