//! A cut between the two regions alone (`REGION_DRILL_LOSS=cut`): every packet one region's
//! processes send the other's is dropped, while both reach the witness, the load balancer and
//! the clients. A region's processes are its memberd, its NATS server and its datacenter's
//! Cassandra node; each runs in a cgroup (v2) of its region, and the cut is a set of
//! `iptables -m cgroup` rules, one per cgroup and destination of the other region (the node's
//! address, the servers' ports). A socket counts as the cgroup its process was in when it
//! made it: so each process joins its cgroup before it starts (`support::confined`), and
//! `tests/cql/cluster.sh` starts each node of `three-dc` in a cgroup of its own
//! (`CQL_CGROUP_DC1..3`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one region sends from, and what the other must not reach.
#[derive(Debug, Default, Clone)]
pub struct Side {
    /// cgroups, relative to the hierarchy's root.
    pub cgroups: Vec<String>,
    /// Addresses of its own (its datacenter's node), every port.
    pub addresses: Vec<String>,
    /// Its servers' ports on 127.0.0.1.
    pub ports: Vec<u16>,
}

pub struct Cut {
    root: PathBuf,
    /// The regions' cgroups this cut made, relative to `root`.
    made: Vec<String>,
    /// The rules in place, each as `iptables -I` arguments.
    rules: Vec<Vec<String>>,
}

/// The cgroup v2 hierarchy's mount point.
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
    })
}

/// `iptables -w <action> <rule>`: `-I` inserts the rule, `-D` deletes it.
fn iptables(action: &str, rule: &[String]) -> Result<(), String> {
    let out = Command::new("iptables")
        .args(["-w", action])
        .args(rule)
        .output()
        .map_err(|e| format!("iptables: {e} (Debian's iptables package)"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "iptables {action} {}: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

impl Cut {
    /// Makes a cgroup for each region under the cgroup v2 hierarchy, or says why it cannot
    /// (not root, no cgroup v2, no iptables or no cgroup match in it).
    pub fn new() -> Result<Self, String> {
        let root = cgroup2_root().ok_or("no cgroup v2 hierarchy is mounted")?;
        let base = format!("memberd-drill-{}", std::process::id());
        let made: Vec<String> = ["a", "b"].map(|r| format!("{base}/{r}")).into();
        for group in &made {
            std::fs::create_dir_all(root.join(group))
                .map_err(|e| format!("cannot make cgroup {group} under {root:?}: {e} (root?)"))?;
        }
        let cut = Self {
            root,
            made,
            rules: Vec::new(),
        };
        // A rule that matches nothing, to learn that iptables and its cgroup match work.
        let probe = cut.rule(&cut.made[0], "127.0.0.1", Some(1));
        iptables("-I", &probe)?;
        iptables("-D", &probe)?;
        Ok(cut)
    }

    /// Region `region`'s (`a` or `b`) cgroup, relative to the hierarchy's root.
    pub fn cgroup(&self, region: &str) -> String {
        let index = usize::from(region != "a");
        self.made[index].clone()
    }

    /// The `cgroup.procs` of region `region`'s cgroup, for `support::confined`.
    pub fn procs(&self, region: &str) -> PathBuf {
        self.root.join(self.cgroup(region)).join("cgroup.procs")
    }

    fn rule(&self, cgroup: &str, address: &str, port: Option<u16>) -> Vec<String> {
        let mut rule = ["OUTPUT", "-m", "cgroup", "--path", cgroup, "-d", address]
            .map(String::from)
            .to_vec();
        if let Some(port) = port {
            rule.extend(["-p", "tcp", "--dport", &port.to_string()].map(String::from));
        }
        rule.extend(["-j", "DROP"].map(String::from));
        rule
    }

    /// Cuts `a` and `b` apart: drops what either sends the other.
    pub fn apply(&mut self, a: &Side, b: &Side) -> Result<(), String> {
        for (from, to) in [(a, b), (b, a)] {
            for cgroup in &from.cgroups {
                let destinations = to.addresses.iter().map(|a| (a.as_str(), None));
                let ports = to.ports.iter().map(|p| ("127.0.0.1", Some(*p)));
                for (address, port) in destinations.chain(ports) {
                    let rule = self.rule(cgroup, address, port);
                    iptables("-I", &rule)?;
                    self.rules.push(rule);
                }
            }
        }
        Ok(())
    }

    /// Lets everything through again.
    pub fn heal(&mut self) {
        for rule in std::mem::take(&mut self.rules) {
            if let Err(e) = iptables("-D", &rule) {
                eprintln!("region drill: {e}");
            }
        }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.heal();
        // A cgroup goes only once empty: what still runs in one moves to the root.
        for group in self.made.iter().rev() {
            let procs = self.root.join(group).join("cgroup.procs");
            for pid in std::fs::read_to_string(&procs).unwrap_or_default().lines() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
            let _ = std::fs::remove_dir(self.root.join(group));
        }
        if let Some(base) = self.made.first().and_then(|g| Path::new(g).parent()) {
            let _ = std::fs::remove_dir(self.root.join(base));
        }
    }
}
