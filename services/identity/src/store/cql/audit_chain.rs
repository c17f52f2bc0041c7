//! The audit chains' layout in buckets, and the logic on it, apart from the driver so a test
//! can run it on a model of the buckets. One hash chain per tenant (`*` for the platform).
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

use super::rows::cql_seq;
use crate::audit::{AuditRecord, ChainHead};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;

/// What the chain logic reads of the buckets: ScyllaDB in the store, a model in the tests.
#[async_trait]
pub trait Buckets: Send + Sync {
    /// Records per bucket, by sequence number.
    fn bucket_size(&self) -> u64;

    /// The newest bucket of `tenant`'s chain as last written down (0 when never): a hint.
    async fn newest_bucket_hint(&self, tenant: &str) -> ServiceResult<i64>;

    /// A bucket's static head: none when nothing was appended to it.
    async fn bucket_head(&self, tenant: &str, bucket: i64) -> ServiceResult<Option<ChainHead>>;

    /// Up to `limit` records of a bucket from sequence `from`, oldest first.
    async fn bucket_records(
        &self,
        tenant: &str,
        bucket: i64,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>>;
}

/// The bucket an append after the head `after` (0 for none) goes into.
pub fn bucket_after(bucket_size: u64, after: u64) -> ServiceResult<i64> {
    cql_seq(after / bucket_size.max(1))
}

/// The condition an append's batch is written under, on its bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The bucket is new: `IF head_seq = null`.
    StartsBucket,
    /// `IF head_seq = ? AND head_hash = ?` on the bucket's static head.
    HeadIs(ChainHead),
}

/// Where an append goes, and on what condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPlan {
    pub bucket: i64,
    pub condition: Condition,
}

/// The chain's head: from the hinted bucket, on through the bucket each head's successor
/// would go to, until that is the bucket itself or was never written.
pub async fn head(buckets: &impl Buckets, tenant: &str) -> ServiceResult<Option<ChainHead>> {
    let size = buckets.bucket_size();
    let hint = buckets.newest_bucket_hint(tenant).await?.max(0);
    let (mut bucket, mut head) = match buckets.bucket_head(tenant, hint).await? {
        Some(head) => (hint, head),
        // A hint names a bucket an append applied in; if that bucket is not there, the hint
        // is not to be trusted: start from the first bucket.
        None if hint > 0 => match buckets.bucket_head(tenant, 0).await? {
            Some(head) => (0, head),
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    loop {
        let next = bucket_after(size, head.seq)?;
        if next <= bucket {
            return Ok(Some(head));
        }
        match buckets.bucket_head(tenant, next).await? {
            Some(newer) => (bucket, head) = (next, newer),
            None => return Ok(Some(head)),
        }
    }
}

/// Where an append of `records` after `expected` goes and on what condition; none when it
/// is known already that it cannot apply (the chain's head is not the expected one).
pub async fn plan_append(
    buckets: &impl Buckets,
    tenant: &str,
    expected: Option<&ChainHead>,
    records: &[AuditRecord],
) -> ServiceResult<Option<AppendPlan>> {
    let after = expected.map_or(0, |head| head.seq);
    check_continues(tenant, after, records)?;
    let bucket = bucket_after(buckets.bucket_size(), after)?;
    let condition = match expected {
        None => Condition::StartsBucket,
        Some(expected) => {
            if buckets.bucket_head(tenant, bucket).await?.is_some() {
                Condition::HeadIs(expected.clone())
            } else if head(buckets, tenant).await?.as_ref() == Some(expected) {
                Condition::StartsBucket
            } else {
                return Ok(None);
            }
        }
    };
    Ok(Some(AppendPlan { bucket, condition }))
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

/// Up to `limit` records of `tenant` from sequence `from`, oldest first.
pub async fn records(
    buckets: &impl Buckets,
    tenant: &str,
    from: u64,
    limit: usize,
) -> ServiceResult<Vec<AuditRecord>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let size = buckets.bucket_size();
    let from = from.max(1);
    let home = bucket_after(size, from - 1)?;
    let in_home = buckets.bucket_records(tenant, home, from, limit).await?;
    let (mut bucket, mut out) = if in_home.first().is_some_and(|r| r.seq == from) {
        (home, in_home)
    } else {
        match earlier_bucket_holding(buckets, tenant, from, home).await? {
            Some(earlier) => (
                earlier,
                buckets.bucket_records(tenant, earlier, from, limit).await?,
            ),
            None => (home, in_home),
        }
    };
    // A bucket ends at its head; the chain goes on in the bucket an append from that head
    // went to. Appends may land while this reads: each step goes on from the last record
    // returned, so none is skipped.
    while out.len() < limit {
        let Some(head) = buckets.bucket_head(tenant, bucket).await? else {
            break;
        };
        let last = out.last().map_or(from - 1, |r| r.seq);
        if head.seq > last {
            // Appended to this bucket since it was read.
            let more = buckets
                .bucket_records(tenant, bucket, last + 1, limit - out.len())
                .await?;
            if more.is_empty() {
                break;
            }
            out.extend(more);
            continue;
        }
        let next = bucket_after(size, head.seq)?;
        if next <= bucket {
            break;
        }
        bucket = next;
        out.extend(
            buckets
                .bucket_records(tenant, bucket, last + 1, limit - out.len())
                .await?,
        );
    }
    Ok(out)
}

/// The bucket before `home` holding record `from`, when an append that started in an
/// earlier bucket ran past its range to it; none when `from` is past the chain's head.
async fn earlier_bucket_holding(
    buckets: &impl Buckets,
    tenant: &str,
    from: u64,
    home: i64,
) -> ServiceResult<Option<i64>> {
    // Past the head first: then the walk back below only crosses buckets an append ran over
    // entirely (none while appends are smaller than a bucket).
    match head(buckets, tenant).await? {
        Some(head) if head.seq >= from => {}
        _ => return Ok(None),
    }
    let mut bucket = home;
    while bucket > 0 {
        bucket -= 1;
        if let Some(head) = buckets.bucket_head(tenant, bucket).await? {
            // The newest written bucket before `home`: its last append reaches `from`, or
            // nothing before `home` does.
            return Ok((head.seq >= from).then_some(bucket));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
