//! `memberd region` on the CQL cluster `SCYLLA_NODES` names (skipped without one): tenants
//! placed in two regions, a failover refused while the region still renews its lease and
//! done once it lapses, a move back refused until the region is said to be rebuilt, then
//! done in two steps; `status` shows each state.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_region::Region;
use loyalty_region::control::ControlPlane;
use loyalty_region::control::cql::CqlControl;
use loyalty_scylla::test_cluster::{SKIP_REASON, TestCluster, memberd_env, unique_prefix};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn memberd(env: &[(String, String)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_memberd"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn refused(out: Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn tenants_are_placed_failed_over_and_moved_back_by_the_operator() {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("memberd region: skipped: {SKIP_REASON}");
        return;
    };
    let config = cluster.config(&unique_prefix("region"));
    let env = memberd_env(&config);
    ok(memberd(&env, &["migrate"]));

    ok(memberd(&env, &["region", "place", "acme", "a"]));
    ok(memberd(&env, &["region", "place", "globex", "b"]));
    let again = refused(memberd(&env, &["region", "place", "acme", "b"]));
    assert!(again.contains("acme is homed in a already"), "{again}");
    let status = ok(memberd(&env, &["region", "status"]));
    assert!(status.starts_with("homes at epoch 2\n"), "{status}");
    assert!(
        status.contains("acme\ta\n") && status.contains("globex\tb\n"),
        "{status}"
    );

    // Region a's keeper renews its lease (here, once, for a second).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let control = runtime.block_on(async {
        let session = loyalty_scylla::session::connect(&config).await.unwrap();
        let keyspace = config.keyspace("regions");
        CqlControl::prepare(Arc::new(session), &keyspace)
            .await
            .unwrap()
    });
    let a = Region::parse("a").unwrap();
    // Five seconds, as a keeper renews: the refused failover below starts a process and
    // connects first, which on a loaded machine can take longer than a shorter lease lives.
    let renewal = runtime.block_on(control.renew(&a, Duration::from_secs(5)));
    assert!(renewal.unwrap().held);
    let alive = refused(memberd(
        &env,
        &["region", "failover", "--from", "a", "--to", "b"],
    ));
    assert!(alive.contains("region a still holds its lease"), "{alive}");
    let started = Instant::now();
    loop {
        let out = memberd(&env, &["region", "failover", "--from", "a", "--to", "b"]);
        if out.status.success() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{out:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = ok(memberd(&env, &["region", "status"]));
    assert!(status.contains("acme\tb\n"), "{status}");

    let stale = refused(memberd(&env, &["region", "move", "--to", "a", "acme"]));
    assert!(stale.contains("was failed away from"), "{stale}");
    assert!(stale.contains("--rebuilt"), "{stale}");
    let moved = memberd(&env, &["region", "move", "--to", "a", "--rebuilt", "acme"]);
    let progress = String::from_utf8_lossy(&moved.stderr).to_string();
    ok(moved);
    assert!(progress.contains("marked moving to a"), "{progress}");
    let status = ok(memberd(&env, &["region", "status"]));
    assert!(
        status.contains("acme\ta\n") && status.contains("globex\tb\n"),
        "{status}"
    );
    // a has its lease row back: its keeper renews again.
    assert!(
        runtime
            .block_on(control.renew(&a, Duration::from_secs(1)))
            .unwrap()
            .held
    );
}
