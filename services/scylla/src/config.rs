//! `[scylla]`: where the cluster is and how much each write waits for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many replicas answer before a statement returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WriteConsistency {
    /// A quorum of the local datacenter (the default).
    LocalQuorum,
    /// A quorum in every datacenter: no acknowledged ledger write is lost with a region,
    /// at a cross-region round trip per write (decision 0012).
    EachQuorum,
}

/// Who decides a conditional write (Paxos).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SerialConsistency {
    /// The local datacenter's replicas (the default; tenants have a home region).
    LocalSerial,
    /// A majority of all replicas: accepted in either region, refused while they are cut apart.
    Serial,
}

/// Which CQL database the cluster runs. The statements are the same on both; only what the
/// keyspaces are created with differs (`tablets` is ScyllaDB's alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// ScyllaDB, the production target (the default).
    #[default]
    Scylladb,
    /// Apache Cassandra (tested with 5.0), which the test suite runs on where ScyllaDB cannot be
    /// installed. Keyspaces are created without ScyllaDB's `tablets` option.
    Cassandra,
}

/// The service whose keyspace is the control keyspace of two regions (decision 0019).
pub const CONTROL_SERVICE: &str = "regions";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScyllaConfig {
    /// Which database the nodes run: `scylladb` (the default) or `cassandra`.
    pub flavour: Flavour,
    /// Contact points, `host:port`. Empty: no ScyllaDB (the embedded store is used).
    pub nodes: Vec<String>,
    /// This region's datacenter: requests go to its replicas first.
    pub local_datacenter: String,
    /// Keyspaces are `<prefix>_<service>` (`loyalty_ledger`, ...).
    pub keyspace_prefix: String,
    /// Replicas per datacenter (NetworkTopologyStrategy), e.g. `{ dc1 = 3, dc2 = 3 }`.
    pub replication: BTreeMap<String, u32>,
    /// The control keyspace's replicas per datacenter (`<prefix>_regions`, decision 0019):
    /// both regions and the witness, e.g. `{ dc1 = 3, dc2 = 3, witness = 1 }`. Empty: the
    /// same as `replication` (one region, or failover kept manual).
    pub control_replication: BTreeMap<String, u32>,
    /// Ledger writes: LOCAL_QUORUM or EACH_QUORUM.
    pub ledger_write_consistency: WriteConsistency,
    /// Every other service's writes (members, campaigns and coupons, identity, outboxes):
    /// LOCAL_QUORUM or EACH_QUORUM. Reads are LOCAL_QUORUM whatever it says. With two
    /// regions and the synchronous setting, set both to EACH_QUORUM (decision 0019, item 5):
    /// a coupon redemption runs as steps on several partitions, and at LOCAL_QUORUM a lost
    /// region can take a later step's effect with it while an earlier one survives.
    pub write_consistency: WriteConsistency,
    /// Conditional writes: LOCAL_SERIAL or SERIAL.
    pub serial_consistency: SerialConsistency,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// A second try of an idempotent read sent after this many ms without an answer (0: none).
    pub speculative_retry_ms: u64,
    /// Whether keyspaces may use tablets. Off by default: ScyllaDB 2025.x creates keyspaces
    /// with tablets, where conditional writes (LWT, which every write here is) are not
    /// supported, so `memberd migrate` creates them with `tablets = {'enabled': false}`.
    /// On: the clause is left out and the cluster decides (releases before 6.0 do not know
    /// it; later ones once they support LWT on tablets).
    pub tablets: bool,
    /// The datacenter whose processes run the outbox relay's passes (unset: any). With two
    /// regions, set it to the region where the tenants' writes are made: the relay reads
    /// their outbox rows at LOCAL_QUORUM, which sees every write acknowledged there, and
    /// could miss one still replicating from the other region.
    pub relay_datacenter: Option<String>,
    /// The role to log in as where the cluster requires authentication
    /// (`PasswordAuthenticator`); unset, no credentials are sent.
    pub user: Option<String>,
    /// That role's password (`MEMBERD_SCYLLA__PASSWORD`, from a secret store, never the file).
    pub password: Option<loyalty_common::config::Secret>,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            flavour: Flavour::Scylladb,
            nodes: Vec::new(),
            local_datacenter: "dc1".into(),
            keyspace_prefix: "loyalty".into(),
            replication: BTreeMap::from([("dc1".into(), 3)]),
            control_replication: BTreeMap::new(),
            ledger_write_consistency: WriteConsistency::LocalQuorum,
            write_consistency: WriteConsistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 2_000,
            speculative_retry_ms: 50,
            tablets: false,
            relay_datacenter: None,
            user: None,
            password: None,
        }
    }
}

/// A setting that cannot be used, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scylla.{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

fn problem(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// A name CQL takes without quoting: letters, digits and underscores.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ScyllaConfig {
    /// Checks every setting a session or a migration uses.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(problem(
                "nodes",
                "no contact points; set scylla.nodes (MEMBERD_SCYLLA__NODES='[\"10.0.0.1:9042\"]')",
            ));
        }
        let prefix_ok = !self.keyspace_prefix.is_empty()
            && self.keyspace_prefix.len() <= 32
            && self
                .keyspace_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && self.keyspace_prefix.as_bytes()[0].is_ascii_lowercase();
        if !prefix_ok {
            return Err(problem(
                "keyspace_prefix",
                "1 to 32 of a-z 0-9 _, starting with a letter",
            ));
        }
        if self.replication.is_empty() {
            return Err(problem(
                "replication",
                "name at least one datacenter, e.g. { dc1 = 3 }",
            ));
        }
        for (setting, map) in [
            ("replication", &self.replication),
            ("control_replication", &self.control_replication),
        ] {
            for (dc, replicas) in map {
                if !plain_name(dc) {
                    return Err(problem(setting, format!("{dc:?} is not a datacenter name")));
                }
                if !(1..=9).contains(replicas) {
                    return Err(problem(
                        setting,
                        format!("{dc} = {replicas}: give 1 to 9 replicas"),
                    ));
                }
            }
        }
        if !self.replication.contains_key(&self.local_datacenter) {
            return Err(problem(
                "local_datacenter",
                format!(
                    "{:?} is not one of the datacenters in scylla.replication",
                    self.local_datacenter
                ),
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(problem(
                "user",
                "set both scylla.user and scylla.password (MEMBERD_SCYLLA__PASSWORD), or neither",
            ));
        }
        for (setting, ms) in [
            ("request_timeout_ms", self.request_timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
        ] {
            if ms == 0 {
                return Err(problem(setting, "give a timeout above 0 ms"));
            }
        }
        Ok(())
    }

    /// The keyspace of `service` (`ledger` → `loyalty_ledger`).
    pub fn keyspace(&self, service: &str) -> String {
        format!("{}_{service}", self.keyspace_prefix)
    }

    /// What follows `WITH replication =` in `CREATE KEYSPACE`: the replication map, and on
    /// ScyllaDB tablets turned off unless `tablets` is set (Cassandra has no tablets).
    pub fn replication_cql(&self) -> String {
        self.replication_cql_of(&self.replication)
    }

    /// [`Self::replication_cql`] for `service`'s keyspace: the control keyspace
    /// ([`CONTROL_SERVICE`]) takes `control_replication` when it is set.
    pub fn replication_cql_for(&self, service: &str) -> String {
        if service == CONTROL_SERVICE && !self.control_replication.is_empty() {
            self.replication_cql_of(&self.control_replication)
        } else {
            self.replication_cql()
        }
    }

    fn replication_cql_of(&self, replication: &BTreeMap<String, u32>) -> String {
        let dcs: Vec<String> = replication
            .iter()
            .map(|(dc, n)| format!("'{dc}': {n}"))
            .collect();
        let map = format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "));
        if self.tablets || self.flavour == Flavour::Cassandra {
            map
        } else {
            format!("{map} AND tablets = {{'enabled': false}}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;

    fn two_regions() -> ScyllaConfig {
        ScyllaConfig {
            nodes: vec!["10.0.0.1:9042".into()],
            local_datacenter: "eu-west".into(),
            replication: BTreeMap::from([("eu-west".into(), 3), ("ap-east".into(), 3)]),
            ..ScyllaConfig::default()
        }
    }

    #[test]
    fn the_control_keyspace_takes_its_own_replication_when_set() {
        let mut config = ScyllaConfig {
            flavour: Flavour::Cassandra,
            nodes: vec!["10.0.0.1:9042".into()],
            ..ScyllaConfig::default()
        };
        let same = config.replication_cql();
        assert_eq!(config.replication_cql_for(CONTROL_SERVICE), same);
        config.control_replication =
            BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 3), ("witness".into(), 1)]);
        assert_eq!(
            config.replication_cql_for(CONTROL_SERVICE),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3, 'witness': 1}"
        );
        assert_eq!(config.replication_cql_for("ledger"), same);
        config.check().unwrap();
        config.control_replication.insert("wit'ness".into(), 1);
        let refused = config.check().unwrap_err().to_string();
        assert!(refused.contains("control_replication"), "{refused}");
    }

    #[test]
    fn keyspaces_and_replication_come_from_the_settings() {
        let c = two_regions();
        c.check().unwrap();
        assert_eq!(c.keyspace("ledger"), "loyalty_ledger");
        assert_eq!(
            c.replication_cql(),
            "{'class': 'NetworkTopologyStrategy', 'ap-east': 3, 'eu-west': 3} \
             AND tablets = {'enabled': false}"
        );
        let cluster_decides = ScyllaConfig {
            tablets: true,
            ..two_regions()
        };
        assert_eq!(
            cluster_decides.replication_cql(),
            "{'class': 'NetworkTopologyStrategy', 'ap-east': 3, 'eu-west': 3}"
        );
        let cassandra = ScyllaConfig {
            flavour: Flavour::Cassandra,
            ..two_regions()
        };
        assert_eq!(
            cassandra.replication_cql(),
            "{'class': 'NetworkTopologyStrategy', 'ap-east': 3, 'eu-west': 3}"
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_what_to_do() {
        type Change = fn(&mut ScyllaConfig);
        let cases: [(Change, &str); 7] = [
            (|c| c.nodes.clear(), "nodes"),
            (|c| c.keyspace_prefix = "Loyalty".into(), "keyspace_prefix"),
            (|c| c.keyspace_prefix = "a;b".into(), "keyspace_prefix"),
            (|c| c.replication.clear(), "replication"),
            (
                |c| {
                    c.replication.insert("dc'x".into(), 3);
                },
                "replication",
            ),
            (|c| c.local_datacenter = "us".into(), "local_datacenter"),
            (|c| c.user = Some("memberd".into()), "user"),
        ];
        for (change, setting) in cases {
            let mut c = two_regions();
            change(&mut c);
            assert_eq!(c.check().unwrap_err().setting, setting);
        }
        let mut c = two_regions();
        c.replication.insert("eu-west".into(), 0);
        assert!(c.check().unwrap_err().problem.contains("1 to 9"));
    }
}
