//! Tenant-wide pages and segment memberships: each spread over 16 bucket partitions (so no
//! partition grows with the tenant), read bucket by bucket and merged in member order.

use super::{ScyllaMemberStore, rows};
use crate::facts::MemberFacts;
use crate::profile::StoredProfile;
use crate::store::Versioned;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::BatchWrite;
use std::collections::HashMap;

/// Candidates read per round of a tenant page, at most.
const ROUND: usize = 500;
/// Partitions per `IN` read of member statics (more would load one coordinator).
const STATICS_PER_READ: usize = 100;
/// Rows per batch when adding segment members (all in one bucket partition).
const SEGMENT_BATCH: usize = 100;

/// The `want` smallest of sorted lists (each already its bucket's `want` smallest above the
/// cursor), in order: what a page across the buckets holds.
pub(super) fn merge_buckets(lists: Vec<Vec<String>>, want: usize) -> Vec<String> {
    let mut all: Vec<String> = lists.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    all.truncate(want);
    all
}

/// Segment batches in flight at once (a refresh adds tens of thousands of members).
const SEGMENT_BATCHES_AT_ONCE: usize = 16;

/// A finished task's result, a panicked or cancelled one as an error.
fn joined(
    result: Option<Result<ServiceResult<()>, tokio::task::JoinError>>,
) -> Option<ServiceResult<()>> {
    result.map(|r| r.map_err(ServiceError::internal).and_then(|r| r))
}

fn limit_of(want: usize) -> i32 {
    i32::try_from(want).unwrap_or(i32::MAX)
}

type Pick<T> = fn(&str, Option<StoredProfile>, Option<Versioned<MemberFacts>>) -> Option<T>;

impl ScyllaMemberStore {
    /// Up to `want` member ids of the tenant after `after`, in member order.
    async fn tenant_members(
        &self,
        tenant: &str,
        after: &str,
        want: usize,
    ) -> ServiceResult<Vec<String>> {
        let mut lists = Vec::with_capacity(rows::BUCKETS as usize);
        for bucket in 0..rows::BUCKETS {
            let rows = self
                .statements
                .tenant_bucket
                .rows(
                    self.session(),
                    (
                        tenant.to_string(),
                        bucket,
                        after.to_string(),
                        limit_of(want),
                    ),
                )
                .await?;
            lists.push(rows.into_iter().map(|(m,)| m).collect());
        }
        Ok(merge_buckets(lists, want))
    }

    /// Up to `limit` of what `pick` takes from each member's statics, in member order after
    /// `after`. A member listed in `members_by_tenant` without what `pick` wants (a listing
    /// written before a batch that did not apply, or a member with facts only) is skipped.
    pub(super) async fn tenant_page<T>(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
        pick: Pick<T>,
    ) -> ServiceResult<Vec<T>> {
        let mut out = Vec::new();
        // Member ids are never empty, so "" is below every one of them.
        let mut cursor = after.unwrap_or("").to_string();
        while out.len() < limit {
            let want = (limit - out.len()).min(ROUND);
            let candidates = self.tenant_members(tenant, &cursor, want).await?;
            let Some(last) = candidates.last().cloned() else {
                break;
            };
            let mut found = HashMap::new();
            for chunk in candidates.chunks(STATICS_PER_READ) {
                let rows = self
                    .statements
                    .statics_of
                    .rows(self.session(), (tenant.to_string(), chunk.to_vec()))
                    .await?;
                for row in rows {
                    let (member, profile, facts) = rows::keyed_member_of(row)?;
                    found.insert(member, (profile, facts));
                }
            }
            for member in &candidates {
                if let Some((profile, facts)) = found.remove(member)
                    && let Some(value) = pick(member, profile, facts)
                {
                    out.push(value);
                }
            }
            cursor = last;
        }
        out.truncate(limit);
        Ok(out)
    }

    pub(super) async fn add_to_segment(
        &self,
        tenant: &str,
        segment: &str,
        generation: u64,
        members: Vec<String>,
    ) -> ServiceResult<()> {
        let generation = rows::generation(generation)?;
        let mut by_bucket: HashMap<i32, Vec<String>> = HashMap::new();
        for member in members {
            by_bucket
                .entry(rows::bucket(&member))
                .or_default()
                .push(member);
        }
        let mut tasks = tokio::task::JoinSet::new();
        let mut first_error = None;
        for (bucket, members) in by_bucket {
            for chunk in members.chunks(SEGMENT_BATCH) {
                // One partition per batch: applied as one mutation, no batch log needed.
                let mut batch = BatchWrite::default();
                for member in chunk {
                    batch.push(
                        &self.statements.add_segment_member,
                        (
                            tenant.to_string(),
                            segment.to_string(),
                            generation,
                            bucket,
                            member.clone(),
                        ),
                    );
                }
                if tasks.len() >= SEGMENT_BATCHES_AT_ONCE
                    && let Some(Err(e)) = joined(tasks.join_next().await)
                {
                    first_error.get_or_insert(e);
                }
                let store = self.clone();
                tasks.spawn(async move { batch.apply(store.session(), None).await.map(|_| ()) });
            }
        }
        while let Some(result) = joined(tasks.join_next().await) {
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(super) async fn segment_page(
        &self,
        tenant: &str,
        segment: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let generation = rows::generation(generation)?;
        let mut lists = Vec::with_capacity(rows::BUCKETS as usize);
        for bucket in 0..rows::BUCKETS {
            let rows = self
                .statements
                .segment_bucket
                .rows(
                    self.session(),
                    (
                        tenant.to_string(),
                        segment.to_string(),
                        generation,
                        bucket,
                        after.unwrap_or("").to_string(),
                        limit_of(limit),
                    ),
                )
                .await?;
            lists.push(rows.into_iter().map(|(m,)| m).collect());
        }
        Ok(merge_buckets(lists, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_merge_in_member_order() {
        let lists = vec![
            vec!["b".to_string(), "e".to_string()],
            vec![],
            vec!["a".to_string(), "c".to_string(), "f".to_string()],
        ];
        assert_eq!(merge_buckets(lists.clone(), 4), ["a", "b", "c", "e"]);
        assert_eq!(merge_buckets(lists, 10), ["a", "b", "c", "e", "f"]);
    }
}
