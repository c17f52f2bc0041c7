//! Two regions on the CQL cluster `SCYLLA_NODES` names, each a memberd of its own with
//! `[region]` set (decision 0019), on one keyspace prefix: the set-up the two-region tests
//! share.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use super::{Addrs, http_exchange, start_in};
use loyalty_scylla::ScyllaConfig;
use loyalty_scylla::test_cluster::{TestCluster, memberd_env, unique_prefix};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::process::Child;

/// Both regions' identity signs with this key (`openssl genpkey -algorithm ed25519`), so a
/// token from one is accepted in the other.
const SIGNING_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIAdaZBkBODGUouW2yFak+r+H1br9Jm5WCv+3gF60W2RY";

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub struct TwoRegions {
    /// The keyspaces' settings, for `memberd migrate` and `memberd region`.
    shared: Vec<(String, String)>,
    env_a: Vec<(String, String)>,
    env_b: Vec<(String, String)>,
    pub http_a: String,
    pub http_b: String,
    /// The keyspaces' settings, to read what the regions wrote.
    pub config: ScyllaConfig,
    /// The `cgroup.procs` each region's memberd joins before it starts (the drill's cut).
    procs: [Option<PathBuf>; 2],
}

impl TwoRegions {
    /// Keyspaces of their own (`name_<id>`), migrated; region `a` and `b` on free ports, each
    /// taking the other's tenants over after `failover_after_ms` without it.
    pub fn new(cluster: &TestCluster, name: &str, failover_after_ms: u64) -> Self {
        let config = cluster.config(&unique_prefix(name));
        Self::with(config, None, failover_after_ms)
    }

    /// Like [`TwoRegions::new`] on a cluster of three datacenters (`tests/cql/cluster.sh
    /// start NAME three-dc`, whose `SCYLLA_NODES_DC1..3` are in the environment): region `a`
    /// in dc1, `b` in dc2, each keyspace replicated to both, and the control keyspace to dc3
    /// as well, the witness. None unless those are set.
    pub fn across_datacenters(
        cluster: &TestCluster,
        name: &str,
        failover_after_ms: u64,
    ) -> Option<Self> {
        let node = |dc: &str| std::env::var(format!("SCYLLA_NODES_{}", dc.to_uppercase())).ok();
        let (dc1, dc2, _) = (node("dc1")?, node("dc2")?, node("dc3")?);
        let mut config = cluster.config(&unique_prefix(name));
        config.replication = [("dc1".into(), 1), ("dc2".into(), 1)].into();
        config.control_replication = [("dc1", 1), ("dc2", 1), ("dc3", 1)]
            .map(|(dc, n)| (dc.to_string(), n))
            .into();
        Some(Self::with(config, Some([dc1, dc2]), failover_after_ms))
    }

    /// `regions`: each region's contact node, in dc1 and dc2; None: both use `config`'s.
    fn with(config: ScyllaConfig, regions: Option<[String; 2]>, failover_after_ms: u64) -> Self {
        let shared = memberd_env(&config);
        let migrate = Command::new(env!("CARGO_BIN_EXE_memberd"))
            .args(["migrate"])
            .envs(shared.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(migrate.status.success(), "{migrate:?}");
        let (http_a, http_b) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let mut env = shared.clone();
        env.extend(
            [
                ("MEMBERD_MEMBER__MASTER_KEY", super::cql::MASTER_KEY),
                ("MEMBERD_IDENTITY__SIGNING_KEY", SIGNING_KEY),
                // The keeper's renewals and take-overs, in the log a failure shows.
                (
                    "MEMBERD_TELEMETRY__FILTER",
                    "warn,memberd::region_keeper=debug",
                ),
                // The synchronous setting, for the ledger's writes and every other:
                // LOCAL_QUORUM only once the other region is failed over (decision 0019,
                // item 5).
                ("MEMBERD_SCYLLA__LEDGER_WRITE_CONSISTENCY", "EACH_QUORUM"),
                ("MEMBERD_SCYLLA__WRITE_CONSISTENCY", "EACH_QUORUM"),
                // How late the other region's revocations may take effect (decision 0019).
                ("MEMBERD_IDENTITY__RESYNC_SECS", "2"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env.push((
            "MEMBERD_REGION__FAILOVER_AFTER_MS".into(),
            failover_after_ms.to_string(),
        ));
        let in_region = |me: &str, peer: &str, http: &str, peer_http: &str| {
            let mut env = env.clone();
            env.extend([
                ("MEMBERD_HTTP_ADDR".into(), http.to_string()),
                ("MEMBERD_REGION__NAME".into(), me.to_string()),
                ("MEMBERD_REGION__PEER".into(), peer.to_string()),
                (
                    "MEMBERD_REGION__PEER_URL".into(),
                    format!("http://{peer_http}"),
                ),
            ]);
            env
        };
        let (mut env_a, mut env_b) = (
            in_region("a", "b", &http_a, &http_b),
            in_region("b", "a", &http_b, &http_a),
        );
        // Later entries win: each region's own datacenter.
        for ((env, node), dc) in [&mut env_a, &mut env_b]
            .into_iter()
            .zip(regions.iter().flatten())
            .zip(["dc1", "dc2"])
        {
            env.push(("MEMBERD_SCYLLA__NODES".into(), format!("[\"{node}\"]")));
            env.push(("MEMBERD_SCYLLA__LOCAL_DATACENTER".into(), dc.into()));
        }
        Self {
            env_a,
            env_b,
            shared,
            http_a,
            http_b,
            config,
            procs: [None, None],
        }
    }

    /// Starts `region`'s memberd (`a` or `b`) in the cgroup whose `cgroup.procs` is `procs`.
    pub fn confine(&mut self, region: &str, procs: PathBuf) {
        self.procs[usize::from(region != "a")] = Some(procs);
    }

    /// Sets `key` in `region`'s environment (`a` or `b`), for the memberd started next.
    pub fn set_env(&mut self, region: &str, key: &str, value: &str) {
        let env = match region {
            "a" => &mut self.env_a,
            _ => &mut self.env_b,
        };
        env.push((key.to_string(), value.to_string()));
    }

    /// `memberd region ARGS...`, which must succeed: its output.
    pub fn region(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_memberd"))
            .arg("region")
            .args(args)
            .envs(self.shared.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts region `a`'s memberd (again, after a kill) with its data in `dir`.
    pub async fn start_a(&self, dir: &Path) -> (Child, Addrs) {
        start_in(dir, &as_refs(&self.env_a), self.procs[0].as_deref()).await
    }

    pub async fn start_b(&self, dir: &Path) -> (Child, Addrs) {
        start_in(dir, &as_refs(&self.env_b), self.procs[1].as_deref()).await
    }
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// POSTs `body` with `token` and an idempotency key: the status, the region that answered
/// (`Answered-In-Region`), and the body (null when it is not JSON).
pub async fn post(
    http: &str,
    token: &str,
    path: &str,
    key: &str,
    body: Value,
) -> (u16, String, Value) {
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let (status, head, body) = http_exchange(http, "POST", path, &headers, &body.to_string()).await;
    let region = head
        .lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("answered-in-region: ").map(str::to_string)
        })
        .unwrap_or_default();
    (
        status,
        region,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}
