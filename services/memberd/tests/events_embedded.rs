//! Events on the embedded bus of the default set-up: `kill -9` of memberd during a burst, or
//! exactly between publishing and saving the publisher's position, still leaves each
//! committed change in the bus exactly once; member changes made over REST are published by
//! their own publisher, once and in order. The bus is read back from its directory once
//! memberd has stopped.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::Envelope;
use loyalty_events::config::EmbeddedBusConfig;
use loyalty_events::embedded::InProcessBus;
use loyalty_proto::ledger::v1 as pb;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::burst::{all_entries, assert_exactly_once, drive, earn, open_members, wallet};
use support::members::{assert_created_then_tagged, register_then_tag};
use support::{Ledger, http_get, start_with};
use tokio::process::Child;

mod support;

const WAIT: Duration = Duration::from_secs(30);

async fn memberd(dir: &Path, env: &[(&str, &str)]) -> (Child, Ledger, String) {
    let (child, addrs) = start_with(dir, env).await;
    (child, addrs.ledger().await, addrs.http)
}

/// Waits until memberd's ledger publisher has saved position `sequence` (every change up to
/// it is in the bus), then kills memberd so the test can open the bus.
async fn drain_and_stop(memberd: Child, http: &str, sequence: usize) {
    drain_service_and_stop(memberd, http, "ledger", sequence).await;
}

/// [`drain_and_stop`] for the publisher of `service`.
async fn drain_service_and_stop(mut memberd: Child, http: &str, service: &str, sequence: usize) {
    let want = format!("events_published_sequence{{service=\"{service}\"}} {sequence}\n");
    let deadline = std::time::Instant::now() + WAIT;
    while !http_get(http, "/metrics").await.contains(&want) {
        assert!(
            std::time::Instant::now() < deadline,
            "the {service} publisher did not reach {sequence}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    memberd.start_kill().unwrap();
    memberd.wait().await.unwrap();
}

fn bus_events(dir: &Path) -> Vec<Envelope> {
    let bus = InProcessBus::open(&dir.join("events"), &EmbeddedBusConfig::default()).unwrap();
    bus.events(">").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_leaves_each_committed_change_in_the_bus_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, mut ledger, _) = memberd(dir.path(), &[]).await;
    open_members(&mut ledger, "burst").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (acked, writers) = drive(&ledger, "burst", 16, stop.clone());
    let running = || acked.lock().unwrap().len() >= 300;
    support::wait_until("the burst is running", WAIT, running).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    for w in writers {
        tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() > 100, "the burst was running ({})", acked.len());

    let (second, mut ledger, http) = memberd(dir.path(), &[]).await;
    let committed = all_entries(&mut ledger, "burst").await;
    drain_and_stop(second, &http, committed.len()).await;
    let events = bus_events(dir.path());
    assert_exactly_once(&events, &committed, &acked);
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|p| p[0] < p[1]), "commit order");
    eprintln!(
        "embedded bus after kill -9: {} committed entries, {} acknowledged, each in the bus once",
        committed.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publishing_and_saving_the_position_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let crash = [("MEMBERD_EVENTS__CRASH_AFTER_PUBLISH", "true")];
    let (mut first, mut ledger, _) = memberd(dir.path(), &crash).await;
    let open = pb::OpenWalletRequest {
        wallet: wallet("crash", "bob"),
        idempotency_key: "open".into(),
    };
    // The bus confirms the event, then the process aborts before the position is saved; it
    // may abort before this reply is sent, so the reply is taken from the replay below.
    let _ = ledger.open_wallet(open.clone()).await;
    let status = tokio::time::timeout(WAIT, first.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "memberd aborted after publishing");

    let (second, mut ledger, http) = memberd(dir.path(), &[]).await;
    // The same key: the first open's result, not a second open.
    let opened = ledger.open_wallet(open).await.unwrap().into_inner();
    let earned = ledger
        .earn(earn("crash", "bob", "earn-1", 1_000))
        .await
        .unwrap()
        .into_inner();
    drain_and_stop(second, &http, 2).await;
    let ids: Vec<String> = bus_events(dir.path()).into_iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [
            opened.entries[0].entry_id.clone(),
            earned.entries[0].entry_id.clone()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_registered_then_tagged_is_published_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (first, addrs) = start_with(dir.path(), &[]).await;
    register_then_tag(&addrs, "acme", "alice").await;
    drain_service_and_stop(first, &addrs.http, "member", 2).await;
    // A restart goes on after what the bus holds, publishing neither event again.
    let (second, addrs) = start_with(dir.path(), &[]).await;
    drain_service_and_stop(second, &addrs.http, "member", 2).await;
    let bus =
        InProcessBus::open(&dir.path().join("events"), &EmbeddedBusConfig::default()).unwrap();
    let events = bus.events("member.*.member.>").unwrap();
    assert_created_then_tagged(&events, "acme", "alice");
}
