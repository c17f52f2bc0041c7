//! Every kind of ledger entry reaches the bus as exactly one event with the entry as its
//! payload, in commit order, on the embedded bus and on a real NATS JetStream (a throwaway
//! `nats-server -js`). The ledger runs in process under a manual clock, so the entries that
//! only time produces (activation, hold expiry, lot expiry, reminders) are covered too.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

mod common;

use common::*;
use loyalty_common::ids::IdempotencyKey;
use loyalty_events::config::{EmbeddedBusConfig, NatsConfig};
use loyalty_events::embedded::InProcessBus;
use loyalty_events::nats::NatsBus;
use loyalty_events::publisher::{Publisher, PublisherStatus};
use loyalty_events::testing::{NatsServer, ledger_events};
use loyalty_events::{Envelope, EventBus};
use loyalty_ledger::command::Command;
use loyalty_ledger::events::outbox;
use loyalty_ledger::model::EntryKind;
use loyalty_ledger::rules::{ExpiryPolicy, RuleSet, TopUpBonus};
use loyalty_ledger::store::ChangeFeed;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Runs every operation (and the scheduler through time) once; returns how many entries the
/// ledger committed.
async fn every_kind_of_entry(h: &Harness) -> usize {
    h.rules(RuleSet {
        lock_days: 1,
        expiry: ExpiryPolicy::RollingMonths { months: 1 },
        expiring_soon_days: 30,
        hold_ttl_secs: 60,
        low_balance_threshold: 500,
        top_up_bonuses: vec![TopUpBonus {
            min_paid: 1_000,
            bonus: 100,
        }],
        ..RuleSet::default()
    })
    .await;
    let alice = h.wallet("alice").await;
    let bob = h.wallet("bob").await;
    let earn = h.earn(&alice, 20_000).await; // 200 points, pending for a day
    h.clock.advance_secs(2 * 86_400);
    h.ledger.run_due(100).await.unwrap(); // activated; they expire within 30 days: reminded
    let hold = |w| async move {
        let r = h
            .run(
                w,
                Command::Redeem {
                    points: 10,
                    reference: "basket".into(),
                },
            )
            .await
            .unwrap();
        r.outcome.hold.unwrap().hold_id
    };
    let captured = hold(&alice).await;
    h.run(&alice, Command::Capture { hold: captured })
        .await
        .unwrap();
    let voided = hold(&alice).await;
    h.run(&alice, Command::Void { hold: voided }).await.unwrap();
    hold(&alice).await;
    h.clock.advance_secs(120);
    h.ledger.run_due(100).await.unwrap(); // the last hold expires
    let earn_id = earn.outcome.entries[0].id;
    let reverse = Command::Reverse {
        entry: earn_id,
        points: Some(5),
        reason: "a returned item".into(),
    };
    h.run(&alice, reverse).await.unwrap();
    let adjust = Command::Adjust {
        points: 7,
        reason: "goodwill".into(),
    };
    h.run(&alice, adjust).await.unwrap();
    let tenant = tenant();
    let key = |k: &str| IdempotencyKey::parse(k).unwrap();
    h.ledger
        .transfer(&tenant, &alice.member, &bob.member, &key("gift"), 5)
        .await
        .unwrap();
    // A credit refused (as if bob's wallet were gone): the debit is returned to alice.
    let refuse = &h.ledger.faults.refuse_transfer_credit;
    refuse.store(true, Ordering::SeqCst);
    let refused = h
        .ledger
        .transfer(&tenant, &alice.member, &bob.member, &key("refused"), 5)
        .await
        .unwrap_err();
    assert!(refused.message.contains("compensated"), "{refused:?}");
    refuse.store(false, Ordering::SeqCst);
    h.run(&bob, Command::TopUp { amount: 1_000 }).await.unwrap();
    let spend = Command::Spend {
        amount: 700,
        reference: "till 3".into(),
    };
    let spent = h.run(&bob, spend).await.unwrap(); // 1,100 -> 400: below 500
    let refund = Command::Refund {
        spend: spent.outcome.entries[0].id,
        amount: Some(50),
    };
    h.run(&bob, refund).await.unwrap();
    let bonus = Command::AdjustBonusValue {
        amount: 200,
        reason: "campaign bonus".into(),
    };
    h.run(&bob, bonus).await.unwrap();
    h.clock.advance_secs(40 * 86_400);
    h.ledger.run_due(100).await.unwrap(); // the lots expire
    h.store.changes_after(0, 100_000).await.unwrap().len()
}

/// The publisher on `bus` publishes every change of the ledger exactly once; `stored(n)` reads
/// what the bus holds once it holds `n` events.
async fn publishes_every_kind<F, Fut>(bus: Arc<dyn EventBus>, stored: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Vec<Envelope>>,
{
    let h = Harness::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publisher = Publisher {
        outbox: Arc::new(outbox(Arc::new(h.store.clone()))),
        bus,
        batch: 16,
        idle: Duration::from_millis(10),
        crash_after_publish: false,
        status: PublisherStatus::default(),
        reader: loyalty_events::publisher::READER.to_string(),
    };
    let task = tokio::spawn(publisher.run(stopped));
    let committed = every_kind_of_entry(&h).await;
    let events = stored(committed).await;
    stop.send(true).unwrap();
    task.await.unwrap();

    let changes = h.store.changes_after(0, 100_000).await.unwrap();
    assert_eq!(events.len(), changes.len(), "one event per committed entry");
    let mut kinds = HashSet::new();
    for (event, change) in events.iter().zip(&changes) {
        let entry = &change.entry;
        kinds.insert(entry.kind.as_str());
        assert_eq!(event.id, entry.id.to_string());
        assert_eq!(event.sequence, change.seq, "commit order");
        assert_eq!(
            event.event_type,
            format!("loyalty.ledger.{}.v1", entry.kind.as_str())
        );
        assert_eq!(event.subject, change.wallet.member.as_str());
        assert_eq!(event.tenant, change.wallet.tenant.as_str());
        assert_eq!(event.time.timestamp_millis(), entry.at.0);
        let data = event.data_value();
        assert_eq!(data["entry"], serde_json::to_value(entry).unwrap());
        // A request's entries carry its key; what housekeeping wrote carries none.
        let housekeeping = matches!(
            entry.kind,
            EntryKind::PendingActivated
                | EntryKind::HoldExpired
                | EntryKind::Expired
                | EntryKind::ExpiringSoon
        );
        assert_eq!(
            entry.idempotency_key.is_none(),
            housekeeping,
            "{:?}",
            entry.kind
        );
        assert_eq!(data["member"], change.wallet.member.as_str());
    }
    let missing: Vec<_> = EntryKind::ALL
        .iter()
        .filter(|k| !kinds.contains(k.as_str()))
        .collect();
    assert!(missing.is_empty(), "kinds never published: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_entry_reaches_the_embedded_bus_once() {
    let dir = tempfile::tempdir().unwrap();
    let bus = InProcessBus::open(dir.path(), &EmbeddedBusConfig::default()).unwrap();
    let read = bus.clone();
    publishes_every_kind(Arc::new(bus), |n| {
        let bus = read.clone();
        async move {
            for _ in 0..200 {
                let events = bus.events(">").unwrap();
                if events.len() >= n {
                    return events;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            bus.events(">").unwrap()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_entry_reaches_jetstream_once() {
    let server = NatsServer::start().await;
    let config = NatsConfig {
        url: server.url(),
        ..NatsConfig::default()
    };
    let bus = NatsBus::connect(&config).await.unwrap();
    let js = server.jetstream().await;
    publishes_every_kind(Arc::new(bus), |n| {
        let js = js.clone();
        async move { ledger_events(&js, n as u64, Duration::from_secs(10)).await }
    })
    .await;
}
