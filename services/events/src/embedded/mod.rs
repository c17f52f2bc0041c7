//! The bus of the embedded default: the contract of JetStream with no server. Events are stored
//! in order on local disk (fjall, in `<data_dir>/events`), each confirmed only once it is
//! fsynced, so the stream, its replay and the platform's durable subscriptions (positions,
//! attempts, dead letters) all survive a restart or a `kill -9` like NATS would.
//!
//! The stream ([`stream`]) is kept for a configured age and size, like a JetStream stream with
//! `limits` retention; durable subscriptions are in [`consumer`].

mod consumer;
mod rows;
mod stream;

pub use consumer::DeadLetter;

use crate::bus::{BusError, EventBus, Published};
use crate::config::EmbeddedBusConfig;
use crate::envelope::Envelope;
use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use stream::StreamState;

/// Cheap to clone: clones share one bus.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    db: Database,
    config: EmbeddedBusConfig,
    /// Position → event.
    stream: Keyspace,
    /// The newest event per service, and the newest position ever given out.
    meta: Keyspace,
    /// Durable subscriptions' positions and unsettled deliveries.
    consumers: Keyspace,
    /// Sequence → dead letter.
    dead: Keyspace,
    /// Held by one publication (or trim) at a time, through its fsync: positions are given
    /// out and committed in order.
    appending: Mutex<()>,
    /// What publications change; held only briefly, never across I/O.
    state: Mutex<StreamState>,
    /// The first position readers may see. Older events are past retention, even while the
    /// table holding them is still on disk.
    first: AtomicU64,
    /// Woken by every publication and settlement, for subscriptions waiting for work.
    wake: tokio::sync::Notify,
    durables: consumer::Durables,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("embedded bus: {e}"))
}

impl InProcessBus {
    /// Opens (or creates) the bus stored in `dir`, and applies its retention.
    pub fn open(dir: &Path, config: &EmbeddedBusConfig) -> Result<Self, BusError> {
        let db = Database::builder(dir)
            // One writer and small consumer rows: one background thread is plenty.
            .worker_threads(1)
            .open()
            .map_err(|e| {
                BusError::Refused(format!(
                    "cannot open the event bus at {} ({e}); is another memberd using this \
                     data directory?",
                    dir.display()
                ))
            })?;
        let stream = db
            .keyspace("stream", || {
                // Keys only grow and rows never change: FIFO compaction never rewrites a
                // table. It is given no limits of its own: the bus drops whole tables past
                // its configured retention itself, so a changed setting applies on restart
                // (fjall keeps a keyspace's compaction settings from its creation).
                KeyspaceCreateOptions::default()
                    .max_memtable_size(16 * 1024 * 1024)
                    .compaction_strategy(Arc::new(fjall::compaction::Fifo::new(u64::MAX, None)))
            })
            .map_err(unavailable)?;
        let plain = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        let meta = plain("meta").map_err(unavailable)?;
        let consumers = plain("consumers").map_err(unavailable)?;
        let dead = plain("dead_letters").map_err(unavailable)?;
        let state = stream::recover(&stream, &meta, &consumers, config.duplicate_window_events)?;
        let first = stream::first_visible(&stream, &meta)?;
        let dead_next = consumer::next_dead_letter(&dead)?;
        let shared = Shared {
            db,
            config: config.clone(),
            stream,
            meta,
            consumers,
            dead,
            appending: Mutex::new(()),
            state: Mutex::new(state),
            first: AtomicU64::new(first),
            wake: tokio::sync::Notify::new(),
            durables: consumer::Durables::new(dead_next),
        };
        shared.trim()?;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Events whose subject matches `filter` (NATS wildcards `*` and `>`), oldest first.
    pub fn events(&self, filter: &str) -> Result<Vec<Envelope>, BusError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let scan = self.shared.next_after(after, filter, usize::MAX)?;
            match scan.found {
                Some((position, event)) => {
                    out.push(event);
                    after = position;
                }
                None => return Ok(out),
            }
        }
    }

    /// Applies the retention settings now (it also runs on open and every few seconds while
    /// events are published).
    pub fn trim(&self) -> Result<(), BusError> {
        self.shared.trim()
    }
}

fn parse(json: &str) -> Result<Envelope, BusError> {
    serde_json::from_str(json)
        .map_err(|e| BusError::Refused(format!("the embedded bus holds a broken event: {e}")))
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn prepare(&self, _service: &str) -> Result<(), BusError> {
        Ok(())
    }

    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        // The commit waits for an fsync: keep it off the async workers.
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.append(events))
            .await
            .map_err(unavailable)?
    }

    async fn last_published(&self, service: &str) -> Result<Option<Published>, BusError> {
        Ok(self.shared.state().last.get(service).cloned())
    }

    fn is_connected(&self) -> bool {
        true
    }
}

/// NATS subject matching: `*` matches one token, `>` the rest (one or more tokens).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for f in filter.split('.') {
        match (f, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (f, Some(s)) if f == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests;
