//! `memberd migrate`, and `memberd` with `storage = "scylla"`, without a reachable cluster: a
//! clear error and a failed exit, at once, and nothing served from the embedded store
//! instead. (With a cluster, the ScyllaDB conformance suite applies the migrations; issue 6.)

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use std::process::Command;

fn memberd(env: &[(&str, String)]) -> std::process::Output {
    memberd_with(&["migrate"], env)
}

fn memberd_with(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memberd"));
    cmd.arg("--data-dir").arg(dir.path()).args(args);
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

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serving_on_scylla_without_a_cluster_stops_at_once_with_what_to_check() {
    let env = [
        ("MEMBERD_STORAGE", "scylla".to_string()),
        (
            "MEMBERD_SCYLLA__NODES",
            format!("[\"127.0.0.1:{}\"]", closed_port()),
        ),
        ("MEMBERD_HTTP_ADDR", "127.0.0.1:0".to_string()),
        ("MEMBERD_GRPC_ADDR", "127.0.0.1:0".to_string()),
    ];
    for args in [&["serve"][..], &["audit", "verify"][..]] {
        let started = std::time::Instant::now();
        let out = memberd_with(args, &env);
        assert!(!out.status.success(), "{args:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("cannot reach ScyllaDB at 127.0.0.1:"),
            "{args:?}: {text}"
        );
    }
    let unset = memberd_with(&["serve"], &[("MEMBERD_STORAGE", "scylla".to_string())]);
    assert!(!unset.status.success());
    let text = String::from_utf8_lossy(&unset.stderr);
    assert!(text.contains("scylla.nodes"), "{text}");
}
