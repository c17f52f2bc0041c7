//! The two-region drill's parts: the global load balancer, the NATS supercluster and a
//! partner in each region, the clients' load, the cut between the regions, and the checks of
//! the wallets afterwards.

pub mod balancer;
pub mod checks;
pub mod cut;
pub mod load;
pub mod partners;
pub mod supercluster;

/// `kill -<signal> <pid>`: `STOP` freezes a process as a cut would (it neither answers nor
/// acts, and keeps what it had under way), `CONT` lets it go on.
pub fn send_signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid}");
}
