//! The audit log on ScyllaDB: the layout and its logic are in `audit_chain.rs`; here are the
//! statements that read the buckets and write an append as one conditional batch.

use super::audit_chain::{self, Buckets, Condition};
use super::rows::{ALL, cql_seq, head_binds, head_from_row, record_from_row, record_row};
use super::{PAGE_SIZE, ScyllaIdentityStore, applied};
use crate::audit::{AuditRecord, ChainHead};
use crate::store::{Applied, AuditRepository};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::BatchWrite;

#[async_trait]
impl Buckets for ScyllaIdentityStore {
    fn bucket_size(&self) -> u64 {
        self.inner.audit_bucket_size
    }

    async fn newest_bucket_hint(&self, tenant: &str) -> ServiceResult<i64> {
        Ok(self
            .statements()
            .audit_head_hint
            .first(self.session(), (tenant.to_string(),))
            .await?
            .map_or(0, |(bucket,)| bucket))
    }

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
}

#[async_trait]
impl AuditRepository for ScyllaIdentityStore {
    async fn head(&self, tenant: &str) -> ServiceResult<Option<ChainHead>> {
        audit_chain::head(self, tenant).await
    }

    /// One conditional batch on the append's bucket: its records and the bucket's new static
    /// head, all or nothing (see `audit_chain.rs` for the bucket and the condition).
    async fn append(
        &self,
        tenant: &str,
        expected: Option<&ChainHead>,
        records: &[AuditRecord],
    ) -> ServiceResult<Applied> {
        let Some(last) = records.last() else {
            return Ok(Applied::Yes);
        };
        let Some(plan) = audit_chain::plan_append(self, tenant, expected, records).await? else {
            return Ok(Applied::Conflict);
        };
        let st = self.statements();
        if expected.is_none() {
            // Listed before the chain's first write, so no chain is ever missing from the list
            // (a tenant listed by an append that lost has a chain anyway: the winner's).
            st.list_audited_tenant
                .run(self.session(), (ALL.to_string(), tenant.to_string()))
                .await?;
        }
        let (head_seq, head_hash) = head_binds(&last.head())?;
        let mut batch = BatchWrite::default();
        match &plan.condition {
            Condition::StartsBucket => batch.push(
                &st.start_audit_bucket,
                (head_seq, head_hash, tenant.to_string(), plan.bucket),
            ),
            Condition::HeadIs(expected) => {
                let (seq, hash) = head_binds(expected)?;
                batch.push(
                    &st.continue_audit_bucket,
                    (
                        head_seq,
                        head_hash,
                        tenant.to_string(),
                        plan.bucket,
                        seq,
                        hash,
                    ),
                )
            }
        }
        for record in records {
            let (seq, bytes) = record_row(record)?;
            batch.push(
                &st.audit_record,
                (tenant.to_string(), plan.bucket, seq, bytes),
            );
        }
        // The audit log groups up to 1024 records in an append: a few hundred KB in one
        // batch, which the cluster's batch_size_fail_threshold_in_kb must allow (ScyllaDB
        // warns past batch_size_warn_threshold_in_kb; not checked here).
        let yes = batch.apply(self.session(), None).await?;
        if yes && plan.condition == Condition::StartsBucket && plan.bucket > 0 {
            // Only a hint: the append stands whether or not it is written.
            if let Err(e) = st
                .set_audit_head_hint
                .run(self.session(), (tenant.to_string(), plan.bucket))
                .await
            {
                tracing::warn!(tenant, bucket = plan.bucket, error = %e, "writing the audit head hint failed");
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
        audit_chain::records(self, tenant, from, limit).await
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
    /// `sync` because its appends reach the operating system only; here each append is as
    /// durable as the cluster's commit log settings make any write (`commitlog_sync`), and a
    /// client cannot ask for more.
    async fn sync(&self) -> ServiceResult<()> {
        Ok(())
    }
}
