//! What another service asks about its callers: who a credential belongs to, whether that
//! caller may do something, and recording what it did. The identity service answers in
//! process ([`crate::client::InProcessIdentity`]); [`crate::client::GrpcIdentityClient`]
//! asks one in another process over gRPC.

use crate::audit::Outcome;
use crate::permissions::Permission;
use crate::service::Principal;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;

#[async_trait]
pub trait CallerChecks: Send + Sync + 'static {
    /// The caller who sent `credential` (an access token or an API key).
    async fn authenticate(&self, credential: &str) -> ServiceResult<Principal>;
    /// Refuses the caller unless it holds `permission` in `domain` (the refusal is audited).
    async fn authorize(
        &self,
        caller: Caller<'_>,
        domain: &str,
        permission: Permission,
        request_id: &str,
    ) -> ServiceResult<()>;
    /// Appends an audit record to `tenant`'s chain; returns once it is stored.
    async fn record(&self, caller: Caller<'_>, act: Act<'_>) -> ServiceResult<()>;
}

/// A caller as checked: its principal, and the credential it sent when it came over the
/// network (a remote identity service checks that again; in process it is not needed).
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub principal: &'a Principal,
    pub credential: Option<&'a str>,
}

/// One audited act.
pub struct Act<'a> {
    pub tenant: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: Outcome,
    pub request_id: &'a str,
}
