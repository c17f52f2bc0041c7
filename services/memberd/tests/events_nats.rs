//! Events on a real NATS JetStream (a throwaway `nats-server -js` per test): every ledger
//! operation yields exactly its events, and neither a `kill -9` of memberd nor an outage of NATS
//! loses or duplicates one; member changes reach the member service's own stream. The tests
//! named `..._on_cql` do the same with `storage = "scylla"` on the CQL cluster, where events
//! go through the outbox relay (they skip, saying so, without one).

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::testing::{NatsServer, ledger_events, stream_events};
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

async fn memberd_on(nats: &NatsServer, dir: &Path) -> (Child, Ledger) {
    memberd_with(nats, dir, &[]).await
}

async fn memberd_with(nats: &NatsServer, dir: &Path, extra: &[(&str, &str)]) -> (Child, Ledger) {
    let url = nats.url();
    let mut env = vec![
        ("MEMBERD_EVENTS__BUS", "nats"),
        ("MEMBERD_EVENTS__NATS__URL", url.as_str()),
        ("MEMBERD_EVENTS__NATS__MAX_RECONNECT_DELAY_MS", "300"),
        ("MEMBERD_EVENTS__NATS__ACK_TIMEOUT_MS", "1000"),
        // Shorter than the pause before a restart: exactly-once must not rest on JetStream's
        // de-duplication window, which a long outage outlasts.
        ("MEMBERD_EVENTS__NATS__STREAM__DUPLICATE_WINDOW_SECS", "1"),
    ];
    env.extend_from_slice(extra);
    let (child, addrs) = start_with(dir, &env).await;
    (child, addrs.ledger().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ledger_operation_yields_exactly_its_events() {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_memberd, mut ledger) = memberd_on(&nats, dir.path()).await;
    let w = || wallet("shop.cn", "alice");
    let mut committed: Vec<pb::Entry> = Vec::new();
    let mut keep = |r: pb::WriteResult| {
        committed.extend(r.entries.clone());
        r
    };

    keep(
        ledger
            .open_wallet(pb::OpenWalletRequest {
                wallet: w(),
                idempotency_key: "open".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    let earned = keep(
        ledger
            .earn(earn("shop.cn", "alice", "earn-1", 50_000))
            .await
            .unwrap()
            .into_inner(),
    );
    // A replay commits nothing, so it publishes nothing.
    let replay = ledger
        .earn(earn("shop.cn", "alice", "earn-1", 50_000))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    let redeem = |key: &str| pb::RedeemRequest {
        wallet: w(),
        idempotency_key: key.into(),
        points: 100,
        reference: "basket".into(),
        capture: false,
    };
    let held = keep(
        ledger
            .redeem(redeem("redeem-1"))
            .await
            .unwrap()
            .into_inner(),
    );
    let hold = |key: &str, r: &pb::WriteResult| pb::HoldActionRequest {
        wallet: w(),
        idempotency_key: key.into(),
        hold_id: r.hold.as_ref().unwrap().hold_id.clone(),
    };
    keep(
        ledger
            .capture_hold(hold("capture-1", &held))
            .await
            .unwrap()
            .into_inner(),
    );
    let held2 = keep(
        ledger
            .redeem(redeem("redeem-2"))
            .await
            .unwrap()
            .into_inner(),
    );
    keep(
        ledger
            .void_hold(hold("void-2", &held2))
            .await
            .unwrap()
            .into_inner(),
    );
    keep(
        ledger
            .reverse(pb::ReverseRequest {
                wallet: w(),
                idempotency_key: "reverse-1".into(),
                entry_id: earned.entries[0].entry_id.clone(),
                points: 10,
                reason: "returned item".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    keep(
        ledger
            .adjust(pb::AdjustRequest {
                wallet: w(),
                idempotency_key: "adjust-1".into(),
                points: 7,
                reason: "goodwill".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    keep(
        ledger
            .top_up(pb::TopUpRequest {
                wallet: w(),
                idempotency_key: "topup-1".into(),
                amount: 10_000,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    let spent = keep(
        ledger
            .spend(pb::SpendRequest {
                wallet: w(),
                idempotency_key: "spend-1".into(),
                amount: 3_000,
                reference: "till 4".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    keep(
        ledger
            .refund(pb::RefundRequest {
                wallet: w(),
                idempotency_key: "refund-1".into(),
                spend_entry_id: spent.entries[0].entry_id.clone(),
                amount: 1_000,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    // A transfer commits on two wallets: the debit here, the credit on bob's.
    let bob_open = ledger
        .open_wallet(pb::OpenWalletRequest {
            wallet: wallet("shop.cn", "bob"),
            idempotency_key: "open-bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let bob_open_id = bob_open[0].entry_id.clone();
    committed.extend(bob_open);
    let transfer = ledger
        .transfer(pb::TransferRequest {
            tenant_id: "shop.cn".into(),
            from_member_id: "alice".into(),
            to_member_id: "bob".into(),
            idempotency_key: "gift-1".into(),
            points: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(transfer.state, "completed");
    committed.push(transfer.debit.unwrap());
    committed.push(transfer.credit.unwrap());
    let kinds: Vec<&str> = committed.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "opened",
        "earned",
        "held",
        "captured",
        "voided",
        "reversed",
        "adjusted",
        "topped_up",
        "spent",
        "refunded",
    ] {
        assert!(kinds.contains(&kind), "the script commits a {kind} entry");
    }

    let js = nats.jetstream().await;
    let events = ledger_events(&js, committed.len() as u64, WAIT).await;
    let got: Vec<(&str, &str)> = events.iter().map(|e| (e.id.as_str(), e.name())).collect();
    let want: Vec<(&str, &str)> = committed
        .iter()
        .map(|e| (e.entry_id.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(got, want, "one event per committed entry, in commit order");
    for (event, entry) in events.iter().zip(&committed) {
        assert_eq!(
            event.event_type,
            format!("loyalty.ledger.{}.v1", entry.kind)
        );
        assert_eq!(
            event.nats_subject(),
            format!("member.shop_cn.ledger.{}", entry.kind)
        );
        let member = if entry.kind == "transferred_in" || event.id == bob_open_id {
            "bob"
        } else {
            "alice"
        };
        assert_eq!(
            (event.tenant.as_str(), event.subject.as_str()),
            ("shop.cn", member)
        );
        assert_eq!(event.source, "/ledger/shop.cn");
        assert_eq!(event.time.timestamp_millis(), entry.at_ms);
        let deltas = entry.deltas.unwrap_or_default();
        let value = event.data_value();
        let data = &value["entry"]["deltas"];
        assert_eq!(data["points_available"], deltas.points_available);
        assert_eq!(data["points_held"], deltas.points_held);
        assert_eq!(data["stored_value"], deltas.stored_value);
    }
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|p| p[0] < p[1]), "{sequences:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_publishes_each_committed_change_exactly_once() {
    kill_9_during_a_burst(&[], Duration::from_secs(30)).await;
}

/// The same on the CQL cluster: the events go through the outbox relay and the change log
/// in the cluster, and the publisher resumes from what the stream holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_on_cql_publishes_each_committed_change_exactly_once() {
    let Some(cql) = support::cql::keyspaces("events_burst").await else {
        return;
    };
    kill_9_during_a_burst(&cql.env(), Duration::from_secs(60)).await;
}

async fn kill_9_during_a_burst(extra: &[(&str, &str)], within: Duration) {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut memberd, mut ledger) = memberd_with(&nats, dir.path(), extra).await;
    open_members(&mut ledger, "burst").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (acked, writers) = drive(&ledger, "burst", 16, stop.clone());
    let running = || acked.lock().unwrap().len() >= 300;
    support::wait_until("the burst is running", within, running).await;
    memberd.start_kill().unwrap();
    memberd.wait().await.unwrap();
    for w in writers {
        tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() > 100,
        "the burst was running ({} acked)",
        acked.len()
    );
    // Outlast the de-duplication window.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (_memberd, mut ledger) = memberd_with(&nats, dir.path(), extra).await;
    let committed = all_entries(&mut ledger, "burst").await;
    let events = ledger_events(&nats.jetstream().await, committed.len() as u64, WAIT).await;
    assert_exactly_once(&events, &committed, &acked);
    eprintln!(
        "events after kill -9: {} committed entries, {} acknowledged, each published once",
        committed.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publishing_and_saving_the_position_publishes_nothing_twice() {
    crash_between_publishing_and_saving(&[]).await;
}

/// The same on the CQL cluster, where the publisher's position is a row in the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publishing_and_saving_on_cql_publishes_nothing_twice() {
    let Some(cql) = support::cql::keyspaces("events_crash").await else {
        return;
    };
    crash_between_publishing_and_saving(&cql.env()).await;
}

async fn crash_between_publishing_and_saving(extra: &[(&str, &str)]) {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut crash = vec![("MEMBERD_EVENTS__CRASH_AFTER_PUBLISH", "true")];
    crash.extend_from_slice(extra);
    let (mut memberd, mut ledger) = memberd_with(&nats, dir.path(), &crash).await;
    let open = pb::OpenWalletRequest {
        wallet: wallet("crash", "bob"),
        idempotency_key: "open".into(),
    };
    // The publisher confirms the event, then aborts the process before saving its position;
    // it may abort before this reply is sent, so the reply is taken from the replay below.
    let _ = ledger.open_wallet(open.clone()).await;
    let status = tokio::time::timeout(WAIT, memberd.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "memberd aborted after publishing");
    // Outlast the de-duplication window, then restart without the fault.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_memberd, mut ledger) = memberd_with(&nats, dir.path(), extra).await;
    // The same key: the first open's result, not a second open.
    let opened = ledger.open_wallet(open).await.unwrap().into_inner();
    let earned = ledger
        .earn(earn("crash", "bob", "earn-1", 1_000))
        .await
        .unwrap()
        .into_inner();
    let js = nats.jetstream().await;
    let events = ledger_events(&js, 2, WAIT).await;
    // Give a wrongly repeated publication time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events_later = ledger_events(&js, 2, Duration::ZERO).await;
    assert_eq!(events, events_later);
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            opened.entries[0].entry_id.as_str(),
            earned.entries[0].entry_id.as_str()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_nats_loses_and_duplicates_nothing() {
    let mut nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_memberd, mut ledger) = memberd_on(&nats, dir.path()).await;
    open_members(&mut ledger, "outage").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (acked, writers) = drive(&ledger, "outage", 8, stop.clone());
    let running = || acked.lock().unwrap().len() >= 50;
    support::wait_until("the writes are running", WAIT, running).await;
    nats.stop().await;
    // Writes go on while NATS is down.
    let before = acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = acked.lock().unwrap().len() - before;
    assert!(during > 50, "only {during} writes while NATS was down");
    nats.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let committed = all_entries(&mut ledger, "outage").await;
    let events = ledger_events(&nats.jetstream().await, committed.len() as u64, WAIT).await;
    assert_exactly_once(&events, &committed, &acked);
    eprintln!(
        "events across a NATS outage: {} committed ({during} while NATS was down), each published once",
        committed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_written_by_another_data_directory_is_refused_and_reported() {
    let nats = NatsServer::start().await;
    let first = tempfile::tempdir().unwrap();
    let (mut memberd, mut ledger) = memberd_on(&nats, first.path()).await;
    let open = |member: &str| pb::OpenWalletRequest {
        wallet: wallet("fresh", member),
        idempotency_key: format!("open-{member}"),
    };
    ledger.open_wallet(open("ann")).await.unwrap();
    let js = nats.jetstream().await;
    assert_eq!(ledger_events(&js, 1, WAIT).await.len(), 1);
    memberd.start_kill().unwrap();
    memberd.wait().await.unwrap();

    // A new data directory against the old stream: its sequence 1 is not the stream's.
    let second = tempfile::tempdir().unwrap();
    let url = nats.url();
    let env = [
        ("MEMBERD_EVENTS__BUS", "nats"),
        ("MEMBERD_EVENTS__NATS__URL", url.as_str()),
    ];
    let (_memberd, addrs) = start_with(second.path(), &env).await;
    let http = addrs.http.clone();
    let mut ledger = addrs.ledger().await;
    ledger.open_wallet(open("ben")).await.unwrap(); // writes go on
    let deadline = std::time::Instant::now() + WAIT;
    let body = loop {
        let body = http_get(&http, "/readyz").await;
        if body.contains("publisher failing") || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(body.contains("another data directory"), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = ledger_events(&js, 1, Duration::ZERO).await;
    assert_eq!(events.len(), 1, "nothing published into the foreign stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_registered_then_tagged_reaches_the_member_stream_once_in_order() {
    registered_then_tagged(&[]).await;
}

/// The same on the CQL cluster, through the member keyspace's relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_registered_then_tagged_on_cql_reaches_the_member_stream_once_in_order() {
    let Some(cql) = support::cql::keyspaces("events_member").await else {
        return;
    };
    registered_then_tagged(&cql.env()).await;
}

async fn registered_then_tagged(extra: &[(&str, &str)]) {
    let nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = nats.url();
    let mut env = vec![
        ("MEMBERD_EVENTS__BUS", "nats"),
        ("MEMBERD_EVENTS__NATS__URL", url.as_str()),
    ];
    env.extend_from_slice(extra);
    let (_memberd, addrs) = start_with(dir.path(), &env).await;
    register_then_tag(&addrs, "acme", "alice").await;
    let js = nats.jetstream().await;
    let events = stream_events(&js, "LOYALTY_MEMBER", 2, WAIT).await;
    // Give a wrongly repeated publication time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stream_events(&js, "LOYALTY_MEMBER", 2, Duration::ZERO).await,
        events
    );
    for (subject, event) in &events {
        assert_eq!(*subject, event.nats_subject());
    }
    let events: Vec<_> = events.into_iter().map(|(_, e)| e).collect();
    assert_created_then_tagged(&events, "acme", "alice");
}
