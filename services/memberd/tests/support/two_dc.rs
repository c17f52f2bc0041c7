//! A two-datacenter Cassandra cluster of the test's own (`tests/cql/cluster.sh start NAME
//! two-dc`: a node in dc1, one in dc2), with what the tests do to it: kill a node, cut one off
//! (SIGSTOP) and let it back, wait until a node sees another down. Destroyed when dropped.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Set by `tests/run.sh` where Java and Maven can run Cassandra nodes.
pub const ENABLED_BY: &str = "CQL_TWO_DATACENTERS";

pub struct TwoDatacenters {
    name: String,
    script: PathBuf,
    /// `host:port` of each datacenter's node.
    pub dc1: String,
    pub dc2: String,
}

impl TwoDatacenters {
    /// Starts the cluster; None, with the reason printed, where `CQL_TWO_DATACENTERS` is unset.
    pub fn start(test: &str) -> Option<Self> {
        if std::env::var(ENABLED_BY).is_err() {
            eprintln!(
                "{test}: skipped: {ENABLED_BY} is not set; tests/run.sh sets it where Java 17 \
                 and Maven can start the two-datacenter Cassandra cluster it needs"
            );
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/cql/cluster.sh");
        let name = format!("twodc-{}", std::process::id());
        let out = Command::new("bash")
            .arg(&script)
            .args(["start", &name, "two-dc"])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("bash runs tests/cql/cluster.sh");
        assert!(out.status.success(), "the two-datacenter cluster starts");
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Self {
            dc1: env["SCYLLA_NODES_DC1"].clone(),
            dc2: env["SCYLLA_NODES_DC2"].clone(),
            name,
            script,
        })
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

    /// `kill -9` of a datacenter's node.
    pub fn kill(&self, node: &str) {
        self.run(&["kill", node]);
    }

    /// Stops a node answering anyone (SIGSTOP): a datacenter cut off.
    pub fn pause(&self, node: &str) {
        self.run(&["pause", node]);
    }

    pub fn resume(&self, node: &str) {
        self.run(&["resume", node]);
    }

    /// Waits until `seer` has marked `node` down (so it no longer sends it writes).
    pub fn wait_down(&self, seer: &str, node: &str) {
        self.run(&["wait-down", seer, node]);
    }
}

impl Drop for TwoDatacenters {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .args(["destroy", &self.name])
            .status();
    }
}
