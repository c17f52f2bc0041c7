//! Cassandra clusters of a test's own (`tests/cql/cluster.sh start NAME ...`), destroyed when
//! dropped: the two-datacenter cluster (a node in dc1, one in dc2) with what the tests do to
//! it (kill a node, cut one off with SIGSTOP and let it back, wait until a node sees another
//! down), and any other one a test starts with settings of its own.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Set by `tests/run.sh` where Java and Maven can run Cassandra nodes.
pub const ENABLED_BY: &str = "CQL_TWO_DATACENTERS";

/// A cluster this test started.
pub struct OwnCluster {
    name: String,
    script: PathBuf,
    /// What `cluster.sh start` printed: SCYLLA_NODES, SCYLLA_NODES_DC1, ...
    pub env: BTreeMap<String, String>,
}

impl OwnCluster {
    /// Starts cluster `name` (made unique to this process) of `topology` (`one`, `two-dc`)
    /// with `settings` for `cluster.sh`; None, with the reason printed, where
    /// `CQL_TWO_DATACENTERS` is unset.
    pub fn start(
        test: &str,
        name: &str,
        topology: &str,
        settings: &[(&str, &str)],
    ) -> Option<Self> {
        if std::env::var(ENABLED_BY).is_err() {
            eprintln!(
                "{test}: skipped: {ENABLED_BY} is not set; tests/run.sh sets it where Java 17 \
                 and Maven can start the Cassandra cluster it needs"
            );
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/cql/cluster.sh");
        let name = format!("{name}-{}", std::process::id());
        let out = Command::new("bash")
            .arg(&script)
            .args(["start", &name, topology])
            .env_remove("CQL_AUDIT")
            .envs(settings.iter().copied())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("bash runs tests/cql/cluster.sh");
        assert!(out.status.success(), "the cluster {name} starts");
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Self { name, script, env })
    }

    fn run(&self, args: &[&str]) {
        let status = Command::new("bash")
            .arg(&self.script)
            .arg(args[0])
            .arg(&self.name)
            .args(&args[1..])
            .status()
            .expect("bash runs tests/cql/cluster.sh");
        assert!(status.success(), "cluster.sh {args:?}");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .args(["destroy", &self.name])
            .status();
    }
}

pub struct TwoDatacenters {
    cluster: OwnCluster,
    /// `host:port` of each datacenter's node.
    pub dc1: String,
    pub dc2: String,
}

impl TwoDatacenters {
    /// Starts the cluster; None, with the reason printed, where `CQL_TWO_DATACENTERS` is unset.
    pub fn start(test: &str) -> Option<Self> {
        let cluster = OwnCluster::start(test, "twodc", "two-dc", &[])?;
        Some(Self {
            dc1: cluster.env["SCYLLA_NODES_DC1"].clone(),
            dc2: cluster.env["SCYLLA_NODES_DC2"].clone(),
            cluster,
        })
    }

    /// `kill -9` of a datacenter's node.
    pub fn kill(&self, node: &str) {
        self.cluster.run(&["kill", node]);
    }

    /// Stops a node answering anyone (SIGSTOP): a datacenter cut off.
    pub fn pause(&self, node: &str) {
        self.cluster.run(&["pause", node]);
    }

    pub fn resume(&self, node: &str) {
        self.cluster.run(&["resume", node]);
    }

    /// Waits until `seer` has marked `node` down (so it no longer sends it writes).
    pub fn wait_down(&self, seer: &str, node: &str) {
        self.cluster.run(&["wait-down", seer, node]);
    }
}
