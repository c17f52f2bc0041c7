//! The conformance suite's harness (issue 6): every behaviour is one generic test body, run
//! against the embedded adapter always and against ScyllaDB when `SCYLLA_NODES` is set (a
//! comma-separated list of `host:port`). A run uses its own keyspaces, `conformance_<run>_*`
//! (the run from `NEXTEST_RUN_ID`, else this process), migrated on first use. Without
//! `SCYLLA_NODES` the ScyllaDB half of each test says it was skipped and why, and passes;
//! `tests/run.sh` prints the same once for the whole run.
#![allow(dead_code)] // Each test file uses part of the harness.

use loyalty_common::schema::Migration;
use loyalty_scylla::ScyllaConfig;
use loyalty_scylla::session::{Cluster, connect};
use std::sync::Arc;

/// Why the ScyllaDB half is skipped, when it is.
pub const SKIP_REASON: &str = "SCYLLA_NODES is not set (no ScyllaDB cluster on this machine); \
     set it to host:port[,host:port] to run the suite against one";

/// The cluster to run against, with a keyspace prefix of its own, when `SCYLLA_NODES` is set.
pub fn scylla_config() -> Option<ScyllaConfig> {
    let nodes = std::env::var("SCYLLA_NODES").ok()?;
    let nodes: Vec<String> = nodes
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if nodes.is_empty() {
        return None;
    }
    let run = std::env::var("NEXTEST_RUN_ID")
        .map(|id| id.replace('-', "").chars().take(12).collect::<String>())
        .unwrap_or_else(|_| std::process::id().to_string());
    let datacenter = std::env::var("SCYLLA_DATACENTER").unwrap_or_else(|_| "datacenter1".into());
    Some(ScyllaConfig {
        nodes,
        local_datacenter: datacenter.clone(),
        keyspace_prefix: format!("conformance_{run}"),
        replication: [(datacenter, 1)].into_iter().collect(),
        ..ScyllaConfig::default()
    })
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
    loyalty_scylla::migrate::apply(&cluster, &config, service, migrations, |_| {})
        .await
        .unwrap_or_else(|e| panic!("migrating {service}: {e}"));
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
            async fn scylla() {
                if let Some(stores) = $scylla().await {
                    $body(stores).await;
                }
            }
        }
    };
}
