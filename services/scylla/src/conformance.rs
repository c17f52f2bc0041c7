//! The harness of each service's conformance suite (`<service>/tests/conformance.rs`): every
//! behaviour of a port is one generic test body, run against the embedded adapter always and
//! against the CQL adapter on the cluster `SCYLLA_NODES` names (a comma-separated list of
//! `host:port`). A run uses its own keyspaces, `conformance_<run>_*` (the run from
//! `NEXTEST_RUN_ID`, else this process), migrated on first use.
//!
//! Whether the CQL half runs is decided when the tests are built: each service's build script
//! sets the `cql_cluster` cfg when `SCYLLA_NODES` is set, and without it the CQL half of every
//! test is reported as ignored, with the reason. `tests/run.sh` starts a Cassandra node and
//! sets `SCYLLA_NODES` to it, so both halves run on every machine with Java and Maven.

use crate::ScyllaConfig;
use crate::session::{Cluster, connect};
use crate::test_cluster::TestCluster;
use loyalty_common::schema::Migration;
use std::sync::Arc;

pub use crate::test_cluster::SKIP_REASON;

/// The cluster to run against, with a keyspace prefix of its own, when `SCYLLA_NODES` is set.
pub fn scylla_config() -> Option<ScyllaConfig> {
    let cluster = TestCluster::from_env()?;
    let run = std::env::var("NEXTEST_RUN_ID")
        .map(|id| id.replace('-', "").chars().take(12).collect::<String>())
        .unwrap_or_else(|_| std::process::id().to_string());
    Some(cluster.config(&format!("conformance_{run}")))
}

/// A session to the cluster with `service`'s keyspace migrated, or `None` (the skip printed)
/// when `SCYLLA_NODES` is not set. A set `SCYLLA_NODES` that cannot be reached fails the test.
pub async fn scylla(service: &str, migrations: &[Migration]) -> Option<(Arc<Cluster>, String)> {
    let Some(config) = scylla_config() else {
        eprintln!("ScyllaDB conformance: skipped: {SKIP_REASON}");
        return None;
    };
    let cluster = connect(&config)
        .await
        .unwrap_or_else(|e| panic!("SCYLLA_NODES is set, but: {e}"));
    // Once per process and service: the tests of a file run at once, and one migration at a
    // time keeps them from waiting on each other's schema changes.
    static MIGRATED: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    let mut migrated = MIGRATED.lock().await;
    if !migrated.iter().any(|s| s == service) {
        crate::migrate::apply(&cluster, &config, service, migrations, |_| {})
            .await
            .unwrap_or_else(|e| panic!("migrating {service}: {e}"));
        migrated.push(service.to_string());
    }
    drop(migrated);
    let keyspace = config.keyspace(service);
    Some((Arc::new(cluster), keyspace))
}

/// A name no other test of the run uses (tenants, members), so tests share keyspaces safely.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Declares one behaviour's test for both adapters:
/// `conformance!(name, body, embedded_setup, scylla_setup)` where `body(stores)` is generic
/// and each setup is an async fn returning the stores (the ScyllaDB one an `Option`, `None`
/// when skipped).
#[macro_export]
macro_rules! conformance {
    ($name:ident, $body:path, $embedded:path, $scylla:path) => {
        mod $name {
            #[tokio::test]
            async fn embedded() {
                let stores = $embedded().await;
                $body(stores).await;
            }

            #[tokio::test]
            #[cfg_attr(
                not(cql_cluster),
                ignore = "runs on a CQL cluster: set SCYLLA_NODES (tests/run.sh does) and rebuild"
            )]
            async fn scylla() {
                if let Some(stores) = $scylla().await {
                    $body(stores).await;
                }
            }
        }
    };
}
