//! Who may call which method of a service's gRPC API, checked by the service itself for every
//! call, whoever sent it: the gateway in this process (which passes the caller it
//! authenticated along with the request, as an extension no network peer can set), or a gRPC
//! client that sends `authorization: Bearer <access token or API key>` (or `x-api-key`) in its
//! metadata. The caller must belong to the request's tenant and hold the method's permission
//! in its domain (the tenant, or `tenant/store` with `x-store-id`). Writes that did not come
//! through the gateway are recorded in the audit log here, since the gateway did not.
//!
//! Each service names its methods and their permissions in one table (`RPCS`), with a test
//! that the table covers every method of its generated service.

use crate::audit::Outcome;
use crate::checks::{Act, Caller, CallerChecks};
use crate::model::PLATFORM;
use crate::permissions::{Action, Permission};
use crate::service::Principal;
use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{StoreId, TenantId};
use std::sync::Arc;
use tonic::{Request, Status};

/// Every method of a service and the permission it needs.
pub type Rpcs = &'static [(&'static str, Permission)];

/// The caller the gateway authenticated, and the store its request named (`X-Store-Id`),
/// passed with an in-process call.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub store: Option<String>,
}

/// The access checks of one gRPC service.
#[derive(Clone)]
pub struct GrpcAccess {
    /// The identity service in this process, or one in another ([`crate::grpc`]).
    identity: Arc<dyn CallerChecks>,
    /// The full service name (`ledger.v1.LedgerService`), which prefixes audited actions.
    service: &'static str,
    rpcs: Rpcs,
}

/// A call let in: who made it, about which tenant, and whether its write is ours to record.
pub struct Admitted {
    principal: Principal,
    /// The credential a network caller sent (a remote identity service checks it again).
    credential: Option<String>,
    tenant: String,
    request_id: String,
    /// The action to record once the call is done: a write that bypassed the gateway.
    audit_as: Option<String>,
}

fn metadata<'a, T>(req: &'a Request<T>, name: &str) -> Option<&'a str> {
    req.metadata().get(name).and_then(|v| v.to_str().ok())
}

impl GrpcAccess {
    pub fn new(identity: Arc<dyn CallerChecks>, service: &'static str, rpcs: Rpcs) -> Self {
        Self {
            identity,
            service,
            rpcs,
        }
    }

    /// Authenticates and authorizes a call of `method` about `tenant`.
    pub async fn admit<T>(
        &self,
        req: &Request<T>,
        method: &str,
        tenant: &str,
    ) -> Result<Admitted, Status> {
        let permission = self
            .rpcs
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, permission)| *permission)
            .ok_or_else(|| Status::permission_denied("this method is open to no role"))?;
        let request_id = metadata(req, "x-request-id").unwrap_or("").to_string();
        let (principal, store, credential) = match req.extensions().get::<Authenticated>() {
            Some(caller) => (caller.principal.clone(), caller.store.clone(), None),
            None => {
                let store = metadata(req, "x-store-id").map(String::from);
                let credential = credential(req)?;
                let principal = self.identity.authenticate(credential).await?;
                (principal, store, Some(credential.to_string()))
            }
        };
        // In process, the gateway records the write; from the network, the service does.
        let from_gateway = credential.is_none();
        let tenant = TenantId::parse(tenant)?;
        if principal.tenant != PLATFORM && principal.tenant != tenant.as_str() {
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "this caller belongs to another tenant",
            )
            .into());
        }
        let domain = match store {
            Some(store) => format!("{tenant}/{}", StoreId::parse(store)?),
            None => tenant.to_string(),
        };
        let caller = Caller {
            principal: &principal,
            credential: credential.as_deref(),
        };
        self.identity
            .authorize(caller, &domain, permission, &request_id)
            .await?;
        let audit_as = (!from_gateway && permission.action == Action::Write)
            .then(|| format!("{}/{method}", self.service));
        Ok(Admitted {
            principal,
            credential,
            tenant: tenant.to_string(),
            request_id,
            audit_as,
        })
    }

    /// Records a write that did not come through the gateway, with its outcome; the call
    /// answers only once the record is stored.
    pub async fn finish<R>(
        &self,
        admitted: Admitted,
        target: &str,
        result: Result<R, Status>,
    ) -> Result<R, Status> {
        let Some(action) = &admitted.audit_as else {
            return result;
        };
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(status) => Outcome::Failed(format!("{:?}", status.code())),
        };
        self.record(&admitted, action, target, outcome).await?;
        result
    }

    /// Records `action` by the admitted caller whoever sent the call, for what must be
    /// audited even when the gateway passed it on (an unmasked read of personal data).
    pub async fn record(
        &self,
        admitted: &Admitted,
        action: &str,
        target: &str,
        outcome: Outcome,
    ) -> Result<(), Status> {
        let caller = Caller {
            principal: &admitted.principal,
            credential: admitted.credential.as_deref(),
        };
        let act = Act {
            tenant: &admitted.tenant,
            action,
            target,
            outcome,
            request_id: &admitted.request_id,
        };
        self.identity.record(caller, act).await?;
        Ok(())
    }
}

/// The credential a network caller sent in its metadata.
fn credential<T>(req: &Request<T>) -> Result<&str, Status> {
    match (metadata(req, "authorization"), metadata(req, "x-api-key")) {
        (Some(value), _) => value.strip_prefix("Bearer ").ok_or_else(|| {
            Status::unauthenticated("use authorization: Bearer <access token or API key>")
        }),
        (None, Some(key)) => Ok(key),
        (None, None) => Err(Status::unauthenticated(
            "send authorization: Bearer <access token or API key> in the metadata",
        )),
    }
}
