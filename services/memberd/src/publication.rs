//! Event publication in this process: the configured bus, and one publisher per service whose
//! outbox is here (the ledger's, the member service's), each reporting in `/readyz`.

use anyhow::Context;
use loyalty_events::EventBus;
use loyalty_events::config::{BusKind, EventsConfig};
use loyalty_events::embedded::InProcessBus;
use loyalty_events::nats::NatsBus;
use loyalty_events::publisher::{Outbox, Publisher, PublisherStatus, reader_in};
use loyalty_events::subscribe::Subscriptions;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The bus and the publishers on it. Cheap to clone: clones share them.
#[derive(Clone)]
pub struct Publication {
    kind: BusKind,
    bus: Arc<dyn EventBus>,
    /// The same bus, for the platform's own consumers (durable subscriptions).
    subscriptions: Arc<dyn Subscriptions>,
    config: EventsConfig,
    shutdown: watch::Receiver<bool>,
    /// Each publisher's service and status, in the order they started.
    publishers: Arc<Mutex<Vec<(&'static str, PublisherStatus)>>>,
    /// The name the publishers keep their positions under: a region's own (`region.name`).
    reader: String,
}

impl Publication {
    /// Opens the configured bus; the embedded one lives in `<data_dir>/events`. In one of two
    /// regions (`region`), the publishers publish into this region's streams and keep
    /// positions of their own.
    pub async fn open(
        kind: BusKind,
        config: &EventsConfig,
        data_dir: &Path,
        region: Option<&str>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        tracing::info!(bus = ?kind, "events");
        let (bus, subscriptions): (Arc<dyn EventBus>, Arc<dyn Subscriptions>) = match kind {
            BusKind::Embedded => {
                let bus = Arc::new(
                    InProcessBus::open(&data_dir.join("events"), &config.embedded)
                        .map_err(|e| anyhow::anyhow!("{e}"))
                        .context("opening the embedded event bus (events.embedded)")?,
                );
                (bus.clone(), bus)
            }
            BusKind::Nats => {
                let bus = Arc::new(
                    NatsBus::connect(&config.nats)
                        .await
                        .context("configuring the NATS connection (events.nats)")?,
                );
                (bus.clone(), bus)
            }
        };
        Ok(Self {
            kind,
            bus,
            subscriptions,
            config: config.clone(),
            shutdown,
            publishers: Arc::default(),
            reader: reader_in(region),
        })
    }

    /// The bus, for the platform's own consumers that ask where a stream ends.
    pub fn bus(&self) -> Arc<dyn EventBus> {
        Arc::clone(&self.bus)
    }

    /// The bus's durable subscriptions, for the platform's own consumers.
    pub fn subscriptions(&self) -> Arc<dyn Subscriptions> {
        Arc::clone(&self.subscriptions)
    }

    /// Publishes `outbox` until shutdown; the task, or None under `events.disable_publisher`
    /// (events then wait in the outbox).
    pub fn start(&self, outbox: Arc<dyn Outbox>) -> Option<JoinHandle<anyhow::Result<()>>> {
        let service = outbox.service();
        let publisher = Publisher::new(outbox, Arc::clone(&self.bus), &self.config)
            .reading_as(self.reader.clone());
        self.list().push((service, publisher.status.clone()));
        if self.config.disable_publisher {
            tracing::warn!(
                service,
                "events.disable_publisher is set: no events are published"
            );
            return None;
        }
        let shutdown = self.shutdown.clone();
        Some(tokio::spawn(async move {
            publisher.run(shutdown).await;
            Ok(())
        }))
    }

    /// The lines `/readyz` shows: the bus's connection, and each failing publisher. Neither
    /// makes the process unready: writes go on, and their events wait in the outboxes.
    pub fn report(&self) -> String {
        let kind = match self.kind {
            BusKind::Nats => "nats",
            BusKind::Embedded => "embedded",
        };
        let mut text = if self.bus.is_connected() {
            format!("events: {kind} connected\n")
        } else {
            format!("events: {kind} disconnected; events wait in the change log\n")
        };
        for (service, status) in self.list().iter() {
            if let Some(problem) = status.problem() {
                text.push_str(&format!(
                    "events: publisher failing, retrying: {service} events: {problem}\n"
                ));
            }
        }
        text
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, PublisherStatus)>> {
        // Only ever pushed to: never left half-changed.
        self.publishers.lock().unwrap_or_else(|p| p.into_inner())
    }
}
