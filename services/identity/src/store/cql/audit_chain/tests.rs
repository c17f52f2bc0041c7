//! The chain logic on a model of the buckets that applies a plan as ScyllaDB applies the
//! conditional batch: only when the bucket's static head is what the condition says.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use super::*;
use crate::audit::{AuditEvent, Outcome, verify};
use crate::store::Applied;
use loyalty_common::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct Bucket {
    head: Option<ChainHead>,
    records: BTreeMap<u64, AuditRecord>,
}

/// The audit tables of one tenant set, in memory.
struct Model {
    size: u64,
    buckets: Mutex<HashMap<(String, i64), Bucket>>,
    hints: Mutex<HashMap<String, i64>>,
}

impl Model {
    fn new(size: u64) -> Self {
        Self {
            size,
            buckets: Mutex::default(),
            hints: Mutex::default(),
        }
    }

    /// Plans, then applies as the conditional batch would.
    async fn append(
        &self,
        tenant: &str,
        expected: Option<&ChainHead>,
        records: &[AuditRecord],
    ) -> Applied {
        let Some(plan) = plan_append(self, tenant, expected, records).await.unwrap() else {
            return Applied::Conflict;
        };
        self.apply(tenant, &plan, records)
    }

    fn apply(&self, tenant: &str, plan: &AppendPlan, records: &[AuditRecord]) -> Applied {
        let mut buckets = self.buckets.lock().unwrap();
        let bucket = buckets
            .entry((tenant.to_string(), plan.bucket))
            .or_default();
        let holds = match &plan.condition {
            Condition::StartsBucket => bucket.head.is_none(),
            Condition::HeadIs(head) => bucket.head.as_ref() == Some(head),
        };
        if !holds {
            return Applied::Conflict;
        }
        for record in records {
            bucket.records.insert(record.seq, record.clone());
        }
        bucket.head = records.last().map(AuditRecord::head);
        if plan.condition == Condition::StartsBucket && plan.bucket > 0 {
            self.hints
                .lock()
                .unwrap()
                .insert(tenant.to_string(), plan.bucket);
        }
        Applied::Yes
    }

    /// How many records each bucket holds, in bucket order (empty ones left out).
    fn layout(&self, tenant: &str) -> Vec<(i64, Vec<u64>)> {
        let buckets = self.buckets.lock().unwrap();
        let mut out: Vec<(i64, Vec<u64>)> = buckets
            .iter()
            .filter(|((t, _), b)| t == tenant && b.head.is_some())
            .map(|((_, n), b)| (*n, b.records.keys().copied().collect()))
            .collect();
        out.sort();
        out
    }
}

#[async_trait]
impl Buckets for Model {
    fn bucket_size(&self) -> u64 {
        self.size
    }

    async fn newest_bucket_hint(&self, tenant: &str) -> ServiceResult<i64> {
        Ok(self.hints.lock().unwrap().get(tenant).copied().unwrap_or(0))
    }

    async fn bucket_head(&self, tenant: &str, bucket: i64) -> ServiceResult<Option<ChainHead>> {
        Ok(self
            .buckets
            .lock()
            .unwrap()
            .get(&(tenant.to_string(), bucket))
            .and_then(|b| b.head.clone()))
    }

    async fn bucket_records(
        &self,
        tenant: &str,
        bucket: i64,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>> {
        Ok(self
            .buckets
            .lock()
            .unwrap()
            .get(&(tenant.to_string(), bucket))
            .map(|b| {
                b.records
                    .range(from..)
                    .take(limit)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn chained(tenant: &str, head: Option<&ChainHead>, count: u64) -> Vec<AuditRecord> {
    let mut records: Vec<AuditRecord> = Vec::new();
    for _ in 0..count {
        let prev = records
            .last()
            .map(AuditRecord::head)
            .or_else(|| head.cloned());
        let n = prev.as_ref().map_or(1, |h| h.seq + 1);
        let event = AuditEvent {
            actor: "system".into(),
            action: "ledger.earn".into(),
            target: format!("member:{tenant}/m{n}"),
            outcome: Outcome::Allowed,
            request_id: format!("r{n}"),
            at: Timestamp(n as i64),
        };
        records.push(AuditRecord::next(tenant, prev.as_ref(), event));
    }
    records
}

/// Appends of `sizes` records in turn: the records, oldest first.
async fn build(model: &Model, tenant: &str, sizes: &[u64]) -> Vec<AuditRecord> {
    let mut all: Vec<AuditRecord> = Vec::new();
    for &size in sizes {
        let head = all.last().map(AuditRecord::head);
        let records = chained(tenant, head.as_ref(), size);
        assert_eq!(
            model.append(tenant, head.as_ref(), &records).await,
            Applied::Yes,
            "append of {size} after {head:?}"
        );
        all.extend(records);
        assert_eq!(
            super::head(model, tenant).await.unwrap(),
            all.last().map(AuditRecord::head)
        );
    }
    all
}

#[tokio::test]
async fn an_append_goes_whole_into_the_bucket_of_its_first_record() {
    let model = Model::new(4);
    build(&model, "acme", &[3, 3, 2, 5, 1, 10, 1]).await;
    assert_eq!(
        model.layout("acme"),
        [
            (0, vec![1, 2, 3, 4, 5, 6]),
            (1, vec![7, 8]),
            (2, vec![9, 10, 11, 12, 13]),
            (3, (14..=24).collect()),
            // 4 and 5 were run over by the append of 10.
            (6, vec![25]),
        ]
    );
    assert_eq!(*model.hints.lock().unwrap().get("acme").unwrap(), 6);
}

#[tokio::test]
async fn records_read_from_any_sequence_with_any_limit_for_any_bucket_size() {
    let appends: &[&[u64]] = &[
        &[1; 12],
        &[3, 3, 2, 5, 1, 10, 1, 4, 4],
        &[7, 1, 1, 9, 2],
        &[20],
    ];
    for size in [1, 2, 3, 4, 5, 8, 100] {
        for (n, sizes) in appends.iter().enumerate() {
            let model = Model::new(size);
            let tenant = format!("t{n}");
            let all = build(&model, &tenant, sizes).await;
            let last = all.len();
            for from in 0..=last + 2 {
                for limit in 0..=last + 1 {
                    let start = from.max(1) - 1;
                    let expected = &all[start.min(last)..(start + limit).min(last)];
                    assert_eq!(
                        records(&model, &tenant, from as u64, limit).await.unwrap(),
                        expected,
                        "bucket size {size}, appends {sizes:?}, from {from}, at most {limit}"
                    );
                }
            }
            let head = super::head(&model, &tenant).await.unwrap();
            assert_eq!(verify(&tenant, &all, head.as_ref()), Ok(last as u64));
        }
    }
}

#[tokio::test]
async fn only_the_chains_head_is_continued() {
    let model = Model::new(4);
    let all = build(&model, "acme", &[3, 3, 2, 5, 1, 10]).await;
    assert_eq!(
        model.append("acme", None, &chained("acme", None, 1)).await,
        Applied::Conflict,
        "a new chain where one exists"
    );
    // Every head the chain had, and every record's, is behind now.
    for record in &all[..all.len() - 1] {
        let stale = record.head();
        assert_eq!(
            model
                .append("acme", Some(&stale), &chained("acme", Some(&stale), 2))
                .await,
            Applied::Conflict,
            "from {stale:?}"
        );
    }
    // The head's number with another hash: in its own bucket (24 is in bucket 3, the next
    // append goes to bucket 6) and where the next append stays in the head's bucket.
    let forged = ChainHead {
        seq: 24,
        hash: "00".repeat(32),
    };
    assert_eq!(
        model
            .append("acme", Some(&forged), &chained("acme", Some(&forged), 1))
            .await,
        Applied::Conflict
    );
    let head = all.last().map(AuditRecord::head);
    let one = chained("acme", head.as_ref(), 1);
    assert_eq!(
        model.append("acme", head.as_ref(), &one).await,
        Applied::Yes
    );
    let forged = ChainHead {
        seq: 25,
        hash: "00".repeat(32),
    };
    assert_eq!(
        model
            .append("acme", Some(&forged), &chained("acme", Some(&forged), 1))
            .await,
        Applied::Conflict
    );
    assert_eq!(
        super::head(&model, "acme").await.unwrap(),
        Some(one[0].head())
    );
}

#[tokio::test]
async fn of_two_writers_on_one_head_one_applies_even_when_they_start_a_bucket() {
    for (size, sizes) in [(4, vec![3, 1]), (4, vec![3]), (4, vec![2])] {
        let model = Model::new(size);
        let all = build(&model, "acme", &sizes).await;
        let head = all.last().map(AuditRecord::head);
        let first = chained("acme", head.as_ref(), 2);
        let second = chained("acme", head.as_ref(), 3);
        // Both plan before either writes, as two replicas would.
        let plan_first = plan_append(&model, "acme", head.as_ref(), &first)
            .await
            .unwrap()
            .unwrap();
        let plan_second = plan_append(&model, "acme", head.as_ref(), &second)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(plan_first, plan_second, "the same bucket and condition");
        assert_eq!(model.apply("acme", &plan_first, &first), Applied::Yes);
        assert_eq!(
            model.apply("acme", &plan_second, &second),
            Applied::Conflict
        );
        let stored = records(&model, "acme", 1, 100).await.unwrap();
        let head = super::head(&model, "acme").await.unwrap();
        assert_eq!(
            verify("acme", &stored, head.as_ref()),
            Ok(all.len() as u64 + 2)
        );
    }
}

#[tokio::test]
async fn a_stale_or_lost_hint_costs_reads_not_the_head() {
    let model = Model::new(2);
    let all = build(&model, "acme", &[1, 2, 2, 3, 1]).await;
    let head = all.last().map(AuditRecord::head);
    for hint in [None, Some(0), Some(1), Some(50)] {
        match hint {
            Some(hint) => model.hints.lock().unwrap().insert("acme".into(), hint),
            None => model.hints.lock().unwrap().remove("acme"),
        };
        assert_eq!(
            super::head(&model, "acme").await.unwrap(),
            head,
            "hint {hint:?}"
        );
    }
    assert_eq!(super::head(&model, "globex").await.unwrap(), None);
}

#[tokio::test]
async fn records_that_do_not_continue_the_head_are_refused() {
    let model = Model::new(4);
    let records = chained("acme", None, 2);
    assert!(
        plan_append(&model, "acme", None, &records[1..])
            .await
            .is_err()
    );
    assert!(plan_append(&model, "globex", None, &records).await.is_err());
    let head = records[0].head();
    assert!(
        plan_append(&model, "acme", Some(&head), &records)
            .await
            .is_err()
    );
    assert!(plan_append(&model, "acme", None, &records).await.is_ok());
}
