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

mod statements;

use crate::session::Cluster;
use crate::statements::BatchWrite;
use async_trait::async_trait;
use loyalty_common::error::{ServiceError, ServiceResult};
use scylla::value::CqlTimestamp;
use statements::RelayStatements;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Numbers per partition of the change log.
pub const BUCKET_SIZE: u64 = 4096;
/// Hint partitions per minute, so a busy minute is not one hot partition.
pub const HINT_SHARDS: i32 = 16;
/// A hint whose commit is not in its partition after this long was for a commit that did
/// not apply (its conditional batch lost, or failed); it is dropped.
pub const HINT_GRACE_MS: i64 = 60_000;
/// How far behind the newest minute the relay keeps reading hint buckets: a writer whose
/// clock lags by less than this still has its hints read.
const CLOCK_SLACK_MINUTES: i32 = 2;
/// Events per conditional batch on the change log.
const APPEND_BATCH: usize = 100;
const LEASE_TTL_SECONDS: i32 = 5;
/// The least time between two passes: the publisher asks for changes every 50 ms, and a
/// pass reads every hint partition of the last minutes (16 shards each).
const PASS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
const CHECKPOINT: &str = "relay:checkpoint";
const LOW_MINUTE: &str = "relay:low_minute";

/// What a relay reads: the outbox rows commits wrote into their own partitions.
#[async_trait]
pub trait OutboxPartitions: Send + Sync + 'static {
    /// The partition's outbox rows with a position above `after`, oldest first:
    /// (position, body).
    async fn outbox_rows(
        &self,
        tenant: &str,
        member: &str,
        after: u64,
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

impl Relay {
    /// Prepares the relay's statements for `keyspace` and marks where its hints start (now,
    /// unless a relay ran here before): every hint written after this is read.
    pub async fn prepare(
        cluster: Arc<Cluster>,
        keyspace: &str,
        service: &'static str,
    ) -> ServiceResult<Arc<Self>> {
        let statements = RelayStatements::prepare(&cluster.session, keyspace).await?;
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
                    position as i64,
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
            let due = last.is_none_or(|at| at.elapsed() >= PASS_INTERVAL);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due && self.lease().await? {
            self.pass(source).await?;
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
            .run(&self.cluster.session, (reader.to_string(), seq as i64))
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
                    (bucket(after + 1), after as i64, want),
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
        *head = Some(next);
        let session = &self.cluster.session;
        let now = now_ms();
        let low = self.mark(LOW_MINUTE).await?.unwrap_or(0) as i32;
        let newest = minute(now) + 1;
        let mut pending: BTreeMap<(String, String), Vec<Hint>> = BTreeMap::new();
        for bucket_minute in low..=newest {
            for shard in 0..HINT_SHARDS {
                let rows = self
                    .statements
                    .hints
                    .rows(session, (bucket_minute, shard))
                    .await?;
                for (at, tenant, member, position) in rows {
                    pending.entry((tenant, member)).or_default().push(Hint {
                        bucket_minute,
                        shard,
                        at,
                        position: unsigned(position, "hint position")?,
                    });
                }
            }
        }
        let mut appended = 0;
        let mut batch = Appending::default();
        // Partitions whose events are all in `batch`: recorded once it is appended.
        let mut waiting: Vec<Relayed> = Vec::new();
        for ((tenant, member), hints) in &pending {
            let relayed = self.progress(tenant, member).await?;
            let rows = source.outbox_rows(tenant, member, relayed).await?;
            let mut upto = relayed;
            for (position, body) in rows {
                next += 1;
                batch.push(&self.statements, next, tenant, member, position, body);
                upto = position;
                appended += 1;
                // A batch is one bucket of the log: it ends at a bucket's last number.
                if batch.full() || (next + 1).is_multiple_of(BUCKET_SIZE) {
                    if !batch.flush(&self.cluster).await? {
                        *head = None;
                        return Ok(0);
                    }
                    *head = Some(next);
                    self.record(source, std::mem::take(&mut waiting), now)
                        .await?;
                }
            }
            waiting.push(Relayed {
                tenant,
                member,
                relayed,
                upto,
                hints,
            });
        }
        if !batch.flush(&self.cluster).await? {
            *head = None;
            return Ok(0);
        }
        *head = Some(next);
        self.record(source, waiting, now).await?;
        self.save_position(CHECKPOINT, next).await?;
        // Buckets before the slack hold nothing but hints still waiting for their commit.
        let waiting = pending
            .values()
            .flatten()
            .filter(|h| now - h.at.0 <= HINT_GRACE_MS)
            .map(|h| h.bucket_minute)
            .min();
        let new_low = waiting
            .unwrap_or(i32::MAX)
            .min(minute(now) - CLOCK_SLACK_MINUTES)
            .max(low);
        if new_low > low {
            self.save_position(LOW_MINUTE, new_low as u64).await?;
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
        let session = &self.cluster.session;
        for done in partitions {
            let (tenant, member) = (done.tenant.clone(), done.member.clone());
            if done.upto > done.relayed {
                self.statements
                    .set_progress
                    .run(session, (tenant.clone(), member.clone(), done.upto as i64))
                    .await?;
                source.forget_outbox(&tenant, &member, done.upto).await?;
            }
            for hint in done.hints {
                if hint.position <= done.upto || now - hint.at.0 > HINT_GRACE_MS {
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
                                hint.position as i64,
                            ),
                        )
                        .await?;
                }
            }
        }
        Ok(())
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
            let mut newest: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for change in &changes {
                newest.insert((&change.tenant, &change.member), change.position);
            }
            for ((tenant, member), position) in newest {
                if self.progress(tenant, member).await? < position {
                    self.statements
                        .set_progress
                        .run(
                            &self.cluster.session,
                            (tenant.to_string(), member.to_string(), position as i64),
                        )
                        .await?;
                }
            }
        }
        self.save_position(CHECKPOINT, seq).await?;
        Ok(seq)
    }
}

/// A partition handed on up to `upto` (from `relayed`), with the hints that named it.
struct Relayed<'a> {
    tenant: &'a String,
    member: &'a String,
    relayed: u64,
    upto: u64,
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

struct Hint {
    bucket_minute: i32,
    shard: i32,
    at: CqlTimestamp,
    position: u64,
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
    ) {
        self.batch.push(
            &statements.append,
            (
                bucket(seq),
                seq as i64,
                tenant.to_string(),
                member.to_string(),
                position as i64,
                body,
            ),
        );
    }

    fn full(&self) -> bool {
        self.batch.len() >= APPEND_BATCH
    }

    /// Appends what is waiting; false if another relay took one of its numbers first.
    async fn flush(&mut self, cluster: &Cluster) -> ServiceResult<bool> {
        std::mem::take(&mut self.batch)
            .apply(&cluster.session, None)
            .await
    }
}

#[cfg(test)]
mod tests;
