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
use loyalty_identity::model::PLATFORM;
use loyalty_identity::permissions::{self as p, Action, Permission};
use loyalty_identity::service::{IdentityService, Principal};
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
    identity: Arc<IdentityService>,
}

/// A call let in: whom to record a write for, if the gateway did not already.
pub struct Admitted {
    audit: Option<(Principal, String, String, String)>,
}

fn metadata<'a, T>(req: &'a Request<T>, name: &str) -> Option<&'a str> {
    req.metadata().get(name).and_then(|v| v.to_str().ok())
}

impl Access {
    pub fn new(identity: Arc<IdentityService>) -> Self {
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
        let (principal, store, from_gateway) = match req.extensions().get::<Authenticated>() {
            Some(caller) => (caller.principal.clone(), caller.store.clone(), true),
            None => {
                let store = metadata(req, "x-store-id").map(String::from);
                (self.authenticate(req).await?, store, false)
            }
        };
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
        self.identity
            .authorize(&principal, &domain, permission, &request_id)
            .await?;
        let audit = (!from_gateway && permission.action == Action::Write).then(|| {
            let action = format!("ledger.v1.LedgerService/{method}");
            (principal, tenant.to_string(), action, request_id)
        });
        Ok(Admitted { audit })
    }

    async fn authenticate<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let credential = match (metadata(req, "authorization"), metadata(req, "x-api-key")) {
            (Some(value), _) => value.strip_prefix("Bearer ").ok_or_else(|| {
                Status::unauthenticated("use authorization: Bearer <access token or API key>")
            })?,
            (None, Some(key)) => key,
            (None, None) => {
                return Err(Status::unauthenticated(
                    "send authorization: Bearer <access token or API key> in the metadata",
                ));
            }
        };
        Ok(self.identity.authenticate(credential).await?)
    }

    /// Records a write that did not come through the gateway, with its outcome; the call
    /// answers only once the record is stored.
    pub async fn finish<R>(
        &self,
        admitted: Admitted,
        target: &str,
        result: Result<R, Status>,
    ) -> Result<R, Status> {
        let Some((principal, tenant, action, request_id)) = admitted.audit else {
            return result;
        };
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(status) => Outcome::Failed(format!("{:?}", status.code())),
        };
        self.identity
            .record(&principal, &tenant, &action, target, outcome, &request_id)
            .await?;
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
