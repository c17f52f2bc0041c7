//! Publishes every committed change exactly once, in commit order, from the change log (the
//! outbox). A round reads the next changes after its position, publishes them, waits for the
//! bus to confirm all of them, and only then saves the new position. After a crash it resumes
//! after the newest event the bus already holds, so nothing is published twice and nothing is
//! skipped. Writes never wait for it: while the bus is down, changes wait in the log.

use crate::events::{SERVICE, envelope};
use crate::store::ChangeFeed;
use loyalty_events::{BusError, EventBus};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The publisher's name as a reader of the change log.
pub const READER: &str = "events";

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
    pub feed: Arc<dyn ChangeFeed>,
    pub bus: Arc<dyn EventBus>,
    /// Most changes per round.
    pub batch: usize,
    /// Pause after a round that drained the log.
    pub idle: Duration,
    /// Crash tests: abort after the bus confirms a round, before the position is saved.
    pub crash_after_publish: bool,
    pub status: PublisherStatus,
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("change log: {0}")]
    Store(String),
    #[error(
        "the event stream's newest event (sequence {sequence}, id {id}) is not in this ledger's \
         change log: the stream was written by another data directory. Point memberd at its own \
         stream (events.nats.stream.name_prefix) or delete the stale stream"
    )]
    ForeignStream { sequence: u64, id: String },
}

impl From<loyalty_common::ServiceError> for PublishError {
    fn from(e: loyalty_common::ServiceError) -> Self {
        PublishError::Store(e.message)
    }
}

impl Publisher {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        // None: find out where to go on from, as at start-up. After any failed round too: the
        // bus may have stored part of the batch (JetStream stored it, then the confirmation
        // was lost), and publishing it again after the duplicate window would repeat it.
        let mut position: Option<u64> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let after = match position {
                Some(after) => after,
                None => match self.resume().await {
                    Ok(after) => {
                        tracing::info!(position = after, "event publisher going on");
                        // Known from the start, not only after the next publication: a
                        // restart with nothing left to publish still reports its position.
                        metrics::gauge!("events_published_sequence").set(after as f64);
                        self.status.set(None);
                        position = Some(after);
                        after
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event publisher cannot go on yet; retrying");
                        self.status.set(Some(e.to_string()));
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
                    // A short round means the log is drained: pause, so that the next round
                    // carries many events (one write and one confirmation wait for all).
                    if published < self.batch && stopped(&mut shutdown, self.idle).await {
                        return;
                    }
                }
                Ok(None) => {
                    if stopped(&mut shutdown, self.idle).await {
                        return;
                    }
                }
                Err(e) => {
                    metrics::counter!("events_publish_failures_total").increment(1);
                    tracing::warn!(error = %e, position = after, "publishing events failed; retrying");
                    self.status.set(Some(e.to_string()));
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
        self.bus.prepare(SERVICE).await?;
        let saved = self.feed.position(READER).await?;
        let Some(last) = self.bus.last_published(SERVICE).await? else {
            return Ok(saved);
        };
        if last.sequence <= saved {
            return Ok(saved);
        }
        let ours = self
            .feed
            .changes_after(last.sequence - 1, 1)
            .await?
            .into_iter()
            .next()
            .filter(|c| c.seq == last.sequence && c.entry.id.to_string() == last.id);
        match ours {
            Some(_) => {
                self.feed.save_position(READER, last.sequence).await?;
                Ok(last.sequence)
            }
            None => Err(PublishError::ForeignStream {
                sequence: last.sequence,
                id: last.id,
            }),
        }
    }

    /// Publishes the changes after `after`; returns the new position and how many it published,
    /// or None if there were none.
    async fn round(&self, after: u64) -> Result<Option<(u64, usize)>, PublishError> {
        let changes = self.feed.changes_after(after, self.batch).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(None);
        };
        let events: Vec<_> = changes.iter().map(envelope).collect();
        let published = events.len();
        self.bus.publish(events).await?;
        if self.crash_after_publish {
            tracing::error!(
                "events.crash_after_publish is set: aborting before saving the position"
            );
            std::process::abort();
        }
        let now = chrono::Utc::now().timestamp_millis();
        let lag = metrics::histogram!("events_publication_lag_seconds");
        for change in &changes {
            lag.record((now - change.entry.at.0).max(0) as f64 / 1000.0);
        }
        metrics::counter!("events_published_total").increment(published as u64);
        self.feed.save_position(READER, last).await?;
        metrics::gauge!("events_published_sequence").set(last as f64);
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
