//! One contract, two adapters: the in-process bus and NATS JetStream (a throwaway
//! `nats-server -js`) must store events in order, keep one copy per id, and report the newest.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::config::{EmbeddedBusConfig, NatsConfig};
use loyalty_events::embedded::InProcessBus;
use loyalty_events::envelope::Origin;
use loyalty_events::nats::NatsBus;
use loyalty_events::subscribe::{Retried, StartAt, SubscriptionSpec, Subscriptions};
use loyalty_events::testing::{NatsServer, stream_events};
use loyalty_events::{Envelope, EventBus};
use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

fn event(tenant: &str, name: &str, id: &str, sequence: u64) -> Envelope {
    let origin = Origin {
        service: "ledger",
        tenant,
        member: "m1",
    };
    let data = serde_json::value::to_raw_value(&serde_json::json!({ "n": sequence })).unwrap();
    Envelope::new(origin, name, id.into(), sequence, chrono::Utc::now(), data)
}

/// The contract; `stored` reads back what the bus holds, oldest first.
async fn contract<F, Fut>(bus: &dyn EventBus, stored: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Vec<Envelope>>,
{
    bus.prepare("ledger").await.unwrap();
    bus.prepare("ledger").await.unwrap(); // idempotent
    assert!(bus.is_connected());
    assert_eq!(bus.last_published("ledger").await.unwrap(), None);

    let a = event("acme", "earned", "A", 1);
    let b = event("acme", "held", "B", 2);
    let c = event("shop.cn", "spent", "C", 3);
    bus.publish(vec![a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    // A re-published copy is confirmed and not stored again.
    let d = event("acme", "captured", "D", 4);
    bus.publish(vec![b.clone(), d.clone()]).await.unwrap();

    let held = stored(4).await;
    assert_eq!(held, vec![a, b, c.clone(), d.clone()]);
    assert_eq!(c.nats_subject(), "member.shop_cn.ledger.spent");
    let last = bus.last_published("ledger").await.unwrap().unwrap();
    assert_eq!((last.sequence, last.id.as_str()), (4, "D"));
}

/// Durable subscriptions: order, filter, redelivery, dead letters after `max_attempts`, and a
/// position that outlives the subscription. `dead` reads (subject, event) of the dead letters.
async fn subscription_contract<F, Fut>(bus: &dyn EventBus, subs: &dyn Subscriptions, dead: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Vec<(String, Envelope)>>,
{
    bus.prepare("ledger").await.unwrap();
    let events = [
        event("acme", "earned", "A", 1),
        event("acme", "earned", "POISON", 2),
        event("acme", "earned", "C", 3),
        event("acme", "spent", "X", 4),
    ];
    bus.publish(events.to_vec()).await.unwrap();
    let spec = SubscriptionSpec {
        durable: "triggers".into(),
        service: "ledger".into(),
        filter: "member.*.ledger.earned".into(),
        max_attempts: 3,
        ack_wait: Duration::from_secs(30),
        start: StartAt::All,
        max_ack_pending: 1_000,
    };
    let mut sub = subs.subscribe(spec.clone()).await.unwrap();
    let mut deliveries = Vec::new();
    let mut acked = HashSet::new();
    let mut poisoned = false;
    while !(acked.contains("A") && acked.contains("C") && poisoned) {
        let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("a delivery within 10 s")
            .unwrap();
        deliveries.push((d.event.id.clone(), d.attempt));
        if d.event.id == "POISON" {
            let attempt = d.attempt;
            let retried = d.retry(Duration::from_millis(20), "boom").await.unwrap();
            let want = if attempt == 3 {
                Retried::DeadLettered
            } else {
                Retried::Later
            };
            assert_eq!(retried, want, "attempt {attempt}");
            poisoned = retried == Retried::DeadLettered;
        } else {
            acked.insert(d.event.id.clone());
            d.ack().await.unwrap();
        }
    }
    let poison: Vec<u32> = deliveries
        .iter()
        .filter(|(id, _)| id == "POISON")
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(poison, [1, 2, 3], "{deliveries:?}");
    assert_eq!(deliveries.iter().filter(|(id, _)| id == "A").count(), 1);
    assert_eq!(deliveries.iter().filter(|(id, _)| id == "C").count(), 1);
    assert!(
        deliveries.iter().all(|(id, _)| id != "X"),
        "the filter holds"
    );
    assert_eq!(deliveries[0], ("A".to_string(), 1), "in order");

    let letters = dead(1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        letters[0].0,
        "deadletter.triggers.member.acme.ledger.earned"
    );
    assert_eq!(letters[0].1.id, "POISON");

    // The position is durable: a new subscription under the name gets only what is new.
    drop(sub);
    bus.publish(vec![event("acme", "earned", "E", 5)])
        .await
        .unwrap();
    let mut again = subs.subscribe(spec).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), again.next())
        .await
        .expect("a delivery within 10 s")
        .unwrap();
    assert_eq!((d.event.id.as_str(), d.attempt), ("E", 1));
    d.ack().await.unwrap();
}

/// A handler that dies without settling: the event comes again (after `ack_wait` on JetStream,
/// at once in process), and after its last attempt it is a dead letter, not lost.
async fn unsettled_contract<F, Fut>(bus: &dyn EventBus, subs: &dyn Subscriptions, dead: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Vec<(String, Envelope)>>,
{
    bus.prepare("ledger").await.unwrap();
    bus.publish(vec![event("acme", "earned", "CRASHER", 1)])
        .await
        .unwrap();
    let spec = SubscriptionSpec {
        durable: "crashy".into(),
        service: "ledger".into(),
        filter: "member.*.ledger.>".into(),
        max_attempts: 2,
        ack_wait: Duration::from_secs(1),
        start: StartAt::All,
        max_ack_pending: 1_000,
    };
    let mut sub = subs.subscribe(spec).await.unwrap();
    let attempts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let handler = tokio::spawn(async move {
        loop {
            let d = sub.next().await.unwrap();
            seen.lock().unwrap().push(d.attempt);
            drop(d); // the handler "dies" before settling
        }
    });
    let letters = dead(1).await;
    handler.abort();
    assert_eq!(*attempts.lock().unwrap(), [1, 2]);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].1.id, "CRASHER");
}

fn embedded(dir: &std::path::Path) -> InProcessBus {
    InProcessBus::open(dir, &EmbeddedBusConfig::default()).unwrap()
}

/// The embedded bus's dead letters, once there are at least `n` (or after 5 s).
async fn embedded_dead_letters(bus: &InProcessBus, n: usize) -> Vec<(String, Envelope)> {
    for _ in 0..100 {
        if bus.dead_letters().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bus.dead_letters()
        .unwrap()
        .into_iter()
        .map(|d| (d.subject, d.event))
        .collect()
}

#[tokio::test]
async fn the_in_process_bus_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let bus = embedded(dir.path());
    contract(&bus, |_| async { bus.events(">").unwrap() }).await;
}

#[tokio::test]
async fn in_process_subscriptions_keep_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let bus = embedded(dir.path());
    subscription_contract(&bus, &bus, |n| embedded_dead_letters(&bus, n)).await;
}

#[tokio::test]
async fn in_process_unsettled_deliveries_come_again_then_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let bus = embedded(dir.path());
    unsettled_contract(&bus, &bus, |n| embedded_dead_letters(&bus, n)).await;
}

#[tokio::test]
async fn in_process_durables_and_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bus = embedded(dir.path());
    before_restart(&bus, &bus).await;
    drop(bus);
    let bus = embedded(dir.path());
    after_restart(&bus, &bus).await;
    let dead = bus.dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "the dead letter is kept: {dead:?}");
    assert_eq!(dead[0].reason, "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_durables_and_events_survive_a_restart() {
    let mut server = NatsServer::start().await;
    let bus = connected(&server).await;
    before_restart(&bus, &bus).await;
    drop(bus);
    server.stop_gracefully().await;
    server.restart().await;
    let bus = connected(&server).await;
    after_restart(&bus, &bus).await;
}

/// A handler that holds a delivery past `ack_wait` (hung, not dead) gets the event again.
async fn ack_wait_contract(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    bus.prepare("ledger").await.unwrap();
    bus.publish(vec![event("acme", "earned", "SLOW", 1)])
        .await
        .unwrap();
    let spec = SubscriptionSpec {
        durable: "slow".into(),
        ..restart_spec()
    };
    let mut sub = subs.subscribe(spec).await.unwrap();
    let first = next(&mut sub).await;
    let again = next(&mut sub).await;
    assert_eq!((again.event.id.as_str(), again.attempt), ("SLOW", 2));
    again.ack().await.unwrap();
    drop(first);
    a_new_event_comes_next(bus, &mut sub, "NEXT", 2).await;
}

/// With two deliveries unsettled and `max_ack_pending` 2, the third waits for a settlement.
async fn max_ack_pending_contract(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    bus.prepare("ledger").await.unwrap();
    let events = (1..=3)
        .map(|i| event("acme", "earned", &format!("E{i}"), i))
        .collect();
    bus.publish(events).await.unwrap();
    let spec = SubscriptionSpec {
        durable: "bounded".into(),
        max_ack_pending: 2,
        ..restart_spec()
    };
    let mut sub = subs.subscribe(spec).await.unwrap();
    let first = next(&mut sub).await;
    let second = next(&mut sub).await;
    assert_eq!(
        (first.event.id.as_str(), second.event.id.as_str()),
        ("E1", "E2")
    );
    let held_back = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
    assert!(
        held_back.is_err(),
        "a third delivery while two are unsettled"
    );
    first.ack().await.unwrap();
    let third = next(&mut sub).await;
    assert_eq!(third.event.id, "E3");
    second.ack().await.unwrap();
    third.ack().await.unwrap();
}

#[tokio::test]
async fn in_process_subscriptions_find_a_rare_event_past_many_others() {
    let dir = tempfile::tempdir().unwrap();
    let bus = embedded(dir.path());
    let many = (1..=10_000)
        .map(|i| event("acme", "earned", &format!("N{i}"), i))
        .collect();
    bus.publish(many).await.unwrap();
    bus.publish(vec![event("acme", "low_balance", "RARE", 10_001)])
        .await
        .unwrap();
    let spec = SubscriptionSpec {
        durable: "rare".into(),
        filter: "member.*.ledger.low_balance".into(),
        ..restart_spec()
    };
    let mut sub = bus.subscribe(spec).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event.id, "RARE");
    d.ack().await.unwrap();
}

/// A contract body taking the bus and its subscriptions, as one test per bus: the embedded
/// bus in a temporary directory, and a throwaway `nats-server -js`.
macro_rules! on_both_buses {
    ($body:ident: $in_process:ident, $jetstream:ident) => {
        #[tokio::test]
        async fn $in_process() {
            let dir = tempfile::tempdir().unwrap();
            let bus = embedded(dir.path());
            $body(&bus, &bus).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $jetstream() {
            let server = NatsServer::start().await;
            let bus = connected(&server).await;
            $body(&bus, &bus).await;
        }
    };
}

on_both_buses!(start_contract: in_process_durables_start_where_asked, jetstream_durables_start_where_asked);
on_both_buses!(settled_contract: in_process_a_durable_says_how_far_it_has_settled, jetstream_a_durable_says_how_far_it_has_settled);
on_both_buses!(forget_contract: in_process_a_forgotten_durable_starts_afresh, jetstream_a_forgotten_durable_starts_afresh);
on_both_buses!(ack_wait_contract: in_process_deliveries_held_past_ack_wait_come_again, jetstream_deliveries_held_past_ack_wait_come_again);
on_both_buses!(max_ack_pending_contract: in_process_subscriptions_hold_back_beyond_max_ack_pending, jetstream_subscriptions_hold_back_beyond_max_ack_pending);

/// Publishes one event and checks that it is `sub`'s next delivery, a first attempt.
async fn a_new_event_comes_next(
    bus: &dyn EventBus,
    sub: &mut Box<dyn loyalty_events::subscribe::Subscription>,
    id: &str,
    sequence: u64,
) {
    bus.publish(vec![event("acme", "earned", id, sequence)])
        .await
        .unwrap();
    let d = next(sub).await;
    assert_eq!((d.event.id.as_str(), d.attempt), (id, 1));
    d.ack().await.unwrap();
}

fn restart_spec() -> SubscriptionSpec {
    SubscriptionSpec {
        durable: "restarting".into(),
        service: "ledger".into(),
        filter: "member.*.ledger.>".into(),
        max_attempts: 2,
        ack_wait: Duration::from_secs(1),
        start: StartAt::All,
        max_ack_pending: 1_000,
    }
}

async fn next(
    sub: &mut Box<dyn loyalty_events::subscribe::Subscription>,
) -> loyalty_events::subscribe::Delivery {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a delivery within 10 s")
        .unwrap()
}

/// Before a restart of the bus (or of its server): A is acknowledged, P dead-lettered after
/// two attempts, and B delivered but never settled.
async fn before_restart(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    bus.prepare("ledger").await.unwrap();
    let events = ["A", "P", "B", "C"]
        .iter()
        .enumerate()
        .map(|(i, id)| event("acme", "earned", id, i as u64 + 1))
        .collect();
    bus.publish(events).await.unwrap();
    let mut sub = subs.subscribe(restart_spec()).await.unwrap();
    let (mut acked, mut dead, mut held) = (false, false, false);
    while !(acked && dead && held) {
        let d = next(&mut sub).await;
        match d.event.id.as_str() {
            "A" => {
                d.ack().await.unwrap();
                acked = true;
            }
            "P" => {
                dead = d.retry(Duration::ZERO, "rejected").await.unwrap() == Retried::DeadLettered
            }
            // The process "dies" holding it: the delivery is never settled.
            _ => {
                held |= d.event.id == "B";
                std::mem::forget(d);
            }
        }
    }
}

/// After the restart: the newest event is still known, B comes again, C comes, A and P never
/// do (C's attempt may be 2 on JetStream, whose pull consumer may have fetched it already).
async fn after_restart(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    let last = bus.last_published("ledger").await.unwrap().unwrap();
    assert_eq!((last.sequence, last.id.as_str()), (4, "C"));
    let mut sub = subs.subscribe(restart_spec()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let d = next(&mut sub).await;
        seen.push((d.event.id.clone(), d.attempt));
        d.ack().await.unwrap();
    }
    seen.sort();
    assert_eq!((seen[0].0.as_str(), seen[0].1), ("B", 2), "{seen:?}");
    assert_eq!(seen[1].0, "C", "{seen:?}");
    a_new_event_comes_next(bus, &mut sub, "D", 5).await;
}

/// A new durable starts from the oldest event, from new ones only, or from a time.
async fn start_contract(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    bus.prepare("ledger").await.unwrap();
    bus.publish(vec![event("acme", "earned", "OLD", 1)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    bus.publish(vec![event("acme", "earned", "MID", 2)])
        .await
        .unwrap();
    let spec = |durable: &str, start| SubscriptionSpec {
        durable: durable.into(),
        start,
        ..restart_spec()
    };
    let mut all = subs.subscribe(spec("all", StartAt::All)).await.unwrap();
    let mut new = subs.subscribe(spec("new", StartAt::New)).await.unwrap();
    let mut since = subs
        .subscribe(spec("since", StartAt::Time(between)))
        .await
        .unwrap();
    let mut after = subs
        .subscribe(spec("after", StartAt::After(1)))
        .await
        .unwrap();
    bus.publish(vec![event("acme", "earned", "NEW", 3)])
        .await
        .unwrap();
    for (sub, want) in [
        (&mut all, ["OLD", "MID", "NEW"].as_slice()),
        (&mut new, ["NEW"].as_slice()),
        (&mut since, ["MID", "NEW"].as_slice()),
        (&mut after, ["MID", "NEW"].as_slice()),
    ] {
        for id in want {
            let d = next(sub).await;
            assert_eq!(d.event.id, *id);
            d.ack().await.unwrap();
        }
    }
}

/// How far a durable has settled everything: not past an event to be delivered again, and
/// in change-log sequences, whatever the bus numbers its own positions.
async fn settled_contract(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    bus.prepare("ledger").await.unwrap();
    let events = ["A", "B", "C"]
        .iter()
        .enumerate()
        .map(|(i, id)| event("acme", "earned", id, i as u64 + 41))
        .collect();
    bus.publish(events).await.unwrap();
    let spec = SubscriptionSpec {
        durable: "floor".into(),
        ..restart_spec()
    };
    assert_eq!(subs.settled(&spec).await.unwrap(), None, "no durable yet");
    let mut sub = subs.subscribe(spec.clone()).await.unwrap();
    let a = next(&mut sub).await;
    assert_eq!(
        subs.settled(&spec).await.unwrap(),
        None,
        "nothing settled yet"
    );
    a.ack().await.unwrap();
    assert_eq!(subs.settled(&spec).await.unwrap(), Some(41));
    let b = next(&mut sub).await;
    assert_eq!(b.event.id, "B");
    b.retry(Duration::from_millis(300), "later").await.unwrap();
    let c = next(&mut sub).await;
    assert_eq!(c.event.id, "C");
    c.ack().await.unwrap();
    assert_eq!(
        subs.settled(&spec).await.unwrap(),
        Some(41),
        "B is still open"
    );
    let b = next(&mut sub).await;
    assert_eq!((b.event.id.as_str(), b.attempt), ("B", 2));
    b.ack().await.unwrap();
    assert_eq!(subs.settled(&spec).await.unwrap(), Some(43));
}

/// A forgotten durable, subscribed to again, starts where its spec says, not where it was;
/// forgetting one that does not exist is no error.
async fn forget_contract(bus: &dyn EventBus, subs: &dyn Subscriptions) {
    bus.prepare("ledger").await.unwrap();
    let events = ["A", "B", "C"]
        .iter()
        .enumerate()
        .map(|(i, id)| event("acme", "earned", id, i as u64 + 1))
        .collect();
    bus.publish(events).await.unwrap();
    let spec = SubscriptionSpec {
        durable: "cover".into(),
        ..restart_spec()
    };
    subs.forget(&spec).await.unwrap();
    let mut sub = subs.subscribe(spec.clone()).await.unwrap();
    for id in ["A", "B"] {
        let d = next(&mut sub).await;
        assert_eq!(d.event.id, id);
        d.ack().await.unwrap();
    }
    // C handed out and never settled: forgetting drops it with the position.
    std::mem::forget(next(&mut sub).await);
    drop(sub);
    subs.forget(&spec).await.unwrap();
    let mut again = subs.subscribe(spec.clone()).await.unwrap();
    let d = next(&mut again).await;
    assert_eq!((d.event.id.as_str(), d.attempt), ("A", 1));
    d.ack().await.unwrap();
    drop(again);
    subs.forget(&spec).await.unwrap();
    subs.forget(&spec).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_unsettled_deliveries_come_again_then_dead_letter() {
    let server = NatsServer::start().await;
    let bus = connected(&server).await;
    let js = server.jetstream().await;
    unsettled_contract(&bus, &bus, |n| {
        let js = js.clone();
        async move { stream_events(&js, "LOYALTY_DEADLETTER", n as u64, Duration::from_secs(15)).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_subscriptions_keep_the_contract() {
    let server = NatsServer::start().await;
    let bus = connected(&server).await;
    let js = server.jetstream().await;
    subscription_contract(&bus, &bus, |n| {
        let js = js.clone();
        async move { stream_events(&js, "LOYALTY_DEADLETTER", n as u64, Duration::from_secs(10)).await }
    })
    .await;
}

/// Every message names the stream sequence it follows: a batch that no longer follows the
/// stream's tip (something else was stored in between) is refused, not stored after a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_stores_a_batch_only_right_after_the_tip_it_knows() {
    let server = NatsServer::start().await;
    let bus = connected(&server).await;
    bus.prepare("ledger").await.unwrap();
    bus.publish(vec![event("acme", "earned", "A", 1)])
        .await
        .unwrap();
    let js = server.jetstream().await;
    let stranger = serde_json::to_vec(&event("acme", "earned", "X", 99)).unwrap();
    js.publish("member.acme.ledger.earned", stranger.into())
        .await
        .unwrap()
        .await
        .unwrap();
    let refused = bus.publish(vec![event("acme", "earned", "B", 2)]).await;
    assert!(refused.is_err(), "B would follow X, not A");
    let ids =
        |events: Vec<(String, Envelope)>| events.into_iter().map(|(_, e)| e.id).collect::<Vec<_>>();
    let held = stream_events(&js, "LOYALTY_LEDGER", 2, Duration::from_secs(5)).await;
    assert_eq!(ids(held), ["A", "X"]);
    // Having looked at the stream again, the bus follows its real tip.
    bus.last_published("ledger").await.unwrap();
    bus.publish(vec![event("acme", "earned", "B", 2)])
        .await
        .unwrap();
    let held = stream_events(&js, "LOYALTY_LEDGER", 3, Duration::from_secs(5)).await;
    assert_eq!(ids(held), ["A", "X", "B"]);
}

/// Two publishers of one change log (two replicas): one that finds an event already stored by
/// the other must not go on from a tip it knows to be old, and no message of a batch may be
/// stored after one of the batch before it was refused: the stream never holds a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_publishers_of_one_log_never_leave_a_gap() {
    let server = NatsServer::start().await;
    let (first, second) = (connected(&server).await, connected(&server).await);
    first.prepare("ledger").await.unwrap();
    let e = |n: u64| event("acme", "earned", &format!("E{n}"), n);
    first.publish(vec![e(1)]).await.unwrap();
    second.publish(vec![e(1)]).await.unwrap(); // a copy: the second learns the tip (1)
    first.publish(vec![e(2)]).await.unwrap();
    // The second publishes 2 too: a copy, confirmed without being stored.
    second.publish(vec![e(2)]).await.unwrap();
    first.publish(vec![e(3)]).await.unwrap();
    // The second goes on with 3 (a copy) and 4, 5, then 6 and 7 on their own.
    second.publish(vec![e(3), e(4), e(5)]).await.unwrap();
    let _ = second.publish(vec![e(6), e(7)]).await;
    let _ = first.publish(vec![e(6), e(7)]).await;
    let js = server.jetstream().await;
    let held = stream_events(&js, "LOYALTY_LEDGER", 7, Duration::from_secs(5)).await;
    let sequences: Vec<u64> = held.into_iter().map(|(_, e)| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6, 7]);
}

/// A publisher whose tip is one behind (another stored one event meanwhile) sends a batch:
/// the first message is refused, and so must be every one after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_after_a_refused_message_is_refused_whole() {
    let server = NatsServer::start().await;
    let (first, second) = (connected(&server).await, connected(&server).await);
    first.prepare("ledger").await.unwrap();
    let e = |n: u64| event("acme", "earned", &format!("E{n}"), n);
    second.publish(vec![e(1)]).await.unwrap(); // stored: the second's tip is 1
    first.publish(vec![e(1), e(2)]).await.unwrap(); // a copy, then 2 after it
    // The second has not seen 2, and sends 3 and 4 after 1 as if 2 were its own: refused.
    let refused = second.publish(vec![e(3), e(4)]).await;
    assert!(refused.is_err(), "3 does not follow 1 any more");
    let js = server.jetstream().await;
    let held = stream_events(&js, "LOYALTY_LEDGER", 2, Duration::from_secs(2)).await;
    let sequences: Vec<u64> = held.into_iter().map(|(_, e)| e.sequence).collect();
    assert_eq!(
        sequences,
        [1, 2],
        "nothing stored after the refused message"
    );
}

async fn connected(server: &NatsServer) -> NatsBus {
    let config = NatsConfig {
        url: server.url(),
        ..NatsConfig::default()
    };
    let bus = NatsBus::connect(&config).await.unwrap();
    // The client connects in the background.
    for _ in 0..100 {
        if bus.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_keeps_the_contract() {
    let server = NatsServer::start().await;
    let bus = connected(&server).await;
    let js = server.jetstream().await;
    contract(&bus, |n| {
        let js = js.clone();
        async move {
            stream_events(&js, "LOYALTY_LEDGER", n as u64, Duration::from_secs(10))
                .await
                .into_iter()
                .map(|(_, e)| e)
                .collect()
        }
    })
    .await;
}
