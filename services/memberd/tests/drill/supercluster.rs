//! The drill's NATS: a supercluster of three clusters joined by gateways, one per region and
//! a witness (decision 0019, item 9). Each cluster is one server here (three in production);
//! its route to itself makes it a cluster, which JetStream in a supercluster requires. The
//! witness holds no stream: it keeps JetStream's meta group (one vote per server, across the
//! supercluster) at a majority when a region is lost, so the survivor can still create and
//! update streams and consumers. Each region's streams live in an account of its own
//! (`REGION_A`, `REGION_B`), so both keep the platform's stream names and subjects, and each
//! is placed in the cluster its publisher connects to.

use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use crate::support::two_regions::free_port;
use loyalty_events::testing::wait_until_listening;

/// The password of every user here (loopback only).
const PASSWORD: &str = "drill";

/// One server of the supercluster: its ports, store and process.
struct Server {
    name: &'static str,
    client_port: u16,
    route_port: u16,
    gateway_port: u16,
    child: Option<Child>,
    /// The `cgroup.procs` it joins before it starts (the drill's cut).
    procs: Option<PathBuf>,
}

pub struct Supercluster {
    servers: Vec<Server>,
    dir: PathBuf,
}

impl Supercluster {
    /// Starts clusters `a`, `b` and `witness`, and waits until JetStream has a meta leader.
    pub async fn start(dir: &Path) -> Self {
        Self::start_confined(dir, Vec::new()).await
    }

    /// Like [`Supercluster::start`], each server named in `procs` in the cgroup whose
    /// `cgroup.procs` is given.
    pub async fn start_confined(dir: &Path, procs: Vec<(&str, PathBuf)>) -> Self {
        let server = |name| Server {
            name,
            client_port: free_port(),
            route_port: free_port(),
            gateway_port: free_port(),
            child: None,
            procs: procs
                .iter()
                .find_map(|(region, procs)| (*region == name).then(|| procs.clone())),
        };
        let mut cluster = Self {
            servers: vec![server("a"), server("b"), server("witness")],
            dir: dir.to_path_buf(),
        };
        for name in ["a", "b", "witness"] {
            cluster.restart(name).await;
        }
        cluster.wait_for_jetstream("a").await;
        cluster
    }

    fn server(&self, name: &str) -> &Server {
        self.servers.iter().find(|s| s.name == name).unwrap()
    }

    fn server_mut(&mut self, name: &str) -> &mut Server {
        self.servers.iter_mut().find(|s| s.name == name).unwrap()
    }

    /// The region's cluster URL.
    pub fn url(&self, region: &str) -> String {
        format!("nats://127.0.0.1:{}", self.server(region).client_port)
    }

    /// The user of the region's account, for memberd and for the region's partners.
    pub fn user(region: &str) -> String {
        format!("region-{region}")
    }

    pub fn password() -> &'static str {
        PASSWORD
    }

    fn config(&self, me: &Server) -> String {
        let gateways: Vec<String> = self
            .servers
            .iter()
            .map(|s| {
                format!(
                    "{{name: {}, url: \"nats://127.0.0.1:{}\"}}",
                    s.name, s.gateway_port
                )
            })
            .collect();
        let store = self.dir.join(format!("js-{}", me.name));
        format!(
            "server_name: {name}-1\n\
             listen: 127.0.0.1:{client}\n\
             jetstream {{ store_dir: \"{store}\" }}\n\
             cluster {{ name: {name}, listen: 127.0.0.1:{route}, routes: [\"nats://127.0.0.1:{route}\"] }}\n\
             gateway {{ name: {name}, listen: 127.0.0.1:{gateway}, gateways: [{gateways}] }}\n\
             accounts {{\n\
             \x20 SYS {{ users: [{{user: sys, password: {PASSWORD}}}] }}\n\
             \x20 REGION_A {{ jetstream: enabled, users: [{{user: region-a, password: {PASSWORD}}}], {feed_a} }}\n\
             \x20 REGION_B {{ jetstream: enabled, users: [{{user: region-b, password: {PASSWORD}}}], {feed_b} }}\n\
             }}\n\
             system_account: SYS\n",
            name = me.name,
            client = me.client_port,
            route = me.route_port,
            gateway = me.gateway_port,
            store = store.display(),
            gateways = gateways.join(", "),
            feed_a = memberd::identity_feed::account_sharing_with("REGION_B"),
            feed_b = memberd::identity_feed::account_sharing_with("REGION_A"),
        )
    }

    /// Starts `name`'s server (again, after a kill) on its ports and store.
    pub async fn restart(&mut self, name: &str) {
        let config = self.config(self.server(name));
        let path = self.dir.join(format!("{name}.conf"));
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let mut command = match &self.server(name).procs {
            Some(procs) => crate::support::confined(procs, "nats-server"),
            None => Command::new("nats-server"),
        };
        let child = command
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is installed (tests/run.sh installs it)");
        let server = self.server_mut(name);
        server.child = Some(child);
        let port = server.client_port;
        wait_until_listening(port, &format!("nats-server {name}")).await;
    }

    /// The ports `name`'s server listens on: clients, routes and gateways.
    pub fn ports(&self, name: &str) -> Vec<u16> {
        let server = self.server(name);
        vec![server.client_port, server.route_port, server.gateway_port]
    }

    /// `kill -9` of `name`'s server, keeping its store.
    pub async fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.server_mut(name).child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to `name`'s server: a cut, not a crash.
    pub fn signal(&self, name: &str, signal: &str) {
        let child = self.server(name).child.as_ref();
        let pid = child.and_then(|c| c.id()).expect("the server runs");
        super::send_signal(pid, signal);
    }

    /// A JetStream client in the region's account, through its cluster.
    pub async fn jetstream(&self, region: &str) -> async_nats::jetstream::Context {
        let client =
            async_nats::ConnectOptions::with_user_and_password(Self::user(region), PASSWORD.into())
                .connect(self.url(region))
                .await
                .unwrap();
        async_nats::jetstream::new(client)
    }

    /// Until JetStream answers in `region`'s account (the meta group has a leader).
    async fn wait_for_jetstream(&self, region: &str) {
        let js = self.jetstream(region).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        // Listing the streams is answered by the meta leader.
        while let Some(Err(e)) = js.stream_names().next().await {
            assert!(
                Instant::now() < deadline,
                "the supercluster's JetStream found no leader in 30 s ({e}):\n{}",
                self.log_tail(region)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of `name`'s server log.
    pub fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}
