//! The outbox relay (decision 0012): publication of committed changes without a
//! cross-partition transaction.
//!
//! A commit writes its events as outbox rows in its own partition, in its own conditional
//! batch, each at a position that grows within the partition; before the batch it writes a
//! hint naming the partition and the commit's last position. A relay pass reads the hints,
//! reads each hinted partition's outbox rows past what it already handed on, gives each
//! event the next number of the service's change log and appends them there in conditional
//! batches (`IF NOT EXISTS` on each number, so two relays can never give one number twice),
//! then records how far each partition is handed on. The publisher reads the change log as
//! it reads the embedded one: gap-free and in order, so its exactly-once resume holds.
//!
//! After a crash between appending and recording progress, the next pass first reads the log
//! from its last checkpoint and brings the progress up to what the log holds, so no event is
//! appended twice. A hint is deleted once its commit is handed on, or once it is older than
//! [`HINT_GRACE_MS`] (its commit did not apply). A lease row keeps one relay busy per
//! keyspace; the others only read.

mod pass;
mod progress;
mod scan;
mod statements;

use crate::session::Cluster;
use crate::statements::BatchWrite;
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use loyalty_common::error::{ServiceError, ServiceResult};
use progress::*;
use scan::{Carried, Hint, Scan};
use scylla::value::CqlTimestamp;
pub use statements::RelayStatements;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Numbers per partition of the change log.
pub const BUCKET_SIZE: u64 = 4096;
/// Hint partitions per minute, so a busy minute is not one hot partition.
pub const HINT_SHARDS: i32 = 16;
/// A hint whose commit is not in its partition after this long was for a commit that did
/// not apply (its conditional batch lost, or failed); it is dropped.
/// Longer than the clock slack below, so that a hint is never dropped as stale before the
/// relay could have read its commit.
pub const HINT_GRACE_MS: i64 = 180_000;
/// How far behind the newest minute the relay keeps reading hint buckets: a writer whose
/// clock lags by less than this still has its hints read.
const CLOCK_SLACK_MINUTES: i32 = 2;
/// Events per conditional batch on the change log.
const APPEND_BATCH: usize = 100;
const LEASE_TTL_SECONDS: i32 = 5;
/// The least time between two passes: the publisher asks for changes every 50 ms, and a
/// pass reads every hint partition of the last minutes (16 shards each).
const PASS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// Partitions read or recorded at once within a pass.
const CONCURRENCY: usize = 64;
/// Outbox rows read from one partition in a pass; the rest wait for the next pass.
const OUTBOX_READ: usize = 1_000;
/// Partitions handed on in one pass (those with the oldest hints).
const PASS_PARTITIONS: usize = 2_000;
const CHECKPOINT: &str = "relay:checkpoint";
const LOW_MINUTE: &str = "relay:low_minute";

/// What a relay reads: the outbox rows commits wrote into their own partitions.
#[async_trait]
pub trait OutboxPartitions: Send + Sync + 'static {
    /// At most `limit` of the partition's outbox rows with a position above `after`,
    /// oldest first: (position, body).
    async fn outbox_rows(
        &self,
        tenant: &str,
        member: &str,
        after: u64,
        limit: usize,
    ) -> ServiceResult<Vec<(u64, Vec<u8>)>>;
    /// Deletes the partition's outbox rows up to `upto` (they are in the change log now).
    async fn forget_outbox(&self, tenant: &str, member: &str, upto: u64) -> ServiceResult<()>;
}

/// One event of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    pub seq: u64,
    pub tenant: String,
    pub member: String,
    /// Its position in its partition's outbox.
    pub position: u64,
    pub body: Vec<u8>,
}

/// A keyspace's relay and change log.
pub struct Relay {
    cluster: Arc<Cluster>,
    statements: RelayStatements,
    service: &'static str,
    holder: String,
    /// The newest number known to be in the log (None: recover from the checkpoint first).
    head: Mutex<Option<u64>>,
    /// When the last pass started.
    last_pass: Mutex<Option<std::time::Instant>>,
    /// Whether this process held the lease at its last ask.
    holding: std::sync::atomic::AtomicBool,
    /// Which hints the next pass reads.
    scan: Mutex<Scan>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn minute(ms: i64) -> i32 {
    (ms / 60_000) as i32
}

fn shard(tenant: &str, member: &str) -> i32 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("{tenant}\u{0}{member}"));
    i32::from(digest[0]) % HINT_SHARDS
}

fn bucket(seq: u64) -> i64 {
    (seq / BUCKET_SIZE) as i64
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::internal(format!("the relay's {what} is negative: a corrupt row"))
}

fn unsigned(value: i64, what: &str) -> ServiceResult<u64> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

/// A number as CQL's bigint stores it; one past i64::MAX is refused rather than wrapped.
fn signed(value: u64, what: &str) -> ServiceResult<i64> {
    i64::try_from(value)
        .map_err(|_| ServiceError::internal(format!("the relay's {what} {value} is past bigint")))
}

impl Relay {
    /// Prepares the relay's statements for `keyspace` and marks where its hints start (now,
    /// unless a relay ran here before): every hint written after this is read.
    pub async fn prepare(
        cluster: Arc<Cluster>,
        keyspace: &str,
        service: &'static str,
    ) -> ServiceResult<Arc<Self>> {
        let mut statements = RelayStatements::prepare(&cluster.session, keyspace).await?;
        let serial = Some(cluster.relay_writes.clone());
        let st = &mut statements;
        st.take_lease
            .prepared
            .set_execution_profile_handle(serial.clone());
        st.renew_lease
            .prepared
            .set_execution_profile_handle(serial.clone());

        if service == "ledger" {
            // A hint is as durable as the ledger write it announces (EACH_QUORUM when the
            // ledger's writes are): a commit that survives losing a region keeps its hint.
            st.hint
                .prepared
                .set_execution_profile_handle(Some(cluster.ledger_writes.clone()));
        }
        statements
            .init_reader
            .applied(
                &cluster.session,
                (LOW_MINUTE.to_string(), i64::from(minute(now_ms()))),
            )
            .await?;
        Ok(Arc::new(Self {
            cluster,
            statements,
            service,
            holder: ulid::Ulid::new().to_string(),
            head: Mutex::new(None),
            last_pass: Mutex::new(None),
            holding: std::sync::atomic::AtomicBool::new(false),
            scan: Mutex::new(Scan::default()),
        }))
    }

    /// Records that `tenant`/`member` is about to commit outbox rows up to `position`. Call
    /// it before the batch: a hint without its commit is harmless, a commit without a hint
    /// would never be handed on.
    pub async fn hint(&self, tenant: &str, member: &str, position: u64) -> ServiceResult<()> {
        let at = now_ms();
        self.statements
            .hint
            .run(
                &self.cluster.session,
                (
                    minute(at),
                    shard(tenant, member),
                    CqlTimestamp(at),
                    tenant.to_string(),
                    member.to_string(),
                    signed(position, "outbox position")?,
                ),
            )
            .await
    }

    /// Hands on what is committed (when this process holds the lease), then reads the
    /// change log after `seq`: at most `limit` events, without gaps.
    pub async fn changes_after(
        &self,
        source: &dyn OutboxPartitions,
        seq: u64,
        limit: usize,
    ) -> ServiceResult<Vec<LoggedChange>> {
        let due = {
            let mut last = self.last_pass.lock().await;
            // A process without the lease asks for it once a lease's life, not every pass:
            // every ask is a SERIAL round on the one lease row the holder renews.
            let interval = if self.holding.load(std::sync::atomic::Ordering::Relaxed) {
                PASS_INTERVAL
            } else {
                std::time::Duration::from_secs(LEASE_TTL_SECONDS.unsigned_abs().into())
            };
            let due = last.is_none_or(|at| at.elapsed() >= interval);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due && self.cluster.relays {
            // A pass that fails is retried at the next read; what the log holds is served
            // meanwhile.
            let lease = self.lease().await;
            let held = self.holding.swap(
                matches!(lease, Ok(true)),
                std::sync::atomic::Ordering::Relaxed,
            );
            if !held && matches!(lease, Ok(true)) {
                // Another relay may have passed meanwhile and left hints behind: sweep first.
                self.scan.lock().await.forget();
            }
            let passed = match lease {
                Ok(true) => self.pass(source).await.map(|_| ()),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = passed {
                tracing::warn!(service = self.service, error = %e, "relay pass failed; retried at the next read");
            }
        }
        self.read_log(seq, limit).await
    }

    /// The last number `reader` saved (0: none).
    pub async fn position(&self, reader: &str) -> ServiceResult<u64> {
        self.mark(reader).await.map(|m| m.unwrap_or(0))
    }

    /// Saves `reader`'s position.
    pub async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        self.statements
            .save_reader
            .run(
                &self.cluster.session,
                (reader.to_string(), signed(seq, "reader position")?),
            )
            .await
    }

    async fn mark(&self, reader: &str) -> ServiceResult<Option<u64>> {
        match self
            .statements
            .reader
            .first(&self.cluster.session, (reader.to_string(),))
            .await?
        {
            Some((seq,)) => Ok(Some(unsigned(seq, "reader position")?)),
            None => Ok(None),
        }
    }

    /// Takes or renews the lease; whether this process holds it.
    async fn lease(&self) -> ServiceResult<bool> {
        let session = &self.cluster.session;
        let service = self.service.to_string();
        if self
            .statements
            .renew_lease
            .applied(
                session,
                (
                    LEASE_TTL_SECONDS,
                    self.holder.clone(),
                    service.clone(),
                    self.holder.clone(),
                ),
            )
            .await?
        {
            return Ok(true);
        }
        self.statements
            .take_lease
            .applied(session, (service, self.holder.clone(), LEASE_TTL_SECONDS))
            .await
    }

    /// The change log after `seq`, crossing buckets, stopping at the first gap.
    async fn read_log(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedChange>> {
        let mut out: Vec<LoggedChange> = Vec::new();
        let mut after = seq;
        while out.len() < limit {
            let want = (limit - out.len()).min(BUCKET_SIZE as usize) as i32;
            let rows = self
                .statements
                .changes
                .rows(
                    &self.cluster.session,
                    (bucket(after + 1), signed(after, "change number")?, want),
                )
                .await?;
            let found = rows.len();
            let (changes, gap) = contiguous(after, rows)?;
            if let Some(last) = changes.last() {
                after = last.seq;
            }
            out.extend(changes);
            if gap {
                // A number not yet visible: the events after it wait for the next read.
                return Ok(out);
            }
            // The bucket has more only if this read was cut short by `want`; otherwise the
            // log goes on in the next bucket only if this one is full.
            let bucket_full = (after + 1).is_multiple_of(BUCKET_SIZE);
            if (found as i32) < want && !bucket_full {
                break;
            }
            if found == 0 {
                break;
            }
        }
        Ok(out)
    }
}

/// A partition with its hints, its progress and its outbox rows past it.
type Fetched<'a> = (&'a String, &'a String, &'a [Hint], u64, Vec<(u64, Vec<u8>)>);

#[cfg(test)]
mod tests;
