//! Durable subscriptions on the embedded bus, with the contract of the JetStream ones: in
//! order, at least once, redelivery after a retry or after `ack_wait`, dead letters after
//! `max_attempts`, at most `max_ack_pending` unsettled. A durable's position and its
//! unsettled deliveries (with their attempt counts) are stored, so they survive a restart; a
//! delivery unsettled at a crash comes again.
//!
//! Consumer rows are written without an fsync: a crash can only lose the latest settlements,
//! and a lost settlement means a redelivery, which at-least-once allows. Each change is written
//! before memory shows it, so a failed write changes nothing. The work runs on blocking
//! threads: a write can wait for the journal while a publication fsyncs it.

use super::rows::{
    StoredDeadLetter, cursor_key, decode, encode, pending_key, pending_prefix, position_key,
    position_of,
};
use super::{InProcessBus, Shared, unavailable};
use crate::bus::BusError;
use crate::envelope::Envelope;
use crate::subscribe::{
    Delivery, Retried, Settle, StartAt, Subscription, SubscriptionSpec, Subscriptions, check,
    dead_letter_subject,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fjall::Keyspace;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Events a scan looks at before it lets others at the durable.
const SCAN_ROWS: usize = 4_096;

/// A dead-lettered event with why, after how many attempts and when.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub subject: String,
    pub event: Envelope,
    pub reason: String,
    pub attempts: u32,
    pub at: DateTime<Utc>,
}

/// The durables of one bus, loaded from disk on first use.
pub(crate) struct Durables {
    map: Mutex<HashMap<String, Arc<Mutex<Durable>>>>,
    dead_next: AtomicU64,
}

impl Durables {
    pub(super) fn new(dead_next: u64) -> Self {
        Self {
            map: Mutex::default(),
            dead_next: AtomicU64::new(dead_next),
        }
    }
}

struct Durable {
    /// The position of the last event handed out for the first time (stored).
    cursor: u64,
    /// No event of `scanned_filter` lies between `cursor` and this (memory only).
    scanned: u64,
    scanned_filter: String,
    /// Unsettled deliveries by position (stored, with their attempt counts).
    pending: BTreeMap<u64, Pending>,
}

#[derive(Clone, Copy)]
struct Pending {
    /// Deliveries so far.
    attempts: u32,
    /// When it is delivered again: after a retry's delay, or `ack_wait` after a delivery.
    due: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update below leaves the guarded state whole before it could panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `now + wait`, or a year from now for a wait too long to add.
fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// The newest position any consumer row refers to (0: none).
pub(super) fn newest_referenced(consumers: &Keyspace) -> Result<u64, BusError> {
    let mut newest = 0;
    for guard in consumers.iter() {
        let (k, v) = guard.into_inner().map_err(unavailable)?;
        let position = match k.first() {
            Some(b'c') => position_of(&v)?,
            Some(b'p') if k.len() >= 8 => position_of(&k[k.len() - 8..])?,
            _ => 0,
        };
        newest = newest.max(position);
    }
    Ok(newest)
}

/// The sequence the next dead letter gets.
pub(super) fn next_dead_letter(dead: &Keyspace) -> Result<u64, BusError> {
    match dead.last_key_value() {
        Some(guard) => Ok(position_of(&guard.key().map_err(unavailable)?)? + 1),
        None => Ok(1),
    }
}

/// Drops dead letters older than `max_age_secs` (0: keep all), as the stream drops events:
/// someone had that long to look at them.
pub(super) fn prune_dead_letters(shared: &Shared, max_age_secs: u64) -> Result<(), BusError> {
    if max_age_secs == 0 {
        return Ok(());
    }
    let max_age_ms = i64::try_from(max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let cutoff = Utc::now().timestamp_millis().saturating_sub(max_age_ms);
    let mut batch = shared.db.batch();
    for guard in shared.dead.iter() {
        let (k, v) = guard.into_inner().map_err(unavailable)?;
        if decode::<StoredDeadLetter<'_>>(&v)?.at_ms >= cutoff {
            break;
        }
        batch.remove(&shared.dead, k);
    }
    batch.commit().map_err(unavailable)
}

impl InProcessBus {
    /// Every dead letter kept, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, BusError> {
        let mut out = Vec::new();
        for guard in self.shared().dead.iter() {
            let (_, v) = guard.into_inner().map_err(unavailable)?;
            let row: StoredDeadLetter<'_> = decode(&v)?;
            out.push(DeadLetter {
                subject: row.subject.to_string(),
                event: super::parse(row.envelope)?,
                reason: row.reason.to_string(),
                attempts: row.attempts,
                at: DateTime::from_timestamp_millis(row.at_ms).unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

impl Shared {
    /// The durable named in `spec`, from memory, from disk, or new at `spec.start`.
    fn durable(&self, spec: &SubscriptionSpec) -> Result<Arc<Mutex<Durable>>, BusError> {
        let mut map = lock(&self.durables.map);
        if let Some(durable) = map.get(&spec.durable) {
            return Ok(Arc::clone(durable));
        }
        let stored = self
            .consumers
            .get(cursor_key(&spec.durable))
            .map_err(unavailable)?;
        let cursor = match stored {
            Some(v) => position_of(&v)?,
            None => {
                let start = match spec.start {
                    StartAt::All => 0,
                    StartAt::New => self.head(),
                    StartAt::Time(t) => self.position_before(t)?,
                    StartAt::After(sequence) => self
                        .newest_at_or_before(self.head(), &spec.filter, |e| e.sequence > sequence)?
                        .map_or(
                            self.first.load(Ordering::SeqCst).saturating_sub(1),
                            |(p, _)| p,
                        ),
                };
                // Fixed at creation, as a JetStream consumer's start is.
                self.consumers
                    .insert(cursor_key(&spec.durable), position_key(start))
                    .map_err(unavailable)?;
                start
            }
        };
        let prefix = pending_prefix(&spec.durable);
        let now = Instant::now();
        let mut pending = BTreeMap::new();
        for guard in self.consumers.prefix(&prefix) {
            let (k, v) = guard.into_inner().map_err(unavailable)?;
            let position = position_of(&k[prefix.len()..])?;
            let attempts = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4]));
            pending.insert(position, Pending { attempts, due: now });
        }
        let durable = Arc::new(Mutex::new(Durable {
            cursor,
            scanned: cursor,
            scanned_filter: spec.filter.clone(),
            pending,
        }));
        map.insert(spec.durable.clone(), Arc::clone(&durable));
        Ok(durable)
    }

    /// The change-log sequence of the newest event up to which the durable has settled
    /// everything it reads, if it exists and has settled any.
    fn settled_sequence(&self, spec: &SubscriptionSpec) -> Result<Option<u64>, BusError> {
        let loaded = lock(&self.durables.map).get(&spec.durable).cloned();
        let floor = match loaded {
            Some(durable) => {
                let durable = lock(&durable);
                match durable.pending.first_key_value() {
                    Some((oldest, _)) => oldest - 1,
                    None => durable.cursor,
                }
            }
            None => {
                let cursor = self
                    .consumers
                    .get(cursor_key(&spec.durable))
                    .map_err(unavailable)?;
                let Some(cursor) = cursor else {
                    return Ok(None);
                };
                let oldest_pending = self
                    .consumers
                    .prefix(pending_prefix(&spec.durable))
                    .next()
                    .map(|guard| {
                        let key = guard.key().map_err(unavailable)?;
                        position_of(&key[key.len() - 8..])
                    })
                    .transpose()?;
                oldest_pending.map_or(position_of(&cursor), |oldest| Ok(oldest - 1))?
            }
        };
        let newest = self.newest_at_or_before(floor, &spec.filter, |_| false)?;
        Ok(newest.map(|(_, event)| event.sequence))
    }

    /// Deletes a durable's rows in one batch, then its copy in memory, under the lock that
    /// loads it, so no subscription finds it half deleted.
    fn forget_durable(&self, durable: &str) -> Result<(), BusError> {
        let mut map = lock(&self.durables.map);
        let mut batch = self.db.batch();
        batch.remove(&self.consumers, cursor_key(durable));
        for guard in self.consumers.prefix(pending_prefix(durable)) {
            batch.remove(&self.consumers, guard.key().map_err(unavailable)?);
        }
        batch.commit().map_err(unavailable)?;
        map.remove(durable);
        Ok(())
    }

    fn save_attempts(&self, durable: &str, position: u64, attempts: u32) -> Result<(), BusError> {
        self.consumers
            .insert(pending_key(durable, position), attempts.to_be_bytes())
            .map_err(unavailable)
    }

    fn forget(&self, durable: &str, position: u64) -> Result<(), BusError> {
        self.consumers
            .remove(pending_key(durable, position))
            .map_err(unavailable)
    }

    /// Stores the dead letter and drops the delivery, in one batch.
    fn dead_letter(
        &self,
        durable: &str,
        position: u64,
        event: &Envelope,
        attempts: u32,
        reason: &str,
    ) -> Result<(), BusError> {
        let envelope = serde_json::to_string(event)
            .map_err(|e| BusError::Refused(format!("encoding event {}: {e}", event.id)))?;
        let row = StoredDeadLetter {
            at_ms: Utc::now().timestamp_millis(),
            subject: &dead_letter_subject(durable, &event.nats_subject()),
            reason,
            attempts,
            envelope: &envelope,
        };
        let sequence = self.durables.dead_next.fetch_add(1, Ordering::SeqCst);
        let mut batch = self.db.batch();
        batch.insert(&self.dead, position_key(sequence), encode(&row)?);
        batch.remove(&self.consumers, pending_key(durable, position));
        batch.commit().map_err(unavailable)?;
        crate::consumer_metrics::dead_lettered(durable);
        tracing::warn!(durable, event = %event.id, attempts, reason, "event dead-lettered");
        Ok(())
    }
}

#[async_trait]
impl Subscriptions for InProcessBus {
    async fn subscribe(&self, spec: SubscriptionSpec) -> Result<Box<dyn Subscription>, BusError> {
        check(&spec)?;
        crate::consumer_metrics::started(&spec.durable);
        let shared = Arc::clone(self.shared());
        let durable = {
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || shared.durable(&spec))
                .await
                .map_err(unavailable)??
        };
        let inner = Inner {
            shared: Arc::downgrade(self.shared()),
            durable,
            spec,
        };
        Ok(Box::new(EmbeddedSubscription {
            inner: Arc::new(inner),
        }))
    }

    async fn settled(&self, spec: &SubscriptionSpec) -> Result<Option<u64>, BusError> {
        let shared = Arc::clone(self.shared());
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || shared.settled_sequence(&spec))
            .await
            .map_err(unavailable)?
    }

    async fn forget(&self, spec: &SubscriptionSpec) -> Result<(), BusError> {
        let shared = Arc::clone(self.shared());
        let durable = spec.durable.clone();
        tokio::task::spawn_blocking(move || shared.forget_durable(&durable))
            .await
            .map_err(unavailable)?
    }
}

/// Holds the bus weakly, as deliveries do: a subscription that outlives its bus keeps no files
/// open, and its calls fail as unavailable.
struct EmbeddedSubscription {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Weak<Shared>,
    durable: Arc<Mutex<Durable>>,
    spec: SubscriptionSpec,
}

fn upgrade(shared: &Weak<Shared>) -> Result<Arc<Shared>, BusError> {
    shared
        .upgrade()
        .ok_or_else(|| unavailable("the bus was closed"))
}

/// What `next` found to do.
enum Step {
    Deliver(Box<Delivery>),
    /// Nothing now; look again by this time (or when woken).
    Wait(Option<Instant>),
    /// Something was settled or scanned on the way: look again at once.
    Again,
}

impl Inner {
    fn delivery(&self, position: u64, event: Envelope, attempt: u32) -> Box<Delivery> {
        crate::consumer_metrics::delivered(&self.spec.durable, attempt);
        // No headers here: the trace context is the envelope's own attributes.
        let span = crate::trace::delivery_span(&event, &self.spec.durable, "memberd", None);
        Box::new(Delivery {
            span,
            event: event.clone(),
            attempt,
            settle: Box::new(EmbeddedSettle {
                shared: self.shared.clone(),
                durable: Arc::clone(&self.durable),
                name: self.spec.durable.clone(),
                max_attempts: self.spec.max_attempts,
                position,
                event,
                attempt,
                settled: false,
            }),
        })
    }

    /// One look for work: a redelivery that is due, else the next new event. Blocks.
    fn step(&self) -> Result<Step, BusError> {
        let shared = upgrade(&self.shared)?;
        let name = &self.spec.durable;
        let mut durable = lock(&self.durable);
        let now = Instant::now();
        let due = durable
            .pending
            .iter()
            .find(|(_, p)| p.due <= now)
            .map(|(position, p)| (*position, p.attempts));
        if let Some((position, attempts)) = due {
            let Some(event) = shared.at(position)? else {
                // Dropped by the stream's retention meanwhile: nothing left to deliver.
                shared.forget(name, position)?;
                durable.pending.remove(&position);
                return Ok(Step::Again);
            };
            if attempts >= self.spec.max_attempts {
                let reason = "not acknowledged within ack_wait on its last attempt";
                shared.dead_letter(name, position, &event, attempts, reason)?;
                durable.pending.remove(&position);
                return Ok(Step::Again);
            }
            let attempt = attempts + 1;
            shared.save_attempts(name, position, attempt)?;
            let pending = Pending {
                attempts: attempt,
                due: after(now, self.spec.ack_wait),
            };
            durable.pending.insert(position, pending);
            return Ok(Step::Deliver(self.delivery(position, event, attempt)));
        }
        let next_due = durable.pending.values().map(|p| p.due).min();
        if durable.pending.len() >= self.spec.max_ack_pending {
            return Ok(Step::Wait(next_due));
        }
        if durable.scanned_filter != self.spec.filter {
            durable.scanned = durable.cursor;
            durable.scanned_filter.clone_from(&self.spec.filter);
        }
        let from = durable.cursor.max(durable.scanned);
        let scan = shared.next_after(from, &self.spec.filter, SCAN_ROWS)?;
        let Some((position, event)) = scan.found else {
            durable.scanned = scan.scanned_to.max(from);
            return Ok(if scan.at_end {
                Step::Wait(next_due)
            } else {
                Step::Again
            });
        };
        let mut batch = shared.db.batch();
        batch.insert(&shared.consumers, cursor_key(name), position_key(position));
        let first = 1u32.to_be_bytes();
        batch.insert(&shared.consumers, pending_key(name, position), first);
        batch.commit().map_err(unavailable)?;
        durable.cursor = position;
        durable.scanned = position;
        let pending = Pending {
            attempts: 1,
            due: after(now, self.spec.ack_wait),
        };
        durable.pending.insert(position, pending);
        Ok(Step::Deliver(self.delivery(position, event, 1)))
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            // Held for one look and one wait (at most a second), so a bus dropped meanwhile
            // closes soon after.
            let shared = upgrade(&self.inner.shared)?;
            let woken = shared.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let inner = Arc::clone(&self.inner);
            let step = tokio::task::spawn_blocking(move || inner.step())
                .await
                .map_err(unavailable)??;
            let wake_at = match step {
                Step::Deliver(delivery) => return Ok(*delivery),
                Step::Again => continue,
                Step::Wait(at) => at,
            };
            let second = after(Instant::now(), Duration::from_secs(1));
            let wake_at = wake_at.map_or(second, |at| at.min(second));
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }
}

/// One delivery's settlement. Holds the bus weakly: a delivery that outlives its bus (a
/// handler still running at shutdown) keeps no files open, and settling it fails as
/// unavailable.
struct EmbeddedSettle {
    shared: Weak<Shared>,
    durable: Arc<Mutex<Durable>>,
    name: String,
    max_attempts: u32,
    position: u64,
    event: Envelope,
    attempt: u32,
    settled: bool,
}

impl EmbeddedSettle {
    /// Whether this delivery is still the live one: not settled, and not delivered again since
    /// (after `ack_wait`).
    fn current(&self, durable: &Durable) -> bool {
        !self.settled
            && durable
                .pending
                .get(&self.position)
                .is_some_and(|p| p.attempts == self.attempt)
    }

    fn settle_ack(&mut self) -> Result<(), BusError> {
        let shared = upgrade(&self.shared)?;
        let mut durable = lock(&self.durable);
        if self.current(&durable) {
            shared.forget(&self.name, self.position)?;
            durable.pending.remove(&self.position);
            drop(durable);
            // A subscription held back by max_ack_pending may go on.
            shared.wake.notify_waiters();
        }
        self.settled = true;
        Ok(())
    }

    fn settle_retry(&mut self, delay: Duration, reason: &str) -> Result<Retried, BusError> {
        let shared = upgrade(&self.shared)?;
        let mut durable = lock(&self.durable);
        if !self.current(&durable) {
            self.settled = true;
            return Ok(Retried::Later);
        }
        if self.attempt >= self.max_attempts {
            shared.dead_letter(&self.name, self.position, &self.event, self.attempt, reason)?;
            durable.pending.remove(&self.position);
            self.settled = true;
            drop(durable);
            shared.wake.notify_waiters();
            return Ok(Retried::DeadLettered);
        }
        if let Some(p) = durable.pending.get_mut(&self.position) {
            p.due = after(Instant::now(), delay);
        }
        self.settled = true;
        drop(durable);
        shared.wake.notify_waiters();
        Ok(Retried::Later)
    }
}

impl Drop for EmbeddedSettle {
    fn drop(&mut self) {
        if !self.settled && self.shared.strong_count() > 0 {
            // The handler went away without settling: deliver again at once (or dead-letter
            // a last attempt). A failure here leaves the delivery pending, so it still comes
            // again after `ack_wait`.
            if let Err(e) = self.settle_retry(Duration::ZERO, "dropped without being settled") {
                tracing::warn!(error = %e, "could not settle a dropped delivery");
            }
        }
    }
}

#[async_trait]
impl Settle for EmbeddedSettle {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        tokio::task::spawn_blocking(move || self.settle_ack())
            .await
            .map_err(unavailable)?
    }

    async fn retry(
        mut self: Box<Self>,
        delay: Duration,
        reason: &str,
    ) -> Result<Retried, BusError> {
        let reason = reason.to_string();
        tokio::task::spawn_blocking(move || self.settle_retry(delay, &reason))
            .await
            .map_err(unavailable)?
    }
}
