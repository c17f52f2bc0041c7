//! Publishes every committed change of one service exactly once, in commit order, from its
//! outbox ([`Outbox`]: the record of committed changes the service writes in the same commit
//! as each change). A round reads the next events after its position, publishes them, waits
//! for the bus to confirm all of them, and only then saves the new position. After a crash it
//! resumes after the newest event the bus already holds, so nothing is published twice and
//! nothing is skipped. Writes never wait for it: while the bus is down, events wait in the
//! outbox.
//!
//! Each service runs its own publisher on the shared bus; the bus keeps each service's events
//! apart (a JetStream stream per service), so one publisher's resumption never looks at
//! another's events.

use crate::bus::{BusError, EventBus};
use crate::config::EventsConfig;
use crate::envelope::Envelope;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The publisher's name as a reader of an outbox.
pub const READER: &str = "events";

/// The name a publisher keeps its position under: [`READER`], or, in one of two regions,
/// `events@<region>`. Each region publishes the whole change log into its own streams
/// (decision 0019), so each needs a position of its own in the shared store: one saved by
/// the other region would make it skip what its own stream never got.
pub fn reader_in(region: Option<&str>) -> String {
    match region {
        Some(region) => format!("{READER}@{region}"),
        None => READER.to_string(),
    }
}

/// One event of an outbox, at its place in commit order.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// The event as published. Its `sequence` is its position in the outbox: increasing,
    /// never reused, and what the publisher saves and resumes from.
    pub envelope: Envelope,
    /// When the change was committed (ms since the epoch), for the publication lag metric.
    pub committed_ms: i64,
}

impl OutboxEvent {
    /// Its position in the outbox.
    pub fn seq(&self) -> u64 {
        self.envelope.sequence
    }
}

/// The outbox could not be read or written (its store is unavailable, a row is unreadable).
/// The publisher retries with back-off.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct OutboxError(pub String);

/// A service's record of committed changes, as events, with the publisher's saved position.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// The service the events are from (`ledger`, `member`): the bus keeps them under it.
    fn service(&self) -> &'static str;

    /// Up to `limit` events after position `seq`, oldest first. Once an event is visible here,
    /// every event before it is too: the publisher never goes back for a late one.
    async fn after(&self, seq: u64, limit: usize) -> Result<Vec<OutboxEvent>, OutboxError>;

    /// The last position `reader` saved (0: none).
    async fn position(&self, reader: &str) -> Result<u64, OutboxError>;

    /// Saves `reader`'s position; durable when this returns.
    async fn save_position(&self, reader: &str, seq: u64) -> Result<(), OutboxError>;

    /// The newest position in the outbox, at least `from` (a position the caller knows is
    /// there): how far it goes, for the backlog metric.
    async fn log_end(&self, from: u64) -> Result<u64, OutboxError>;
}

/// The publisher's last failure, while it lasts (for `/readyz`). Cheap to clone.
#[derive(Clone, Default)]
pub struct PublisherStatus(Arc<Mutex<Option<String>>>);

impl PublisherStatus {
    /// Why publication is failing now, if it is.
    pub fn problem(&self) -> Option<String> {
        self.lock().clone()
    }

    fn set(&self, problem: Option<String>) {
        *self.lock() = problem;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // A plain value: never left half-written.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Publisher {
    pub outbox: Arc<dyn Outbox>,
    pub bus: Arc<dyn EventBus>,
    /// Most events per round.
    pub batch: usize,
    /// Pause after a round that drained the outbox.
    pub idle: Duration,
    /// Crash tests: abort after the bus confirms a round, before the position is saved.
    pub crash_after_publish: bool,
    pub status: PublisherStatus,
    /// The name its position is saved under ([`reader_in`]).
    pub reader: String,
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("change log: {0}")]
    Outbox(#[from] OutboxError),
    #[error(
        "the event stream's newest event (sequence {sequence}, id {id}) is not in the \
         {service} service's change log: the stream was written by another data directory. \
         Point memberd at its own stream (events.nats.stream.name_prefix) or delete the stale \
         stream"
    )]
    ForeignStream {
        service: &'static str,
        sequence: u64,
        id: String,
    },
}

/// `events_outbox_backlog`: how many committed events wait for publication, the distance from
/// the publisher's position to the end of the outbox. Measured at most every
/// [`Backlog::EVERY`] while events wait (a full round, or publication failing), since on the
/// CQL store it is a read; zero at once when a round drains the outbox.
#[derive(Default)]
struct Backlog {
    /// The newest position known to be published.
    published: u64,
    measured: Option<std::time::Instant>,
}

impl Backlog {
    const EVERY: Duration = Duration::from_secs(5);

    fn drained(&mut self, service: &'static str) {
        metrics::gauge!("events_outbox_backlog", "service" => service).set(0.0);
        self.measured = None;
    }

    async fn measure(&mut self, outbox: &dyn Outbox) {
        if self.measured.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        self.measured = Some(std::time::Instant::now());
        let service = outbox.service();
        match outbox.log_end(self.published).await {
            Ok(end) => {
                let waiting = end.saturating_sub(self.published);
                metrics::gauge!("events_outbox_backlog", "service" => service).set(waiting as f64);
            }
            Err(e) => {
                tracing::debug!(service, error = %e.0, "the outbox's end could not be read")
            }
        }
    }
}

impl Publisher {
    /// A publisher of `outbox` on `bus` with the settings of `events.*`.
    pub fn new(outbox: Arc<dyn Outbox>, bus: Arc<dyn EventBus>, config: &EventsConfig) -> Self {
        Self {
            outbox,
            bus,
            batch: config.batch_size.max(1),
            idle: Duration::from_millis(config.poll_interval_ms.max(1)),
            crash_after_publish: config.crash_after_publish,
            status: PublisherStatus::default(),
            reader: READER.to_string(),
        }
    }

    /// Keeps its position under `reader` (see [`reader_in`]) instead of [`READER`].
    pub fn reading_as(mut self, reader: String) -> Self {
        self.reader = reader;
        self
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let service = self.outbox.service();
        let mut backoff = Backoff::default();
        // None: find out where to go on from, as at start-up. After any failed round too: the
        // bus may have stored part of the batch (JetStream stored it, then the confirmation
        // was lost), and publishing it again after the duplicate window would repeat it.
        let mut position: Option<u64> = None;
        let mut backlog = Backlog::default();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let after = match position {
                Some(after) => after,
                None => match self.resume().await {
                    Ok(after) => {
                        tracing::info!(service, position = after, "event publisher going on");
                        // Known from the start, not only after the next publication: a
                        // restart with nothing left to publish still reports its position.
                        metrics::gauge!("events_published_sequence", "service" => service)
                            .set(after as f64);
                        self.status.set(None);
                        position = Some(after);
                        backlog.published = after;
                        after
                    }
                    Err(e) => {
                        tracing::warn!(service, error = %e, "event publisher cannot go on yet; retrying");
                        self.status.set(Some(e.to_string()));
                        backlog.measure(self.outbox.as_ref()).await;
                        if stopped(&mut shutdown, backoff.next()).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            match self.round(after).await {
                Ok(Some((next, published))) => {
                    position = Some(next);
                    backoff = Backoff::default();
                    self.status.set(None);
                    backlog.published = next;
                    if published < self.batch {
                        backlog.drained(service);
                    } else {
                        backlog.measure(self.outbox.as_ref()).await;
                    }
                    // A short round means the outbox is drained: pause, so that the next round
                    // carries many events (one write and one confirmation wait for all).
                    if published < self.batch && stopped(&mut shutdown, self.idle).await {
                        return;
                    }
                }
                Ok(None) => {
                    backlog.drained(service);
                    if stopped(&mut shutdown, self.idle).await {
                        return;
                    }
                }
                Err(e) => {
                    metrics::counter!("events_publish_failures_total", "service" => service)
                        .increment(1);
                    tracing::warn!(service, error = %e, position = after, "publishing events failed; retrying");
                    self.status.set(Some(e.to_string()));
                    backlog.measure(self.outbox.as_ref()).await;
                    position = None;
                    if stopped(&mut shutdown, backoff.next()).await {
                        return;
                    }
                }
            }
        }
    }

    /// Where to start: after the saved position, or after the newest event the bus holds if the
    /// last run published more than it saved.
    async fn resume(&self) -> Result<u64, PublishError> {
        let service = self.outbox.service();
        self.bus.prepare(service).await?;
        let saved = self.outbox.position(&self.reader).await?;
        let Some(last) = self.bus.last_published(service).await? else {
            return Ok(saved);
        };
        if last.sequence <= saved {
            return Ok(saved);
        }
        // The bus holds more than was saved: go on after it, if it is ours. An event at that
        // position with another id means the stream belongs to another outbox.
        let ours = self
            .outbox
            .after(last.sequence - 1, 1)
            .await?
            .into_iter()
            .next()
            .filter(|e| e.seq() == last.sequence && e.envelope.id == last.id);
        match ours {
            Some(_) => {
                self.outbox
                    .save_position(&self.reader, last.sequence)
                    .await?;
                Ok(last.sequence)
            }
            None => Err(PublishError::ForeignStream {
                service,
                sequence: last.sequence,
                id: last.id,
            }),
        }
    }

    /// Publishes the events after `after`; returns the new position and how many it
    /// published, or None if there were none.
    async fn round(&self, after: u64) -> Result<Option<(u64, usize)>, PublishError> {
        let service = self.outbox.service();
        let events = self.outbox.after(after, self.batch).await?;
        let Some(last) = events.last().map(OutboxEvent::seq) else {
            return Ok(None);
        };
        let (envelopes, committed): (Vec<_>, Vec<_>) = events
            .into_iter()
            .map(|e| (e.envelope, e.committed_ms))
            .unzip();
        let published = envelopes.len();
        self.bus.publish(envelopes).await?;
        if self.crash_after_publish {
            tracing::error!(
                service,
                "events.crash_after_publish is set: aborting before saving the position"
            );
            std::process::abort();
        }
        let now = chrono::Utc::now().timestamp_millis();
        let lag = metrics::histogram!("events_publication_lag_seconds", "service" => service);
        for at in committed {
            lag.record((now - at).max(0) as f64 / 1000.0);
        }
        metrics::counter!("events_published_total", "service" => service)
            .increment(published as u64);
        self.outbox.save_position(&self.reader, last).await?;
        metrics::gauge!("events_published_sequence", "service" => service).set(last as f64);
        Ok(Some((last, published)))
    }
}

/// Sleeps `pause`; true if shutdown was requested meanwhile.
async fn stopped(shutdown: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    };
    !slept || *shutdown.borrow()
}

/// 100 ms doubling up to 5 s.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(100))
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        now
    }
}
