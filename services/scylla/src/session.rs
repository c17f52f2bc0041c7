//! A session to the cluster with the consistency the settings name (decision 0012):
//! LOCAL_QUORUM and the configured serial consistency by default, token- and
//! datacenter-aware routing to the local datacenter, speculative retries for statements
//! marked idempotent only (the driver never repeats a statement that is not).

use crate::config::{ScyllaConfig, SerialConsistency, WriteConsistency};
use scylla::client::execution_profile::{ExecutionProfile, ExecutionProfileHandle};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, MetadataError,
    NewSessionError,
};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::Consistency;
use std::sync::Arc;
use std::time::Duration;

/// The session and the profiles some writes use.
pub struct Cluster {
    pub session: Session,
    /// LOCAL_QUORUM or EACH_QUORUM (`scylla.ledger_write_consistency`), no speculation.
    pub ledger_writes: ExecutionProfileHandle,
    /// The same, with its Paxos round under SERIAL (every datacenter): a wallet's first
    /// commit after its tenant's home moved, while neither region is failed over. The round
    /// completes, in every datacenter, the newest commit any of them holds: one the old home
    /// left in its own datacenter alone (its other acknowledgement lost), which the new
    /// home's `LOCAL_SERIAL` rounds would never see (decision 0019).
    pub ledger_handover_writes: ExecutionProfileHandle,
    /// The outbox relay's conditional writes (its lease and the change log): SERIAL, a
    /// majority of all replicas, whatever `scylla.serial_consistency` says, so that two
    /// regions can never both hand out one change number.
    pub relay_writes: ExecutionProfileHandle,
    /// Where `ledger_writes` and `relay_writes` point while the other region is failed over,
    /// and whether this region may relay (decision 0019).
    pub failover: crate::failover::Failover,
    /// Conditional writes under SERIAL that a failover never switches: the control
    /// keyspace's leases and homes, which a witness keeps decidable with a region lost.
    pub serial_writes: ExecutionProfileHandle,
    /// Writes at LOCAL_QUORUM whatever `scylla.write_consistency` says: the regions'
    /// heartbeats, which must go on with any one site down.
    pub local_writes: ExecutionProfileHandle,
    /// Whether this process's relays run passes (`scylla.relay_datacenter` unset, or this
    /// datacenter); elsewhere they only read the change log.
    pub relays: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "cannot reach ScyllaDB at {nodes} ({cause}); check scylla.nodes and that the cluster is up"
    )]
    Unreachable { nodes: String, cause: String },
    #[error(
        "ScyllaDB at {nodes} refused memberd's login ({reason}); set scylla.user and \
         scylla.password (MEMBERD_SCYLLA__USER, MEMBERD_SCYLLA__PASSWORD; with the chart, \
         scylla.credentials.existingSecret) to a role of the cluster"
    )]
    Login { nodes: String, reason: String },
}

impl ConnectError {
    /// The driver's failure to open a session, told apart: a refused login says which
    /// settings to fix, anything else that the cluster could not be reached.
    fn of_session(nodes: &[String], error: &NewSessionError) -> Self {
        let nodes = nodes.join(", ");
        match refused_login(error) {
            Some(reason) => Self::Login { nodes, reason },
            None => Self::Unreachable {
                nodes,
                cause: error.to_string(),
            },
        }
    }
}

/// Why the cluster refused the login, if that is why no session opened: the last
/// connection's setup failed on authentication.
fn refused_login(error: &NewSessionError) -> Option<String> {
    let NewSessionError::MetadataError(MetadataError::ConnectionPoolError(
        ConnectionPoolError::Broken {
            last_connection_error: ConnectionError::ConnectionSetupRequestError(setup),
            ..
        },
    )) = error
    else {
        return None;
    };
    match &setup.error {
        ConnectionSetupRequestErrorKind::MissingAuthentication => {
            Some("it requires a login, and scylla.user and scylla.password are not set".to_string())
        }
        ConnectionSetupRequestErrorKind::DbError(DbError::AuthenticationError, told) => {
            Some(format!("the user or password is wrong: {told}"))
        }
        _ => None,
    }
}

/// Connects to the cluster the settings name.
pub async fn connect(config: &ScyllaConfig) -> Result<Cluster, ConnectError> {
    config.check()?;
    let routing = DefaultPolicy::builder()
        .prefer_datacenter(config.local_datacenter.clone())
        .token_aware(true)
        // A local replica down is retried on another local one; crossing to the other region
        // would change what LOCAL_QUORUM means.
        .permit_dc_failover(false)
        .build();
    let serial = match config.serial_consistency {
        SerialConsistency::LocalSerial => scylla::statement::SerialConsistency::LocalSerial,
        SerialConsistency::Serial => scylla::statement::SerialConsistency::Serial,
    };
    let speculative = (config.speculative_retry_ms > 0).then(|| {
        Arc::new(SimpleSpeculativeExecutionPolicy {
            max_retry_count: 1,
            retry_interval: Duration::from_millis(config.speculative_retry_ms),
        }) as Arc<_>
    });
    let base = ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .serial_consistency(Some(serial))
        .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
        .load_balancing_policy(routing)
        .retry_policy(Arc::new(DefaultRetryPolicy::new()))
        .speculative_execution_policy(speculative)
        .build();
    let level = |setting: WriteConsistency| match setting {
        WriteConsistency::LocalQuorum => Consistency::LocalQuorum,
        WriteConsistency::EachQuorum => Consistency::EachQuorum,
    };
    // The session's default: every statement without a profile of its own, which is every
    // write but the ledger's and the relay's. Reads get a LOCAL_QUORUM profile when they are
    // prepared (`statements::Stmt::prepare`).
    let writes_profile = base
        .to_builder()
        .consistency(level(config.write_consistency))
        .build();
    let writes = writes_profile
        .clone()
        .into_handle_with_label("default".into());
    let ledger_profile = base
        .to_builder()
        .consistency(level(config.ledger_write_consistency))
        .speculative_execution_policy(None)
        .build();
    let ledger_writes = ledger_profile
        .clone()
        .into_handle_with_label("ledger_writes".into());
    let ledger_handover_writes = ledger_profile
        .to_builder()
        .serial_consistency(Some(scylla::statement::SerialConsistency::Serial))
        .build()
        .into_handle_with_label("ledger_handover_writes".into());
    let relay_profile = base
        .to_builder()
        .serial_consistency(Some(scylla::statement::SerialConsistency::Serial))
        .speculative_execution_policy(None)
        .build();
    let relay_writes = relay_profile
        .clone()
        .into_handle_with_label("relay_writes".into());
    let serial_writes = relay_profile
        .clone()
        .into_handle_with_label("serial_writes".into());
    let local_writes = base
        .to_builder()
        .speculative_execution_policy(None)
        .build()
        .into_handle_with_label("local_writes".into());
    let failover = crate::failover::Failover::new(
        (ledger_writes.clone(), ledger_profile),
        (writes.clone(), writes_profile),
        (relay_writes.clone(), relay_profile),
    );
    let mut builder = SessionBuilder::new().known_nodes(&config.nodes);
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        builder = builder.user(user, password.expose());
    }
    let session = builder
        // Client-side write times, increasing within the process: consecutive overwrites of
        // one row (a reader's saved position) land in the order they were made, whichever
        // coordinators took them.
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
        .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
        .default_execution_profile_handle(writes)
        .build()
        .await
        .map_err(|e| ConnectError::of_session(&config.nodes, &e))?;
    Ok(Cluster {
        session,
        ledger_writes,
        ledger_handover_writes,
        relay_writes,
        failover,
        serial_writes,
        local_writes,
        relays: config
            .relay_datacenter
            .as_ref()
            .is_none_or(|dc| *dc == config.local_datacenter),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;

    #[tokio::test]
    async fn no_cluster_is_a_clear_error_at_once() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = ScyllaConfig {
            nodes: vec![format!("127.0.0.1:{port}")],
            ..ScyllaConfig::default()
        };
        let started = std::time::Instant::now();
        let err = connect(&config).await.err().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        let text = err.to_string();
        assert!(text.contains("cannot reach ScyllaDB"), "{text}");
        assert!(text.contains("check scylla.nodes"), "{text}");
        let unset = connect(&ScyllaConfig::default()).await.err().unwrap();
        assert!(unset.to_string().contains("scylla.nodes"), "{unset}");
    }
}
