//! `memberd migrate` without a reachable cluster: a clear error and a failed exit, at once.
//! (With a cluster, the ScyllaDB conformance suite applies the migrations; issue 6.)

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use std::process::Command;

fn memberd(env: &[(&str, String)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memberd"));
    cmd.arg("--data-dir").arg(dir.path()).arg("migrate");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn migrate_names_what_to_set_and_what_it_could_not_reach() {
    let unset = memberd(&[]);
    assert!(!unset.status.success());
    let text = String::from_utf8_lossy(&unset.stderr);
    assert!(text.contains("scylla.nodes"), "{text}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = memberd(&[("MEMBERD_SCYLLA__NODES", format!("[\"127.0.0.1:{port}\"]"))]);
    assert!(!closed.status.success());
    let text = String::from_utf8_lossy(&closed.stderr);
    assert!(
        text.contains("cannot reach ScyllaDB at 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("check scylla.nodes"), "{text}");
}
