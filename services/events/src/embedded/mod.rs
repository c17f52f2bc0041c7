//! The bus of the embedded default: the contract of JetStream with no server. Events are stored
//! in order on local disk (fjall, in `<data_dir>/events`), each confirmed only once it is
//! fsynced, so the stream, its replay and the platform's durable subscriptions (positions,
//! attempts, dead letters) all survive a restart or a `kill -9` like NATS would.
//!
//! Retention is by age and size, as for a JetStream stream with `limits` retention: the stream
//! keyspace uses FIFO compaction, which drops its oldest tables whole.

mod consumer;
mod rows;

pub use consumer::DeadLetter;

use crate::bus::{BusError, EventBus, Published};
use crate::config::EmbeddedBusConfig;
use crate::envelope::Envelope;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use rows::{StoredEvent, StoredLast, decode, encode, last_key, position_key, position_of};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Cheap to clone: clones share one bus.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    db: Database,
    /// Position → event.
    stream: Keyspace,
    /// The newest event per service.
    meta: Keyspace,
    /// Durable subscriptions' positions and unsettled deliveries.
    consumers: Keyspace,
    /// Sequence → dead letter.
    dead: Keyspace,
    writer: Mutex<WriterState>,
    /// Woken by every publication and settlement, for subscriptions waiting for work.
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) durables: consumer::Durables,
}

/// What only the publishing side changes; one publication at a time holds it.
struct WriterState {
    next_position: u64,
    last_ms: i64,
    last: HashMap<String, Published>,
    recent: RecentIds,
}

/// The ids of the newest events, to drop a re-published copy (JetStream's duplicate window,
/// counted in events rather than seconds). 128-bit hashes keep it small.
struct RecentIds {
    order: VecDeque<u128>,
    set: HashSet<u128, BuildHasherDefault<AlreadyHashed>>,
    capacity: usize,
}

/// The set's keys are xxh3 hashes already: their low bits serve as the table's hash.
#[derive(Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; keep any other input well mixed all the same.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::new(),
            set: HashSet::default(),
            capacity,
        }
    }

    fn contains(&self, hash: u128) -> bool {
        self.set.contains(&hash)
    }

    /// Remembers `hash` as the newest, forgetting the oldest beyond capacity. Called oldest
    /// first.
    fn push(&mut self, hash: u128) {
        if self.capacity == 0 || !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

fn id_hash(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("embedded bus: {e}"))
}

impl InProcessBus {
    /// Opens (or creates) the bus stored in `dir`.
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
        let limit = u64::try_from(config.max_bytes).unwrap_or(u64::MAX);
        let ttl = (config.max_age_secs > 0).then_some(config.max_age_secs);
        let stream = db
            .keyspace("stream", || {
                // Keys only grow and rows are never changed: FIFO compaction drops whole
                // tables past the age or size limit and never rewrites one.
                KeyspaceCreateOptions::default()
                    .max_memtable_size(16 * 1024 * 1024)
                    .compaction_strategy(Arc::new(fjall::compaction::Fifo::new(limit, ttl)))
            })
            .map_err(unavailable)?;
        let plain = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        let meta = plain("meta").map_err(unavailable)?;
        let consumers = plain("consumers").map_err(unavailable)?;
        let dead = plain("dead_letters").map_err(unavailable)?;
        let writer = Self::recover(&stream, &meta, config.duplicate_window_events)?;
        consumer::prune_dead_letters(&db, &dead, config.max_age_secs)?;
        let dead_next = match dead.last_key_value() {
            Some(guard) => position_of(&guard.key().map_err(unavailable)?)? + 1,
            None => 1,
        };
        let shared = Shared {
            db,
            stream,
            meta,
            consumers,
            dead,
            writer: Mutex::new(writer),
            wake: tokio::sync::Notify::new(),
            durables: consumer::Durables::new(dead_next),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The publishing side's state, read back from disk: the next position, the newest event
    /// per service, and the ids of the newest events.
    fn recover(stream: &Keyspace, meta: &Keyspace, window: usize) -> Result<WriterState, BusError> {
        let mut last = HashMap::new();
        for guard in meta.prefix(rows::LAST_PREFIX) {
            let (k, v) = guard.into_inner().map_err(unavailable)?;
            let service = String::from_utf8_lossy(&k[rows::LAST_PREFIX.len()..]).into_owned();
            last.insert(service, decode::<StoredLast<'_>>(&v)?.to_published());
        }
        let mut newest = Vec::new();
        let mut next_position = match meta.get(rows::HEAD_KEY).map_err(unavailable)? {
            Some(v) => position_of(&v)? + 1,
            None => 1,
        };
        let mut last_ms = 0;
        for guard in stream.iter().rev().take(window.max(1)) {
            let (k, v) = guard.into_inner().map_err(unavailable)?;
            let row: StoredEvent<'_> = decode(&v)?;
            if newest.is_empty() {
                next_position = next_position.max(position_of(&k)? + 1);
                last_ms = row.published_ms;
            }
            newest.push(id_hash(row.id));
        }
        let mut recent = RecentIds::new(window);
        for hash in newest.into_iter().rev() {
            recent.push(hash);
        }
        Ok(WriterState {
            next_position,
            last_ms,
            last,
            recent,
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Events whose subject matches `filter` (NATS wildcards `*` and `>`), oldest first.
    pub fn events(&self, filter: &str) -> Result<Vec<Envelope>, BusError> {
        let mut out = Vec::new();
        let mut after = 0;
        while let Some((position, event)) = self.shared.next_after(after, filter)?.found {
            out.push(event);
            after = position;
        }
        Ok(out)
    }
}

impl Shared {
    fn writer(&self) -> MutexGuard<'_, WriterState> {
        // The state is changed only after a commit succeeded, in steps that cannot panic.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `events` in order with one fsync, skipping copies of recent ids.
    fn append(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        let mut writer = self.writer();
        let now = Utc::now().timestamp_millis().max(writer.last_ms);
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        let mut position = writer.next_position;
        let mut added = Vec::with_capacity(events.len());
        let mut newest: HashMap<String, Published> = HashMap::new();
        for event in &events {
            let hash = id_hash(&event.id);
            if writer.recent.contains(hash) || added.contains(&hash) {
                continue;
            }
            let json = serde_json::to_string(event)
                .map_err(|e| BusError::Refused(format!("encoding event {}: {e}", event.id)))?;
            let row = StoredEvent {
                published_ms: now,
                id: &event.id,
                subject: &event.nats_subject(),
                envelope: &json,
            };
            batch.insert(&self.stream, position_key(position), encode(&row)?);
            position += 1;
            added.push(hash);
            newest.insert(
                event.service().to_string(),
                Published {
                    sequence: event.sequence,
                    id: event.id.clone(),
                },
            );
        }
        if added.is_empty() {
            return Ok(());
        }
        for (service, published) in &newest {
            let row = StoredLast {
                sequence: published.sequence,
                id: &published.id,
            };
            batch.insert(&self.meta, last_key(service), encode(&row)?);
        }
        batch.insert(&self.meta, rows::HEAD_KEY, position_key(position - 1));
        batch.commit().map_err(unavailable)?;
        writer.next_position = position;
        writer.last_ms = now;
        writer.last.extend(newest);
        for hash in added {
            writer.recent.push(hash);
        }
        drop(writer);
        self.wake.notify_waiters();
        Ok(())
    }

    /// The first event after position `after` whose subject matches `filter`.
    pub(crate) fn next_after(&self, after: u64, filter: &str) -> Result<Scan, BusError> {
        let from = position_key(after.saturating_add(1));
        let mut scanned_to = after;
        for guard in self.stream.range(from.as_slice()..) {
            let (k, v) = guard.into_inner().map_err(unavailable)?;
            let position = position_of(&k)?;
            let row: StoredEvent<'_> = decode(&v)?;
            if subject_matches(filter, row.subject) {
                return Ok(Scan {
                    found: Some((position, parse(row.envelope)?)),
                    scanned_to: position,
                });
            }
            scanned_to = position;
        }
        Ok(Scan {
            found: None,
            scanned_to,
        })
    }

    /// The event at `position`, if it is still kept.
    pub(crate) fn at(&self, position: u64) -> Result<Option<Envelope>, BusError> {
        match self
            .stream
            .get(position_key(position))
            .map_err(unavailable)?
        {
            Some(v) => Ok(Some(parse(decode::<StoredEvent<'_>>(&v)?.envelope)?)),
            None => Ok(None),
        }
    }

    /// The newest position stored (0: none).
    pub(crate) fn head(&self) -> u64 {
        self.writer().next_position - 1
    }

    /// The position just before the first event stored at or after `time`.
    pub(crate) fn position_before(&self, time: DateTime<Utc>) -> Result<u64, BusError> {
        let target = time.timestamp_millis();
        let Some(first) = self.stream.first_key_value() else {
            return Ok(0);
        };
        let mut lo = position_of(&first.key().map_err(unavailable)?)?;
        let mut hi = self.head() + 1;
        // Times never decrease along the stream: find the first position at or after `time`.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ms = match self.stream.get(position_key(mid)).map_err(unavailable)? {
                Some(v) => decode::<StoredEvent<'_>>(&v)?.published_ms,
                // Dropped by retention since the first key was read: older than anything kept.
                None => i64::MIN,
            };
            if ms < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo - 1)
    }
}

/// What a scan of the stream found, and how far it looked.
pub(crate) struct Scan {
    pub found: Option<(u64, Envelope)>,
    /// The last position examined: nothing matched up to it but `found`.
    pub scanned_to: u64,
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
        Ok(self.shared.writer().last.get(service).cloned())
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
