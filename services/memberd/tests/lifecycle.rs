//! The process lifecycle of the real binary: it serves until asked to stop, however long that
//! is, and a SIGTERM stops it cleanly within the grace period.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_proto::ledger::v1 as pb;
use std::time::Duration;
use support::start_with;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_past_the_grace_period_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_with(dir.path(), &[("MEMBERD_SHUTDOWN_GRACE_SECS", "1")]).await;
    // Outlive the grace period several times over: it bounds shutdown, not the process's life.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "memberd exited on its own"
    );
    let mut ledger = addr.ledger().await;
    let open = pb::OpenWalletRequest {
        wallet: Some(pb::WalletRef {
            tenant_id: "lifecycle".into(),
            member_id: "m-1".into(),
        }),
        idempotency_key: "open-1".into(),
    };
    ledger.open_wallet(open).await.unwrap();

    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("memberd stops within 5 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "clean shutdown exits 0, got {status}");
}
