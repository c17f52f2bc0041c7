//! One contract, two adapters: the in-process bus and NATS JetStream (a throwaway
//! `nats-server -js`) must store events in order, keep one copy per id, and report the newest.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::config::NatsConfig;
use loyalty_events::envelope::Origin;
use loyalty_events::memory::InProcessBus;
use loyalty_events::nats::NatsBus;
use loyalty_events::testing::{NatsServer, stream_events};
use loyalty_events::{Envelope, EventBus};
use std::future::Future;
use std::time::Duration;

fn event(tenant: &str, name: &str, id: &str, sequence: u64) -> Envelope {
    let origin = Origin {
        service: "ledger",
        tenant,
        member: "m1",
    };
    let data = serde_json::json!({ "n": sequence });
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
    bus.publish(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    // A re-published copy is confirmed and not stored again.
    let d = event("acme", "captured", "D", 4);
    bus.publish(&[b.clone(), d.clone()]).await.unwrap();

    let held = stored(4).await;
    assert_eq!(held, vec![a, b, c.clone(), d.clone()]);
    assert_eq!(c.nats_subject(), "member.shop_cn.ledger.spent");
    let last = bus.last_published("ledger").await.unwrap().unwrap();
    assert_eq!((last.sequence, last.id.as_str()), (4, "D"));
}

#[tokio::test]
async fn the_in_process_bus_keeps_the_contract() {
    let bus = InProcessBus::new(100);
    contract(&bus, |_| async {
        bus.events(">").iter().map(|e| e.as_ref().clone()).collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_keeps_the_contract() {
    let server = NatsServer::start().await;
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
    let js = server.jetstream().await;
    contract(&bus, |n| {
        let js = js.clone();
        async move { stream_events(&js, "LOYALTY_LEDGER", n as u64, Duration::from_secs(10)).await }
    })
    .await;
}
