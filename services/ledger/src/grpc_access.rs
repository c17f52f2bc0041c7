//! Who may call which `ledger.v1` method. The service checks every call itself, whoever sent
//! it: the gateway in this process (which passes the caller it authenticated along with the
//! request, as an extension no network peer can set), or a gRPC client that sends
//! `authorization: Bearer <access token or API key>` (or `x-api-key`) in its metadata. The
//! caller must belong to the request's tenant and hold the permission in its domain (the
//! tenant, or `tenant/store` with `x-store-id`). Writes that did not come through the gateway
//! are recorded in the audit log here.

use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{StoreId, TenantId};
use loyalty_identity::audit::Outcome;
use loyalty_identity::checks::{Act, Caller, CallerChecks};
use loyalty_identity::model::PLATFORM;
use loyalty_identity::permissions::{self as p, Action, Permission};
use loyalty_identity::service::Principal;
use std::sync::Arc;
use tonic::{Request, Status};

/// Every method of `ledger.v1.LedgerService` and the permission it needs.
pub const RPCS: &[(&str, Permission)] = &[
    ("OpenWallet", p::WALLET_WRITE),
    ("Earn", p::WALLET_WRITE),
    ("Redeem", p::WALLET_WRITE),
    ("CaptureHold", p::WALLET_WRITE),
    ("VoidHold", p::WALLET_WRITE),
    ("Reverse", p::WALLET_WRITE),
    ("Adjust", p::ADJUST),
    ("Transfer", p::WALLET_WRITE),
    ("TopUp", p::WALLET_WRITE),
    ("Spend", p::WALLET_WRITE),
    ("Refund", p::WALLET_WRITE),
    ("GetBalance", p::WALLET_READ),
    ("ListHistory", p::WALLET_READ),
    ("ListExpiring", p::WALLET_READ),
    ("PutRules", p::RULES_WRITE),
    ("GetRules", p::RULES_READ),
];

/// The caller the gateway authenticated, and the store its request named (`X-Store-Id`),
/// passed with an in-process call.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub store: Option<String>,
}

/// The access checks of the ledger's gRPC service.
#[derive(Clone)]
pub struct Access {
    /// The identity service in this process, or one in another ([`loyalty_identity::grpc`]).
    identity: Arc<dyn CallerChecks>,
}

/// A call let in: whom to record a write for, if the gateway did not already.
pub struct Admitted {
    audit: Option<Audited>,
}

/// A write to record once it is done: by whom (and the credential it sent), about which
/// tenant, what, and the request's id.
#[derive(Clone)]
struct Audited {
    principal: Principal,
    credential: Option<String>,
    tenant: String,
    action: String,
    request_id: String,
}

fn metadata<'a, T>(req: &'a Request<T>, name: &str) -> Option<&'a str> {
    req.metadata().get(name).and_then(|v| v.to_str().ok())
}

impl Access {
    pub fn new(identity: Arc<dyn CallerChecks>) -> Self {
        Self { identity }
    }

    /// Authenticates and authorizes a call of `method` about `tenant`.
    pub async fn admit<T>(
        &self,
        req: &Request<T>,
        method: &str,
        tenant: &str,
    ) -> Result<Admitted, Status> {
        let permission = RPCS
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
        // In process, the gateway records the write; from the network, the ledger does.
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
        let audit = (!from_gateway && permission.action == Action::Write).then(|| Audited {
            action: format!("ledger.v1.LedgerService/{method}"),
            tenant: tenant.to_string(),
            principal,
            credential,
            request_id,
        });
        Ok(Admitted { audit })
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

impl Access {
    /// Records a write that did not come through the gateway, with its outcome; the call
    /// answers only once the record is stored.
    pub async fn finish<R>(
        &self,
        admitted: Admitted,
        target: &str,
        result: Result<R, Status>,
    ) -> Result<R, Status> {
        let Some(audited) = admitted.audit else {
            return result;
        };
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(status) => Outcome::Failed(format!("{:?}", status.code())),
        };
        let caller = Caller {
            principal: &audited.principal,
            credential: audited.credential.as_deref(),
        };
        let act = Act {
            tenant: &audited.tenant,
            action: &audited.action,
            target,
            outcome,
            request_id: &audited.request_id,
        };
        self.identity.record(caller, act).await?;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_method_of_the_service_is_in_the_table() {
        let set =
            prost_types::FileDescriptorSet::decode(loyalty_proto::FILE_DESCRIPTOR_SET).unwrap();
        let service = set
            .file
            .iter()
            .flat_map(|f| f.service.iter())
            .find(|s| s.name() == "LedgerService")
            .unwrap();
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|(m, _)| *m).collect();
        assert_eq!(methods, table);
    }
}
