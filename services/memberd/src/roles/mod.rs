//! The roles a `memberd` process can play, each started by its own function: the identity
//! service, the ledger, the member service, the campaign service and the REST gateway. `--target all` plays every
//! one; `--target <role>` plays one, and reaches the others through their clients.

pub mod campaign;
pub mod gateway;
pub mod grpc;
pub mod health;
pub mod ledger;
pub mod member;
pub mod platform;

use crate::config::{MemberdConfig, Target};
use crate::publication::Publication;
use crate::storage::ScyllaStorage;
use loyalty_identity::checks::CallerChecks;
use loyalty_identity::client::{GrpcIdentityClient, IdentityClient, InProcessIdentity};
use loyalty_identity::service::IdentityService;
use loyalty_region::background::SharedView;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which roles this process plays.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub identity: bool,
    pub ledger: bool,
    pub member: bool,
    pub campaign: bool,
    pub gateway: bool,
}

impl Roles {
    pub fn of(target: Target) -> Self {
        let all = target == Target::All;
        Self {
            identity: all || target == Target::Identity,
            ledger: all || target == Target::Ledger,
            member: all || target == Target::Member,
            campaign: all || target == Target::Campaign,
            gateway: all || target == Target::Gateway,
        }
    }

    /// The keyspaces this process uses on ScyllaDB.
    pub fn keyspaces(&self) -> Vec<&'static str> {
        [
            (self.identity, "identity"),
            (self.ledger, "ledger"),
            (self.member, "member"),
            (self.campaign, "campaign"),
        ]
        .into_iter()
        .filter_map(|(plays, keyspace)| plays.then_some(keyspace))
        .collect()
    }
}

/// What every role of one process shares while it starts.
pub struct Process<'a> {
    pub config: &'a MemberdConfig,
    pub scylla: Option<&'a ScyllaStorage>,
    /// The event bus, for the roles whose outboxes publish here.
    pub events: Option<&'a Publication>,
    /// The identity service, when this process plays it.
    pub identity: Option<&'a Arc<IdentityService>>,
    pub shutdown: watch::Receiver<bool>,
    /// The tasks to await on shutdown; each role adds its own.
    pub tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// In two regions on the CQL store, the homes and this region's lease as the failover
    /// watch reads them: which tenants' background work is this region's.
    pub regions: Option<SharedView>,
}

impl Process<'_> {
    /// Who checks the callers of this process's gRPC services: the identity service here, or
    /// the one at `identity_endpoint`; None (with a warning) when neither is configured.
    pub fn caller_checks(&self) -> anyhow::Result<Option<Arc<dyn CallerChecks>>> {
        if crate::UNGUARDED {
            return Ok(None);
        }
        if let Some(identity) = self.identity {
            let checks = InProcessIdentity::new(Arc::clone(identity));
            return Ok(Some(Arc::new(checks)));
        }
        match &self.config.identity_endpoint {
            Some(endpoint) => Ok(Some(Arc::new(self.remote_identity(endpoint)?))),
            None => {
                tracing::warn!(
                    "the gRPC port does not authenticate callers: set identity_endpoint to the \
                     identity service's gRPC address, or keep it on a trusted network"
                );
                Ok(None)
            }
        }
    }

    /// The identity service's client: the one in this process, or the one at
    /// `identity_endpoint` (required then).
    pub fn identity_client(&self) -> anyhow::Result<Arc<dyn IdentityClient>> {
        if let Some(identity) = self.identity {
            return Ok(Arc::new(InProcessIdentity::new(Arc::clone(identity))));
        }
        let endpoint = self.config.identity_endpoint.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "this role needs the identity service: set identity_endpoint to its gRPC \
                 address (memberd --target identity)"
            )
        })?;
        Ok(Arc::new(self.remote_identity(endpoint)?))
    }

    fn remote_identity(&self, endpoint: &str) -> anyhow::Result<GrpcIdentityClient> {
        let transport = loyalty_proto::transport::connect(endpoint, self.deadline())
            .map_err(|e| anyhow::anyhow!("identity_endpoint {endpoint}: {e}"))?;
        Ok(GrpcIdentityClient::new(transport))
    }

    /// The deadline of calls to services in other processes.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.config.call_deadline_ms.max(1))
    }
}
