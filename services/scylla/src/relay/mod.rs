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

mod scan;
mod statements;

use crate::session::Cluster;
use crate::statements::BatchWrite;
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use loyalty_common::error::{ServiceError, ServiceResult};
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
        if due && self.cluster.relays && self.cluster.failover.may_relay() {
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

    /// The newest number in the change log, at least `from` (a number known to be in it):
    /// the newest of the bucket after `from`, and of the next ones while they are full. One
    /// read, two at a bucket's end.
    pub async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        let mut end = from;
        let mut at = bucket(from.saturating_add(1));
        loop {
            let newest = self
                .statements
                .newest_change
                .first(&self.cluster.session, (at,))
                .await?;
            let Some((seq,)) = newest else {
                return Ok(end);
            };
            let seq = unsigned(seq, "change number")?;
            end = end.max(seq);
            if !(seq + 1).is_multiple_of(BUCKET_SIZE) {
                return Ok(end);
            }
            at += 1;
        }
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

    /// One pass: recover if needed, then hand on every hinted partition's new outbox rows.
    async fn pass(&self, source: &dyn OutboxPartitions) -> ServiceResult<usize> {
        let mut head = self.head.lock().await;
        let mut next = match *head {
            Some(seq) => seq,
            None => self.recover().await?,
        };
        // Until this pass has recorded everything it appended, the next one must recover
        // from the checkpoint: an error or a lost race anywhere below leaves it so.
        *head = None;
        let now = now_ms();
        let low = i32::try_from(self.mark(LOW_MINUTE).await?.unwrap_or(0))
            .map_err(|_| corrupt("low-water minute"))?;
        let newest = minute(now) + 1;
        let mut scan = self.scan.lock().await;
        let plan = scan.begin(low, now);
        let buckets: Vec<(i32, i32)> = (plan.first_minute..=newest)
            .flat_map(|m| (0..HINT_SHARDS).map(move |shard| (m, shard)))
            .collect();
        let reads: Vec<_> = buckets
            .into_iter()
            .map(|(bucket_minute, shard)| self.hints_in(bucket_minute, shard, plan.since))
            .collect();
        let hint_rows: Vec<_> = stream::iter(reads)
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut pending: BTreeMap<(String, String), Vec<Hint>> = BTreeMap::new();
        for (bucket_minute, shard, rows) in hint_rows {
            for (at, tenant, member, position) in rows {
                pending.entry((tenant, member)).or_default().push(Hint {
                    bucket_minute,
                    shard,
                    at,
                    position: unsigned(position, "hint position")?,
                });
            }
        }
        for (tenant, member, hint) in &plan.carried {
            let hints = pending.entry((tenant.clone(), member.clone())).or_default();
            if !hints.contains(hint) {
                hints.push(hint.clone());
            }
        }
        // The partitions with the oldest hints first, at most PASS_PARTITIONS of them: a
        // pass stays well within the lease; the rest wait for the next one.
        let mut hinted: Vec<_> = pending.iter().collect();
        hinted.sort_by_key(|(_, hints)| hints.iter().map(|h| h.at.0).min());
        let mut unfinished_minutes: Vec<i32> = hinted
            .iter()
            .skip(PASS_PARTITIONS)
            .flat_map(|(_, hints)| hints.iter().map(|h| h.bucket_minute))
            .collect();
        // What this pass leaves to the next: the partitions it does not reach, and below,
        // the hints of those it reaches whose commits it does not hand on.
        let mut left: Vec<Carried> = hinted
            .iter()
            .skip(PASS_PARTITIONS)
            .flat_map(|((tenant, member), hints)| {
                hints
                    .iter()
                    .map(|h| (tenant.clone(), member.clone(), h.clone()))
            })
            .collect();
        hinted.truncate(PASS_PARTITIONS);
        // Each hinted partition's progress and new outbox rows, many partitions at once.
        let reads: Vec<_> = hinted
            .into_iter()
            .map(|((tenant, member), hints)| self.fetch(source, tenant, member, hints))
            .collect();
        let mut fetched: Vec<Fetched> = stream::iter(reads)
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        // Partitions in the order of their oldest hint: roughly commit order across them.
        fetched.sort_by_key(|(_, _, hints, _, _)| hints.iter().map(|h| h.at.0).min());
        let mut appended = 0;
        let mut batch = Appending::default();
        // Partitions whose events are all in `batch`: recorded once it is appended.
        let mut waiting: Vec<Relayed> = Vec::new();
        for (tenant, member, hints, relayed, rows) in fetched {
            let complete = rows.len() < OUTBOX_READ;
            if !complete {
                unfinished_minutes.extend(hints.iter().map(|h| h.bucket_minute));
            }
            let mut upto = relayed;
            let mut last_seq = 0;
            for (position, body) in rows {
                next += 1;
                batch.push(&self.statements, next, tenant, member, position, body)?;
                upto = position;
                last_seq = next;
                appended += 1;
                // A batch is one bucket of the log: it ends at a bucket's last number.
                if batch.full() || (next + 1).is_multiple_of(BUCKET_SIZE) {
                    if !batch.flush(&self.cluster).await? {
                        return Ok(0);
                    }
                    self.record(source, std::mem::take(&mut waiting), now)
                        .await?;
                }
            }
            left.extend(
                hints
                    .iter()
                    .filter(|h| !forgettable(h, upto, complete, now))
                    .map(|h| (tenant.clone(), member.clone(), h.clone())),
            );
            waiting.push(Relayed {
                tenant,
                member,
                relayed,
                upto,
                last_seq,
                complete,
                hints,
            });
        }
        if !batch.flush(&self.cluster).await? {
            return Ok(0);
        }
        self.record(source, waiting, now).await?;
        self.save_position(CHECKPOINT, next).await?;
        *head = Some(next);
        let swept = plan.sweep;
        scan.finish(plan, left);
        if !swept {
            // Only a sweep read every hint of the window: only it may raise the low water.
            return Ok(appended);
        }
        // Buckets before the slack hold nothing but hints still waiting for their commit,
        // or for the rest of their partition's rows.
        let waiting = pending
            .values()
            .flatten()
            .filter(|h| now - h.at.0 <= HINT_GRACE_MS)
            .map(|h| h.bucket_minute)
            .chain(unfinished_minutes)
            .min();
        let new_low = waiting
            .unwrap_or(i32::MAX)
            .min(minute(now) - CLOCK_SLACK_MINUTES)
            .max(low);
        if new_low > low {
            self.save_position(LOW_MINUTE, u64::try_from(new_low).unwrap_or(0))
                .await?;
        }
        Ok(appended)
    }

    /// Records how far each partition is handed on, drops its outbox rows that are in the
    /// log, and deletes its hints whose commits are handed on (or never applied).
    async fn record(
        &self,
        source: &dyn OutboxPartitions,
        partitions: Vec<Relayed<'_>>,
        now: i64,
    ) -> ServiceResult<()> {
        let writes: Vec<_> = partitions
            .into_iter()
            .map(|done| self.record_one(source, done, now))
            .collect();
        stream::iter(writes)
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    /// The hints of one minute's shard, all of them or those written `since`.
    async fn hints_in(
        &self,
        bucket_minute: i32,
        shard: i32,
        since: Option<CqlTimestamp>,
    ) -> ServiceResult<(i32, i32, Vec<(CqlTimestamp, String, String, i64)>)> {
        // Paged: a busy minute's shard can hold many hints (and their tombstones).
        let session = &self.cluster.session;
        let rows = match since {
            None => {
                self.statements
                    .hints
                    .all_pages(session, (bucket_minute, shard), 1_000)
                    .await?
            }
            Some(since) => {
                self.statements
                    .hints_since
                    .all_pages(session, (bucket_minute, shard, since), 1_000)
                    .await?
            }
        };
        Ok((bucket_minute, shard, rows))
    }

    /// A hinted partition's progress and its outbox rows past it.
    async fn fetch<'a>(
        &self,
        source: &dyn OutboxPartitions,
        tenant: &'a String,
        member: &'a String,
        hints: &'a [Hint],
    ) -> ServiceResult<Fetched<'a>> {
        let relayed = self.progress(tenant, member).await?;
        let rows = source
            .outbox_rows(tenant, member, relayed, OUTBOX_READ)
            .await?;
        Ok((tenant, member, hints, relayed, rows))
    }

    async fn record_one(
        &self,
        source: &dyn OutboxPartitions,
        done: Relayed<'_>,
        now: i64,
    ) -> ServiceResult<()> {
        let session = &self.cluster.session;
        let (tenant, member) = (done.tenant.clone(), done.member.clone());
        if done.upto > done.relayed {
            self.set_progress(&tenant, &member, done.upto, done.last_seq)
                .await?;
            source.forget_outbox(&tenant, &member, done.upto).await?;
        }
        for hint in done.hints {
            if forgettable(hint, done.upto, done.complete, now) {
                self.statements
                    .forget_hint
                    .run(
                        session,
                        (
                            hint.bucket_minute,
                            hint.shard,
                            hint.at,
                            tenant.clone(),
                            member.clone(),
                            signed(hint.position, "hint position")?,
                        ),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Records a partition's progress, written at the change number of its last event: of
    /// two relays recording one partition, the one further along wins whatever their clocks.
    async fn set_progress(
        &self,
        tenant: &str,
        member: &str,
        position: u64,
        seq: u64,
    ) -> ServiceResult<()> {
        self.statements
            .set_progress
            .run(
                &self.cluster.session,
                (
                    tenant.to_string(),
                    member.to_string(),
                    signed(position, "outbox position")?,
                    signed(seq, "change number")?,
                ),
            )
            .await
    }

    async fn progress(&self, tenant: &str, member: &str) -> ServiceResult<u64> {
        match self
            .statements
            .progress
            .first(
                &self.cluster.session,
                (tenant.to_string(), member.to_string()),
            )
            .await?
        {
            Some((relayed,)) => unsigned(relayed, "progress"),
            None => Ok(0),
        }
    }

    /// Brings one partition's progress up to `position` (the log's `seq`), unless it is there.
    async fn catch_up(
        &self,
        tenant: &str,
        member: &str,
        position: u64,
        seq: u64,
    ) -> ServiceResult<()> {
        if self.progress(tenant, member).await? < position {
            self.set_progress(tenant, member, position, seq).await?;
        }
        Ok(())
    }

    /// Brings every partition's progress up to what the log holds after the checkpoint (a
    /// pass may have appended and crashed before recording it); the log's newest number.
    async fn recover(&self) -> ServiceResult<u64> {
        let mut seq = self.position(CHECKPOINT).await?;
        loop {
            let changes = self.read_log(seq, BUCKET_SIZE as usize).await?;
            let Some(last) = changes.last() else {
                break;
            };
            seq = last.seq;
            let mut newest: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
            for change in &changes {
                newest.insert(
                    (&change.tenant, &change.member),
                    (change.position, change.seq),
                );
            }
            let updates: Vec<_> = newest
                .into_iter()
                .map(|((tenant, member), (position, seq))| {
                    self.catch_up(tenant, member, position, seq)
                })
                .collect();
            stream::iter(updates)
                .buffer_unordered(CONCURRENCY)
                .try_collect::<()>()
                .await?;
        }
        self.save_position(CHECKPOINT, seq).await?;
        Ok(seq)
    }
}

/// A partition with its hints, its progress and its outbox rows past it.
type Fetched<'a> = (&'a String, &'a String, &'a [Hint], u64, Vec<(u64, Vec<u8>)>);

/// A partition handed on up to `upto` (from `relayed`), with the hints that named it.
struct Relayed<'a> {
    tenant: &'a String,
    member: &'a String,
    relayed: u64,
    upto: u64,
    /// The change number of its last event appended (its progress row's write time, so
    /// that a later record always wins over an earlier one).
    last_seq: u64,
    /// Whether every outbox row it had was read (fewer than [`OUTBOX_READ`]).
    complete: bool,
    hints: &'a [Hint],
}

/// The rows that follow `after` without a gap, as changes; whether a gap cut them short.
fn contiguous(
    after: u64,
    rows: Vec<(i64, String, String, i64, Vec<u8>)>,
) -> ServiceResult<(Vec<LoggedChange>, bool)> {
    let mut out = Vec::with_capacity(rows.len());
    for (expected, (seq, tenant, member, position, body)) in (after + 1..).zip(rows) {
        if unsigned(seq, "change number")? != expected {
            return Ok((out, true));
        }
        out.push(LoggedChange {
            seq: expected,
            tenant,
            member,
            position: unsigned(position, "outbox position")?,
            body,
        });
    }
    Ok((out, false))
}

/// Whether a hint is done with: its commit is handed on (up to `upto`), or it is older than
/// the grace and its partition was read whole (its commit never applied).
fn forgettable(hint: &Hint, upto: u64, complete: bool, now: i64) -> bool {
    hint.position <= upto || (complete && now - hint.at.0 > HINT_GRACE_MS)
}

/// Events waiting to be appended: one conditional batch on one bucket of the log.
#[derive(Default)]
struct Appending {
    batch: BatchWrite,
}

impl Appending {
    fn push(
        &mut self,
        statements: &RelayStatements,
        seq: u64,
        tenant: &str,
        member: &str,
        position: u64,
        body: Vec<u8>,
    ) -> ServiceResult<()> {
        self.batch.push(
            &statements.append,
            (
                bucket(seq),
                signed(seq, "change number")?,
                tenant.to_string(),
                member.to_string(),
                signed(position, "outbox position")?,
                body,
            ),
        );
        Ok(())
    }

    fn full(&self) -> bool {
        self.batch.len() >= APPEND_BATCH
    }

    /// Appends what is waiting; false if another relay took one of its numbers first.
    /// Decided by a majority of every region's replicas (SERIAL): two regions cut apart
    /// can never both give out one number.
    async fn flush(&mut self, cluster: &Cluster) -> ServiceResult<bool> {
        std::mem::take(&mut self.batch)
            .apply(&cluster.session, Some(&cluster.relay_writes))
            .await
    }
}

#[cfg(test)]
mod tests;
