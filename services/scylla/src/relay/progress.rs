//! The relay's progress: per partition, and the log's own, caught up and recovered after a
//! relay stopped mid-pass; and the bookkeeping of a pass's appends.

use super::*;

impl Relay {
    pub(super) async fn record_one(
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
    pub(super) async fn set_progress(
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

    pub(super) async fn progress(&self, tenant: &str, member: &str) -> ServiceResult<u64> {
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
    pub(super) async fn catch_up(
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
    pub(super) async fn recover(&self) -> ServiceResult<u64> {
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

/// A partition handed on up to `upto` (from `relayed`), with the hints that named it.
pub(super) struct Relayed<'a> {
    pub(super) tenant: &'a String,
    pub(super) member: &'a String,
    pub(super) relayed: u64,
    pub(super) upto: u64,
    /// The change number of its last event appended (its progress row's write time, so
    /// that a later record always wins over an earlier one).
    pub(super) last_seq: u64,
    /// Whether every outbox row it had was read (fewer than [`OUTBOX_READ`]).
    pub(super) complete: bool,
    pub(super) hints: &'a [Hint],
}

/// The rows that follow `after` without a gap, as changes; whether a gap cut them short.
pub(super) fn contiguous(
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
pub(super) fn forgettable(hint: &Hint, upto: u64, complete: bool, now: i64) -> bool {
    hint.position <= upto || (complete && now - hint.at.0 > HINT_GRACE_MS)
}

/// Events waiting to be appended: one conditional batch on one bucket of the log.
#[derive(Default)]
pub(super) struct Appending {
    batch: BatchWrite,
}

impl Appending {
    pub(super) fn push(
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

    pub(super) fn full(&self) -> bool {
        self.batch.len() >= APPEND_BATCH
    }

    /// Appends what is waiting; false if another relay took one of its numbers first.
    /// Decided by a majority of every region's replicas (SERIAL): two regions cut apart
    /// can never both give out one number.
    pub(super) async fn flush(&mut self, cluster: &Cluster) -> ServiceResult<bool> {
        std::mem::take(&mut self.batch)
            .apply(&cluster.session, Some(&cluster.relay_writes))
            .await
    }
}
