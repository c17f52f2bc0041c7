//! One pass of the relay: the hinted partitions' new outbox rows, appended to the change log
//! in order, each partition's progress recorded.

use super::*;

impl Relay {
    /// One pass: recover if needed, then hand on every hinted partition's new outbox rows.
    pub(super) async fn pass(&self, source: &dyn OutboxPartitions) -> ServiceResult<usize> {
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
    pub(super) async fn record(
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
    pub(super) async fn hints_in(
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
    pub(super) async fn fetch<'a>(
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
}
