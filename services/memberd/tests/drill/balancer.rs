//! The global load balancer of the drill: HAProxy (Debian's `haproxy`) in front of both
//! regions' gateways, health-checking each on `/readyz`, as a global address would.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How often HAProxy checks each region, and after how many failures it stops sending there.
const CHECK: &str = "inter 300ms fall 2 rise 2";

/// Whether `haproxy` is installed (the drill skips without it, saying so).
pub fn installed() -> bool {
    std::process::Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// HAProxy listening on `listen`, sending to the gateways `regions` (name, host:port).
pub async fn start(dir: &Path, listen: &str, regions: &[(&str, &str)]) -> Child {
    let servers: String = regions
        .iter()
        .map(|(name, addr)| format!("  server {name} {addr} check\n"))
        .collect();
    let config = format!(
        "global\n  maxconn 512\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 15s\n  timeout server 15s\n\
         \x20 retries 2\n  option redispatch\n\
         frontend global\n  bind {listen}\n  default_backend regions\n\
         backend regions\n  balance roundrobin\n  option httpchk GET /readyz\n\
         \x20 http-check expect status 200\n  default-server {CHECK}\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).expect("write haproxy.cfg");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy starts");
    // Until it listens and has found a region ready.
    let url = format!("http://{listen}/readyz");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let ready = client.get(&url).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("haproxy did not answer on {listen} within 10 s");
}
