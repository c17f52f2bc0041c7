//! `memberd migrate`, and `memberd` with `storage = "scylla"`: without a reachable cluster, a
//! clear error and a failed exit, at once, and nothing served from the embedded store
//! instead; on the CQL cluster, every keyspace migrated from nothing, once, and served.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_scylla::test_cluster::{SKIP_REASON, TestCluster, memberd_env, unique_prefix};
use std::process::Command;

#[allow(dead_code)] // The ledger clients of the support module are not used here.
mod support;

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

/// `memberd migrate` on the CQL cluster (`SCYLLA_NODES`): from nothing, every keyspace and
/// migration; run again, nothing; then memberd serves on them. Before it, memberd refuses
/// the keyspaces, naming the command to run.
#[test]
fn migrate_on_cql_from_nothing_then_again_then_serve() {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("memberd migrate on CQL: skipped: {SKIP_REASON}");
        return;
    };
    let config = cluster.config(&unique_prefix("migrate"));
    let mut owned = memberd_env(&config);
    owned.push((
        "MEMBERD_MEMBER__MASTER_KEY".into(),
        support::cql::MASTER_KEY.into(),
    ));
    owned.push(("MEMBERD_HTTP_ADDR".into(), "127.0.0.1:0".into()));
    owned.push(("MEMBERD_GRPC_ADDR".into(), "127.0.0.1:0".into()));
    let env: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();

    // Not migrated: refused at once, with what to run.
    let refused = memberd_with(&["serve"], &env);
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains("lacks migration(s) [1]"), "{text}");
    assert!(text.contains("run `memberd migrate`"), "{text}");

    let first = memberd(&env);
    assert!(first.status.success(), "{first:?}");
    let out = String::from_utf8_lossy(&first.stdout);
    for (service, migrations) in memberd::migrate::SERVICES {
        let version = migrations.len();
        let line = format!(
            "{}: {version} migration(s) applied; schema at version {version}",
            config.keyspace(service)
        );
        assert!(out.contains(&line), "{out}");
    }
    let again = memberd(&env);
    assert!(again.status.success(), "{again:?}");
    let out = String::from_utf8_lossy(&again.stdout);
    let keyspaces = memberd::migrate::SERVICES.len();
    assert_eq!(
        out.matches("0 migration(s) applied").count(),
        keyspaces,
        "{out}"
    );

    // Served: memberd starts on the migrated keyspaces and answers.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (_memberd, addrs) = support::start_with(dir.path(), &env).await;
        let ready = support::http_get(&addrs.http, "/readyz").await;
        assert!(ready.starts_with("ready"), "{ready}");
    });
}
