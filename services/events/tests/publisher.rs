//! The publisher against an outbox and a bus kept in memory: every event once and in order,
//! a resumption after what the bus holds when the saved position lags (a crash between
//! publishing and saving), and a refusal to publish into a stream another outbox wrote.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use async_trait::async_trait;
use loyalty_events::envelope::Origin;
use loyalty_events::publisher::{
    Outbox, OutboxError, OutboxEvent, Publisher, PublisherStatus, READER,
};
use loyalty_events::{BusError, Envelope, EventBus, Published};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn event(id: &str, sequence: u64) -> Envelope {
    let origin = Origin {
        service: "member",
        tenant: "acme",
        member: "m1",
    };
    let data = serde_json::value::to_raw_value(&serde_json::json!({})).unwrap();
    Envelope::new(
        origin,
        "tagged",
        id.into(),
        sequence,
        chrono::Utc::now(),
        data,
    )
}

/// Events at positions 1, 2, ...; a saved position per reader.
#[derive(Default)]
struct MemoryOutbox {
    events: Mutex<Vec<Envelope>>,
    position: Mutex<u64>,
}

impl MemoryOutbox {
    fn with(ids: &[&str]) -> Arc<Self> {
        let outbox = Self::default();
        for (i, id) in ids.iter().enumerate() {
            outbox.events.lock().unwrap().push(event(id, i as u64 + 1));
        }
        Arc::new(outbox)
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    fn service(&self) -> &'static str {
        "member"
    }

    async fn after(&self, seq: u64, limit: usize) -> Result<Vec<OutboxEvent>, OutboxError> {
        let events = self.events.lock().unwrap();
        Ok(events
            .iter()
            .filter(|e| e.sequence > seq)
            .take(limit)
            .map(|e| OutboxEvent {
                envelope: e.clone(),
                committed_ms: e.time.timestamp_millis(),
            })
            .collect())
    }

    async fn position(&self, reader: &str) -> Result<u64, OutboxError> {
        assert_eq!(reader, READER);
        Ok(*self.position.lock().unwrap())
    }

    async fn save_position(&self, _reader: &str, seq: u64) -> Result<(), OutboxError> {
        *self.position.lock().unwrap() = seq;
        Ok(())
    }

    async fn log_end(&self, from: u64) -> Result<u64, OutboxError> {
        Ok((self.events.lock().unwrap().len() as u64).max(from))
    }
}

/// Keeps every published event, copies included, so a repeat shows.
#[derive(Default)]
struct MemoryBus {
    stored: Mutex<Vec<Envelope>>,
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn prepare(&self, _service: &str) -> Result<(), BusError> {
        Ok(())
    }

    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        self.stored.lock().unwrap().extend(events);
        Ok(())
    }

    async fn last_published(&self, service: &str) -> Result<Option<Published>, BusError> {
        let stored = self.stored.lock().unwrap();
        Ok(stored
            .iter()
            .rev()
            .find(|e| e.service() == service)
            .map(|e| Published {
                sequence: e.sequence,
                id: e.id.clone(),
            }))
    }

    fn is_connected(&self) -> bool {
        true
    }
}

fn ids(bus: &MemoryBus) -> Vec<String> {
    bus.stored
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect()
}

/// Runs a publisher (batches of 2) until `done` holds of its status or 5 s pass; its status.
async fn publish_until(
    outbox: Arc<MemoryOutbox>,
    bus: Arc<MemoryBus>,
    done: impl Fn(&PublisherStatus) -> bool,
) -> PublisherStatus {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publisher = Publisher {
        outbox,
        bus,
        batch: 2,
        idle: Duration::from_millis(5),
        crash_after_publish: false,
        status: PublisherStatus::default(),
        reader: loyalty_events::publisher::READER.to_string(),
    };
    let status = publisher.status.clone();
    let task = tokio::spawn(publisher.run(stopped));
    for _ in 0..500 {
        if done(&status) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A wrong extra round would show within a few idle pauses.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    status
}

#[tokio::test]
async fn publishes_every_event_once_in_order_and_saves_its_position() {
    let outbox = MemoryOutbox::with(&["A", "B", "C", "D", "E"]);
    let bus = Arc::new(MemoryBus::default());
    let (o, b) = (Arc::clone(&outbox), Arc::clone(&bus));
    publish_until(o, b, |_| *outbox.position.lock().unwrap() == 5).await;
    assert_eq!(ids(&bus), ["A", "B", "C", "D", "E"]);
}

#[tokio::test]
async fn goes_on_after_what_the_bus_holds_when_the_saved_position_lags() {
    let outbox = MemoryOutbox::with(&["A", "B", "C"]);
    let bus = Arc::new(MemoryBus::default());
    // The last run published A and B, then crashed before saving its position.
    bus.publish(vec![event("A", 1), event("B", 2)])
        .await
        .unwrap();
    let (o, b) = (Arc::clone(&outbox), Arc::clone(&bus));
    publish_until(o, b, |_| *outbox.position.lock().unwrap() == 3).await;
    assert_eq!(ids(&bus), ["A", "B", "C"]);
}

#[tokio::test]
async fn refuses_a_stream_another_outbox_wrote() {
    let outbox = MemoryOutbox::with(&["A", "B"]);
    let bus = Arc::new(MemoryBus::default());
    bus.publish(vec![event("X", 1)]).await.unwrap();
    let (o, b) = (Arc::clone(&outbox), Arc::clone(&bus));
    let status = publish_until(o, b, |s| s.problem().is_some()).await;
    let problem = status.problem().unwrap();
    assert!(problem.contains("another data directory"), "{problem}");
    assert!(problem.contains("member service"), "{problem}");
    assert_eq!(ids(&bus), ["X"], "nothing published into it");
    assert_eq!(*outbox.position.lock().unwrap(), 0);
}
