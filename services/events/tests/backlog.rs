//! The publisher's backlog metric, `events_outbox_backlog`: the whole distance from its
//! position to the end of the outbox (not one batch of it), while the bus is down, and zero
//! once it has drained the outbox. Its own test binary: the metric is process-wide.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use async_trait::async_trait;
use loyalty_events::envelope::Origin;
use loyalty_events::publisher::{Outbox, OutboxError, OutboxEvent, Publisher, PublisherStatus};
use loyalty_events::{BusError, Envelope, EventBus, Published};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Far more than one batch.
const WAITING: u64 = 1_000;
const BATCH: usize = 64;

/// Events 1..=WAITING, made as they are read.
#[derive(Default)]
struct CountingOutbox {
    position: AtomicU64,
}

#[async_trait]
impl Outbox for CountingOutbox {
    fn service(&self) -> &'static str {
        "campaign"
    }

    async fn after(&self, seq: u64, limit: usize) -> Result<Vec<OutboxEvent>, OutboxError> {
        let data = serde_json::value::to_raw_value(&serde_json::json!({})).unwrap();
        let origin = Origin {
            service: "campaign",
            tenant: "acme",
            member: "m1",
        };
        Ok((seq + 1..=WAITING)
            .take(limit)
            .map(|n| OutboxEvent {
                envelope: Envelope::new(
                    origin,
                    "coupon_issued",
                    format!("e{n}"),
                    n,
                    chrono::Utc::now(),
                    data.clone(),
                ),
                committed_ms: 0,
            })
            .collect())
    }

    async fn position(&self, _reader: &str) -> Result<u64, OutboxError> {
        Ok(self.position.load(Ordering::SeqCst))
    }

    async fn save_position(&self, _reader: &str, seq: u64) -> Result<(), OutboxError> {
        self.position.store(seq, Ordering::SeqCst);
        Ok(())
    }

    async fn log_end(&self, from: u64) -> Result<u64, OutboxError> {
        Ok(WAITING.max(from))
    }
}

/// A bus that refuses everything while `down`.
#[derive(Default)]
struct FlakyBus {
    down: AtomicBool,
    last: Mutex<Option<Published>>,
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn prepare(&self, _service: &str) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("the bus is down".into()));
        }
        Ok(())
    }

    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        self.prepare("campaign").await?;
        if let Some(e) = events.last() {
            *self.last.lock().unwrap() = Some(Published {
                sequence: e.sequence,
                id: e.id.clone(),
            });
        }
        Ok(())
    }

    async fn last_published(&self, _service: &str) -> Result<Option<Published>, BusError> {
        self.prepare("campaign").await?;
        Ok(self.last.lock().unwrap().clone())
    }

    fn is_connected(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }
}

async fn wait_for(page: impl Fn() -> String, series: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !page().lines().any(|line| line == series) {
        assert!(Instant::now() < deadline, "no {series:?} in:\n{}", page());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_backlog_counts_every_waiting_event_and_falls_to_zero_once_drained() {
    let recorder = PrometheusBuilder::new().install_recorder().unwrap();
    let page = || recorder.render();
    let outbox = Arc::new(CountingOutbox::default());
    let bus = Arc::new(FlakyBus::default());
    bus.down.store(true, Ordering::SeqCst);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let publisher = Publisher {
        outbox: outbox.clone(),
        bus: bus.clone(),
        batch: BATCH,
        idle: Duration::from_millis(5),
        crash_after_publish: false,
        status: PublisherStatus::default(),
        reader: loyalty_events::publisher::READER.to_string(),
    };
    let task = tokio::spawn(publisher.run(stopped));

    wait_for(
        page,
        &format!("events_outbox_backlog{{service=\"campaign\"}} {WAITING}"),
    )
    .await;
    bus.down.store(false, Ordering::SeqCst);
    wait_for(page, "events_outbox_backlog{service=\"campaign\"} 0").await;
    assert_eq!(outbox.position.load(Ordering::SeqCst), WAITING);
    stop.send(true).unwrap();
    task.await.unwrap();
}
