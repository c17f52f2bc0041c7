//! The audit log: one hash chain per tenant (`*` for the platform), in buckets.
//!
//! **Layout.** A bucket is a partition `(tenant, bucket)` holding records by sequence number,
//! with a static head (`head_seq`, `head_hash`): the last record of the last append into it.
//! An append goes *whole* into one bucket, the one its first record's sequence number falls
//! in: records `e+1 ..= e+n` after the head `e` go to bucket `e / size`. So the bucket of an
//! append depends only on the head it continues, and a bucket may run past its range when an
//! append crosses the boundary (the next append, from a head past the range, starts the
//! bucket that head falls in; a bucket an append ran over entirely stays empty).
//!
//! **Why whole appends, not one batch per bucket.** An append is then one conditional batch on
//! one partition: the records and the new static head together, all or nothing, as the port
//! asks. Split into a batch per bucket, a crash or a competing writer between the two batches
//! would leave half an append stored under an answer of "conflict" (the caller then chains
//! the same events again) or of an error. The price is buckets of uneven size (at most one
//! append past `size` records) and readers that may look one bucket back.
//!
//! **Conditions.** Every writer continuing the head `e` picks the same bucket `e / size`, so
//! they meet on one partition, where the condition decides:
//! - the bucket exists: `IF head_seq = e AND head_hash = h`. It holds the chain's head
//!   whenever `e` is the head (the last append ending at `e` went there), so this is exactly
//!   "the chain's head is the expected one".
//! - the bucket does not exist yet: the append starts it, `IF head_seq = null`. That cannot
//!   see the head (in an earlier bucket), so the head is read first and must be the expected
//!   one. It cannot move before the batch lands: the next append after it goes to this very
//!   bucket, and meets this condition. A new chain (no expected head) starts bucket 0 alike.
//!
//! `audit_heads` holds a tenant's newest bucket as a hint, written after an append started a
//! bucket; a reader follows the buckets on from it (bucket `head_seq / size` after each), so a
//! stale or lost hint costs reads, never correctness. `audit_tenants` lists every chain,
//! written before its first append.

use super::rows::{ALL, cql_seq, head_binds, head_from_row, record_from_row, record_row};
use super::{PAGE_SIZE, ScyllaIdentityStore, applied};
use crate::statements::BatchWrite;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_identity::audit::{AuditRecord, ChainHead};
use loyalty_identity::store::{Applied, AuditRepository};

impl ScyllaIdentityStore {
    /// The bucket an append after the head `after` (0 for none) goes into.
    fn audit_bucket(&self, after: u64) -> ServiceResult<i64> {
        cql_seq(after / self.inner.audit_bucket_size)
    }

    /// The static head of a bucket: none when nothing was appended to it.
    async fn bucket_head(&self, tenant: &str, bucket: i64) -> ServiceResult<Option<ChainHead>> {
        match self
            .statements()
            .audit_bucket_head
            .first(self.session(), (tenant.to_string(), bucket))
            .await?
        {
            Some(row) => head_from_row(row),
            None => Ok(None),
        }
    }

    /// Up to `limit` records of a bucket from sequence `from`, oldest first.
    async fn bucket_records(
        &self,
        tenant: &str,
        bucket: i64,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        self.statements()
            .audit_records
            .rows(
                self.session(),
                (tenant.to_string(), bucket, cql_seq(from)?, limit),
            )
            .await?
            .into_iter()
            .map(|row| record_from_row(tenant, row))
            .collect()
    }

    /// The bucket before `home` holding record `from`, when an append that started in an
    /// earlier bucket ran past its range to it; none when `from` is past the chain's head.
    async fn earlier_bucket_holding(
        &self,
        tenant: &str,
        from: u64,
        home: i64,
    ) -> ServiceResult<Option<i64>> {
        // Past the head first: then the walk back below only crosses buckets an append ran
        // over entirely (none while appends are smaller than a bucket).
        match self.head(tenant).await? {
            Some(head) if head.seq >= from => {}
            _ => return Ok(None),
        }
        let mut bucket = home;
        while bucket > 0 {
            bucket -= 1;
            if let Some(head) = self.bucket_head(tenant, bucket).await? {
                // The newest non-empty bucket before `home`: its last append reaches `from`
                // or nothing before `home` does.
                return Ok((head.seq >= from).then_some(bucket));
            }
        }
        Ok(None)
    }
}

/// The records of an append must continue the expected head, one sequence number each, in
/// the tenant's chain: the buckets are laid out by those numbers.
fn check_continues(tenant: &str, after: u64, records: &[AuditRecord]) -> ServiceResult<()> {
    for (offset, record) in (1u64..).zip(records) {
        if record.tenant != tenant || Some(record.seq) != after.checked_add(offset) {
            return Err(ServiceError::internal(format!(
                "audit record {} of {} does not continue the chain of {tenant} at {after}",
                record.seq, record.tenant
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl AuditRepository for ScyllaIdentityStore {
    async fn head(&self, tenant: &str) -> ServiceResult<Option<ChainHead>> {
        let hint = self
            .statements()
            .audit_head_hint
            .first(self.session(), (tenant.to_string(),))
            .await?
            .map_or(0, |(bucket,)| bucket.max(0));
        let (mut bucket, mut head) = match self.bucket_head(tenant, hint).await? {
            Some(head) => (hint, head),
            // A hint names a bucket an append applied in; if that bucket is not there, the
            // hint is not to be trusted: start from the first bucket.
            None if hint > 0 => match self.bucket_head(tenant, 0).await? {
                Some(head) => (0, head),
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        loop {
            // An append after this head would go to `next`: if that is this bucket, its head
            // is the chain's; otherwise the chain goes on there, if anything was appended.
            let next = self.audit_bucket(head.seq)?;
            if next <= bucket {
                return Ok(Some(head));
            }
            match self.bucket_head(tenant, next).await? {
                Some(newer) => (bucket, head) = (next, newer),
                None => return Ok(Some(head)),
            }
        }
    }

    async fn append(
        &self,
        tenant: &str,
        expected: Option<&ChainHead>,
        records: &[AuditRecord],
    ) -> ServiceResult<Applied> {
        let Some(last) = records.last() else {
            return Ok(Applied::Yes);
        };
        let after = expected.map_or(0, |head| head.seq);
        check_continues(tenant, after, records)?;
        let st = self.statements();
        let bucket = self.audit_bucket(after)?;
        // The condition: on the head in this bucket, or that the bucket is new (None).
        let condition = match expected {
            None => {
                // Listed before the chain's first write, so no chain is ever missing from
                // the list (a listed tenant whose first append lost has a chain anyway).
                st.list_audited_tenant
                    .run(self.session(), (ALL.to_string(), tenant.to_string()))
                    .await?;
                None
            }
            Some(expected) => {
                if self.bucket_head(tenant, bucket).await?.is_some() {
                    Some(head_binds(expected)?)
                } else if self.head(tenant).await?.as_ref() == Some(expected) {
                    None
                } else {
                    return Ok(Applied::Conflict);
                }
            }
        };
        let starts_bucket = condition.is_none();
        let (head_seq, head_hash) = head_binds(&last.head())?;
        let mut batch = BatchWrite::default();
        match condition {
            None => batch.push(
                &st.start_audit_bucket,
                (head_seq, head_hash, tenant.to_string(), bucket),
            ),
            Some((seq, hash)) => batch.push(
                &st.continue_audit_bucket,
                (head_seq, head_hash, tenant.to_string(), bucket, seq, hash),
            ),
        }
        for record in records {
            let (seq, bytes) = record_row(record)?;
            batch.push(&st.audit_record, (tenant.to_string(), bucket, seq, bytes));
        }
        let yes = batch.apply(self.session(), None).await?;
        if yes && starts_bucket && bucket > 0 {
            // Only a hint: the append stands whether or not it is written.
            if let Err(e) = st
                .set_audit_head_hint
                .run(self.session(), (tenant.to_string(), bucket))
                .await
            {
                tracing::warn!(tenant, bucket, error = %e, "writing the audit head hint failed");
            }
        }
        Ok(applied(yes))
    }

    async fn records(
        &self,
        tenant: &str,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = from.max(1);
        let home = self.audit_bucket(from - 1)?;
        let in_home = self.bucket_records(tenant, home, from, limit).await?;
        let (mut bucket, mut out) = if in_home.first().is_some_and(|r| r.seq == from) {
            (home, in_home)
        } else {
            match self.earlier_bucket_holding(tenant, from, home).await? {
                Some(earlier) => (
                    earlier,
                    self.bucket_records(tenant, earlier, from, limit).await?,
                ),
                None => (home, in_home),
            }
        };
        // A bucket ends at its head; the chain goes on in the bucket an append from that head
        // went to.
        while out.len() < limit {
            let Some(head) = self.bucket_head(tenant, bucket).await? else {
                break;
            };
            let next = self.audit_bucket(head.seq)?;
            if next <= bucket {
                break;
            }
            bucket = next;
            let next_from = from.max(head.seq + 1);
            out.extend(
                self.bucket_records(tenant, bucket, next_from, limit - out.len())
                    .await?,
            );
        }
        Ok(out)
    }

    async fn audited_tenants(&self) -> ServiceResult<Vec<String>> {
        Ok(self
            .statements()
            .audited_tenants
            .all_pages(self.session(), (ALL.to_string(),), PAGE_SIZE)
            .await?
            .into_iter()
            .map(|(tenant,)| tenant)
            .collect())
    }

    /// Nothing to do: a write ScyllaDB acknowledged is in the commit log of a quorum of
    /// replicas (LOCAL_QUORUM, and the Paxos commit of a conditional batch likewise), which
    /// survives their processes ending and is replayed on restart. The embedded store needs
    /// this because it writes to the operating system only; here each append is as durable
    /// as the cluster's commit log settings make any write (`commitlog_sync`), and a client
    /// cannot ask for more.
    async fn sync(&self) -> ServiceResult<()> {
        Ok(())
    }
}
