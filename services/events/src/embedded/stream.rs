//! The embedded bus's stream: positions given out in order, publication with one fsync per
//! batch, copies of recent ids dropped, retention by age and size, and reads by position,
//! subject and time.

use super::rows::{
    self, StoredEvent, StoredLast, decode, encode, last_key, position_key, position_of,
};
use super::{Shared, parse, subject_matches, unavailable};
use crate::bus::{BusError, Published};
use crate::envelope::Envelope;
use chrono::{DateTime, Utc};
use fjall::{AbstractTree, Keyspace, PersistMode};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often publication also applies retention.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// What only publications change.
pub(super) struct StreamState {
    next_position: u64,
    last_ms: i64,
    pub(super) last: HashMap<String, Published>,
    recent: RecentIds,
    trimmed_at: Instant,
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

/// The publishing side's state, read back from disk: the next position, the newest event per
/// service, and the ids of the newest events. The next position follows the newest one ever
/// given out, whether the stream still holds it or only a consumer refers to it, so positions
/// are never reused even after retention dropped every event.
pub(super) fn recover(
    stream: &Keyspace,
    meta: &Keyspace,
    consumers: &Keyspace,
    window: usize,
) -> Result<StreamState, BusError> {
    let mut last = HashMap::new();
    for guard in meta.prefix(rows::LAST_PREFIX) {
        let (k, v) = guard.into_inner().map_err(unavailable)?;
        let service = String::from_utf8_lossy(&k[rows::LAST_PREFIX.len()..]).into_owned();
        last.insert(service, decode::<StoredLast<'_>>(&v)?.to_published());
    }
    let mut newest_given = match meta.get(rows::HEAD_KEY).map_err(unavailable)? {
        Some(v) => position_of(&v)?,
        None => 0,
    };
    newest_given = newest_given.max(super::consumer::newest_referenced(consumers)?);
    let mut newest = Vec::new();
    let mut last_ms = 0;
    for guard in stream.iter().rev().take(window.max(1)) {
        let (k, v) = guard.into_inner().map_err(unavailable)?;
        let row: StoredEvent<'_> = decode(&v)?;
        if newest.is_empty() {
            newest_given = newest_given.max(position_of(&k)?);
            last_ms = row.published_ms;
        }
        newest.push(id_hash(row.id));
    }
    let mut recent = RecentIds::new(window);
    for hash in newest.into_iter().rev() {
        recent.push(hash);
    }
    Ok(StreamState {
        next_position: newest_given + 1,
        last_ms,
        last,
        recent,
        trimmed_at: Instant::now(),
    })
}

/// The oldest position the stream holds (1 when empty).
pub(super) fn first_kept(stream: &Keyspace) -> Result<u64, BusError> {
    match stream.first_key_value() {
        Some(guard) => position_of(&guard.key().map_err(unavailable)?),
        None => Ok(1),
    }
}

/// The first position readers may see: after what retention hid, and what the stream holds.
pub(super) fn first_visible(stream: &Keyspace, meta: &Keyspace) -> Result<u64, BusError> {
    let hidden = match meta.get(rows::FIRST_KEY).map_err(unavailable)? {
        Some(v) => position_of(&v)?,
        None => 1,
    };
    Ok(hidden.max(first_kept(stream)?))
}

/// What a scan of the stream found, and how far it looked.
pub(crate) struct Scan {
    pub found: Option<(u64, Envelope)>,
    /// The last position examined: nothing matched up to it but `found`.
    pub scanned_to: u64,
    /// The scan reached the end of the stream.
    pub at_end: bool,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, StreamState> {
        // Changed only after a commit succeeded, in steps that cannot panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn appending(&self) -> MutexGuard<'_, ()> {
        self.appending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `events` in order with one fsync, skipping copies of recent ids. Blocks: run it
    /// off the async workers.
    pub(super) fn append(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        let _one_at_a_time = self.appending();
        let (mut position, now, trim_due) = {
            let state = self.state();
            let now = Utc::now().timestamp_millis().max(state.last_ms);
            (
                state.next_position,
                now,
                state.trimmed_at.elapsed() >= TRIM_EVERY,
            )
        };
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        let mut added = Vec::with_capacity(events.len());
        let mut newest: HashMap<String, Published> = HashMap::new();
        for event in &events {
            let hash = id_hash(&event.id);
            if added.contains(&hash) || self.state().recent.contains(hash) {
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
        if !added.is_empty() {
            for (service, published) in &newest {
                let row = StoredLast {
                    sequence: published.sequence,
                    id: &published.id,
                };
                batch.insert(&self.meta, last_key(service), encode(&row)?);
            }
            batch.insert(&self.meta, rows::HEAD_KEY, position_key(position - 1));
            batch.commit().map_err(unavailable)?;
            let mut state = self.state();
            state.next_position = position;
            state.last_ms = now;
            state.last.extend(newest);
            for hash in added {
                state.recent.push(hash);
            }
            drop(state);
            self.wake.notify_waiters();
        }
        if trim_due {
            self.trim_locked()?;
        }
        Ok(())
    }

    /// Applies retention: events older than `max_age_secs`, and the oldest beyond
    /// `max_bytes`, are hidden at once and their tables dropped whole; dead letters older
    /// than `max_age_secs` are deleted. Blocks.
    pub(super) fn trim(&self) -> Result<(), BusError> {
        let _one_at_a_time = self.appending();
        self.trim_locked()
    }

    fn trim_locked(&self) -> Result<(), BusError> {
        self.state().trimmed_at = Instant::now();
        let head = self.head();
        let mut first = self.first.load(Ordering::SeqCst);
        let max_age_secs = self.config.max_age_secs;
        if max_age_secs > 0 {
            let age = chrono::Duration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX));
            if let Some(cutoff) = Utc::now().checked_sub_signed(age) {
                first = first.max(self.position_before(cutoff)? + 1);
            }
        }
        if let Ok(limit) = u64::try_from(self.config.max_bytes) {
            let disk = self.stream.disk_space();
            if disk > limit && head >= first {
                // Positions are spread evenly enough over the tables: drop the same share.
                let kept = u128::from(head - first + 1);
                let drop = (kept * u128::from(disk - limit)).div_ceil(u128::from(disk));
                first += u64::try_from(drop)
                    .unwrap_or(u64::MAX)
                    .min(head - first + 1);
            }
        }
        let first = first.min(head + 1);
        if first > self.first.load(Ordering::SeqCst) {
            // Stored before the tables go, so that nothing dropped can come back into view.
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
            batch.insert(&self.meta, rows::FIRST_KEY, position_key(first));
            batch.commit().map_err(unavailable)?;
            self.first.fetch_max(first, Ordering::SeqCst);
        }
        if first > 1 {
            self.stream
                .tree
                .drop_range(..position_key(first))
                .map_err(unavailable)?;
        }
        super::consumer::prune_dead_letters(self, max_age_secs)
    }

    /// The first event after position `after` whose subject matches `filter`, looking at
    /// `max_rows` events at most.
    pub(crate) fn next_after(
        &self,
        after: u64,
        filter: &str,
        max_rows: usize,
    ) -> Result<Scan, BusError> {
        let from = after
            .saturating_add(1)
            .max(self.first.load(Ordering::SeqCst));
        let mut scanned_to = after.max(from - 1);
        for guard in self
            .stream
            .range(position_key(from).as_slice()..)
            .take(max_rows)
        {
            let (k, v) = guard.into_inner().map_err(unavailable)?;
            let position = position_of(&k)?;
            let row: StoredEvent<'_> = decode(&v)?;
            scanned_to = position;
            if subject_matches(filter, row.subject) {
                return Ok(Scan {
                    found: Some((position, parse(row.envelope)?)),
                    scanned_to,
                    at_end: false,
                });
            }
        }
        Ok(Scan {
            found: None,
            at_end: scanned_to >= self.head(),
            scanned_to,
        })
    }

    /// The event at `position`, if it is still kept.
    pub(crate) fn at(&self, position: u64) -> Result<Option<Envelope>, BusError> {
        if position < self.first.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match self
            .stream
            .get(position_key(position))
            .map_err(unavailable)?
        {
            Some(v) => Ok(Some(parse(decode::<StoredEvent<'_>>(&v)?.envelope)?)),
            None => Ok(None),
        }
    }

    /// The newest kept event at or before position `upto` whose subject matches `filter`,
    /// with its position, looked for backwards (events of one service carry increasing
    /// change-log sequences, and a filter names one service's subjects).
    pub(crate) fn newest_at_or_before(
        &self,
        upto: u64,
        filter: &str,
        keep_looking: impl Fn(&Envelope) -> bool,
    ) -> Result<Option<(u64, Envelope)>, BusError> {
        let first = self.first.load(Ordering::SeqCst);
        for guard in self
            .stream
            .range(position_key(first).as_slice()..=position_key(upto).as_slice())
            .rev()
        {
            let (k, v) = guard.into_inner().map_err(unavailable)?;
            let row: StoredEvent<'_> = decode(&v)?;
            if !subject_matches(filter, row.subject) {
                continue;
            }
            let event = parse(row.envelope)?;
            if !keep_looking(&event) {
                return Ok(Some((position_of(&k)?, event)));
            }
        }
        Ok(None)
    }

    /// The newest position stored (0: none).
    pub(crate) fn head(&self) -> u64 {
        self.state().next_position - 1
    }

    /// The position just before the first event stored at or after `time`.
    pub(crate) fn position_before(&self, time: DateTime<Utc>) -> Result<u64, BusError> {
        let target = time.timestamp_millis();
        let mut lo = first_kept(&self.stream)?.max(self.first.load(Ordering::SeqCst));
        let mut hi = self.head() + 1;
        if lo >= hi {
            return Ok(hi - 1);
        }
        // Times never decrease along the stream: find the first position at or after `time`.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ms = match self.stream.get(position_key(mid)).map_err(unavailable)? {
                Some(v) => decode::<StoredEvent<'_>>(&v)?.published_ms,
                // Dropped by retention meanwhile: older than anything kept.
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
