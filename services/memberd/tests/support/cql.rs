//! memberd on the CQL cluster the environment names (`loyalty_scylla::test_cluster`):
//! keyspaces of a test's own, migrated, and the settings that point memberd at them.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use loyalty_scylla::ScyllaConfig;
use loyalty_scylla::test_cluster::{self, SKIP_REASON, TestCluster};

/// The member service's master key in these tests (32 bytes, base64).
pub const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// Migrated keyspaces, and the environment that points memberd at them.
pub struct Keyspaces {
    pub config: ScyllaConfig,
    env: Vec<(String, String)>,
}

impl Keyspaces {
    /// The environment for `support::start_with`.
    pub fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Keyspaces `<name>_<unique>_*` on the cluster, migrated; None, with the reason printed,
/// when the environment names no cluster.
pub async fn keyspaces(name: &str) -> Option<Keyspaces> {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("{name}: its CQL half was skipped: {SKIP_REASON}");
        return None;
    };
    Some(migrated(cluster.config(&test_cluster::unique_prefix(name))).await)
}

/// `config`'s keyspaces migrated, and memberd's environment for them.
pub async fn migrated(config: ScyllaConfig) -> Keyspaces {
    memberd::migrate::run(&config)
        .await
        .expect("the test keyspaces are migrated");
    let mut env = test_cluster::memberd_env(&config);
    env.push(("MEMBERD_MEMBER__MASTER_KEY".into(), MASTER_KEY.into()));
    Keyspaces { config, env }
}
