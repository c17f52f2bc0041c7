//! The CQL cluster the test suite runs against, as the environment names it. `tests/run.sh`
//! starts one (Apache Cassandra 5.0, `tests/cql/cluster.sh`) and sets these; a real
//! ScyllaDB cluster is named the same way:
//!
//! - `SCYLLA_NODES`: contact points, `host:port[,host:port]`;
//! - `SCYLLA_DATACENTER`: their datacenter (default `datacenter1`, ScyllaDB's own default);
//! - `SCYLLA_FLAVOUR`: `scylladb` (the default) or `cassandra`.
//!
//! Tests take keyspaces of their own (`ScyllaConfig::keyspace_prefix`), replicated once in
//! that datacenter, and leave them behind: the cluster is a throwaway one.

use crate::config::{Flavour, ScyllaConfig};
use crate::session::{Cluster, connect};
use loyalty_common::schema::Migration;
use std::sync::Arc;

/// Why a test's CQL half did not run, when `SCYLLA_NODES` is not set.
pub const SKIP_REASON: &str = "SCYLLA_NODES is not set; tests/run.sh sets it to the Cassandra \
     node it starts (which needs Java 17 and Maven), or set it to a ScyllaDB cluster's \
     host:port[,host:port]";

/// A cluster named by the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCluster {
    pub nodes: Vec<String>,
    pub datacenter: String,
    pub flavour: Flavour,
}

impl TestCluster {
    /// The cluster `SCYLLA_NODES` names, or None when it is unset or empty. A
    /// `SCYLLA_FLAVOUR` that is neither flavour panics: it is a mistake in the test set-up.
    pub fn from_env() -> Option<Self> {
        let nodes = split_nodes(&std::env::var("SCYLLA_NODES").ok()?);
        if nodes.is_empty() {
            return None;
        }
        let datacenter =
            std::env::var("SCYLLA_DATACENTER").unwrap_or_else(|_| "datacenter1".into());
        Some(Self {
            nodes,
            datacenter,
            flavour: flavour_from_env(),
        })
    }

    /// Settings for keyspaces `<prefix>_*`, one replica each in this datacenter.
    pub fn config(&self, prefix: &str) -> ScyllaConfig {
        ScyllaConfig {
            flavour: self.flavour,
            nodes: self.nodes.clone(),
            local_datacenter: self.datacenter.clone(),
            keyspace_prefix: prefix.to_string(),
            replication: [(self.datacenter.clone(), 1)].into_iter().collect(),
            // A test machine of two cores, shared by the cluster and the tests: a slow answer
            // is not the failure a test looks for.
            request_timeout_ms: 10_000,
            ..ScyllaConfig::default()
        }
    }
}

/// A keyspace of `service` for one test (`<test>_<unique>_<service>`), migrated, with a
/// session to the cluster the environment names; None, with the skip printed, without one.
/// Panics when the cluster is named but cannot be reached or migrated: a failed test.
pub async fn migrated_keyspace(
    test: &str,
    service: &str,
    migrations: &[Migration],
) -> Option<(Arc<Cluster>, ScyllaConfig)> {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("{test}: its CQL half was skipped: {SKIP_REASON}");
        return None;
    };
    let config = cluster.config(&unique_prefix(test));
    let session = connect(&config)
        .await
        .unwrap_or_else(|e| panic!("SCYLLA_NODES is set, but: {e}"));
    crate::migrate::apply(&session, &config, service, migrations, |_| {})
        .await
        .unwrap_or_else(|e| panic!("migrating {service}: {e}"));
    Some((Arc::new(session), config))
}

/// `host:port` items of a comma-separated list.
pub fn split_nodes(list: &str) -> Vec<String> {
    list.split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// `SCYLLA_FLAVOUR`: `scylladb` (also when unset) or `cassandra`.
pub fn flavour_from_env() -> Flavour {
    match std::env::var("SCYLLA_FLAVOUR").as_deref() {
        Ok("cassandra") => Flavour::Cassandra,
        Ok("scylladb") | Ok("") | Err(_) => Flavour::Scylladb,
        Ok(other) => panic!("SCYLLA_FLAVOUR is scylladb or cassandra, not {other:?}"),
    }
}

/// The environment that makes `memberd` use `config` (`storage = "scylla"` and `[scylla]`).
pub fn memberd_env(config: &ScyllaConfig) -> Vec<(String, String)> {
    let replication: Vec<String> = config
        .replication
        .iter()
        .map(|(dc, n)| format!("{dc} = {n}"))
        .collect();
    let nodes: Vec<String> = config.nodes.iter().map(|n| format!("\"{n}\"")).collect();
    // As the settings spell them (LOCAL_QUORUM, ...): their own serde names.
    let spelled = |value: serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let mut env = vec![
        ("MEMBERD_STORAGE".into(), "scylla".into()),
        (
            "MEMBERD_SCYLLA__FLAVOUR".into(),
            spelled(serde_json::json!(config.flavour)),
        ),
        (
            "MEMBERD_SCYLLA__NODES".into(),
            format!("[{}]", nodes.join(", ")),
        ),
        (
            "MEMBERD_SCYLLA__LOCAL_DATACENTER".into(),
            config.local_datacenter.clone(),
        ),
        (
            "MEMBERD_SCYLLA__REPLICATION".into(),
            format!("{{ {} }}", replication.join(", ")),
        ),
        (
            "MEMBERD_SCYLLA__KEYSPACE_PREFIX".into(),
            config.keyspace_prefix.clone(),
        ),
        (
            "MEMBERD_SCYLLA__REQUEST_TIMEOUT_MS".into(),
            config.request_timeout_ms.to_string(),
        ),
        (
            "MEMBERD_SCYLLA__LEDGER_WRITE_CONSISTENCY".into(),
            spelled(serde_json::json!(config.ledger_write_consistency)),
        ),
        (
            "MEMBERD_SCYLLA__WRITE_CONSISTENCY".into(),
            spelled(serde_json::json!(config.write_consistency)),
        ),
        (
            "MEMBERD_SCYLLA__SERIAL_CONSISTENCY".into(),
            spelled(serde_json::json!(config.serial_consistency)),
        ),
    ];
    if !config.control_replication.is_empty() {
        let control: Vec<String> = config
            .control_replication
            .iter()
            .map(|(dc, n)| format!("{dc} = {n}"))
            .collect();
        env.push((
            "MEMBERD_SCYLLA__CONTROL_REPLICATION".into(),
            format!("{{ {} }}", control.join(", ")),
        ));
    }
    if let Some(dc) = &config.relay_datacenter {
        env.push(("MEMBERD_SCYLLA__RELAY_DATACENTER".into(), dc.clone()));
    }
    env
}

/// A keyspace prefix no other test run uses: `<name>_<time and a random part>`.
pub fn unique_prefix(name: &str) -> String {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    // 26 characters; the prefix is at most 32 with the name.
    let room = 32usize.saturating_sub(name.len() + 1).min(id.len());
    format!("{name}_{}", &id[id.len() - room..])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use crate::config::{SerialConsistency, WriteConsistency};

    #[test]
    fn prefixes_are_unique_and_fit_the_setting() {
        let a = unique_prefix("e2e");
        let b = unique_prefix("e2e");
        assert_ne!(a, b);
        let config = ScyllaConfig {
            nodes: vec!["127.0.0.2:9042".into()],
            keyspace_prefix: unique_prefix("a_rather_long_test_name"),
            ..ScyllaConfig::default()
        };
        config.check().unwrap();
    }

    #[test]
    fn memberd_is_told_every_setting_a_test_chose() {
        let cluster = TestCluster {
            nodes: vec!["127.0.0.2:9042".into(), "127.0.0.3:9042".into()],
            datacenter: "dc1".into(),
            flavour: Flavour::Cassandra,
        };
        let mut config = cluster.config("e2e_x");
        config.ledger_write_consistency = WriteConsistency::EachQuorum;
        config.serial_consistency = SerialConsistency::LocalSerial;
        config.relay_datacenter = Some("dc1".into());
        let env: std::collections::BTreeMap<_, _> = memberd_env(&config).into_iter().collect();
        assert_eq!(env["MEMBERD_STORAGE"], "scylla");
        assert_eq!(env["MEMBERD_SCYLLA__FLAVOUR"], "cassandra");
        assert_eq!(
            env["MEMBERD_SCYLLA__NODES"],
            r#"["127.0.0.2:9042", "127.0.0.3:9042"]"#
        );
        assert_eq!(env["MEMBERD_SCYLLA__REPLICATION"], "{ dc1 = 1 }");
        assert_eq!(
            env["MEMBERD_SCYLLA__LEDGER_WRITE_CONSISTENCY"],
            "EACH_QUORUM"
        );
        assert_eq!(env["MEMBERD_SCYLLA__SERIAL_CONSISTENCY"], "LOCAL_SERIAL");
        assert_eq!(env["MEMBERD_SCYLLA__RELAY_DATACENTER"], "dc1");
    }
}
