//! The member store on ScyllaDB (decision 0012, "The member store"): [`ScyllaMemberStore`]
//! implements [`MemberRepository`] with the semantics of the embedded adapter
//! (`crate::store::EmbeddedMemberStore`), which the conformance suite
//! (`services/member/tests/conformance.rs`) checks on both.
//!
//! - `members ((tenant, member))`: profile and facts as statics with their versions, order
//!   history rows (`h`) and outbox rows (`o`); every member write is one conditional batch
//!   on the partition (`write.rs`), after its index and order claims.
//! - `member_index`, `member_orders`: claims made with `IF NOT EXISTS` before the batch.
//! - `member_birthdays`: the birthday index, rows kept in step with the batch
//!   (`birthdays.rs`).
//! - `members_by_tenant` (16 buckets) for tenant-wide pages, merged in member order
//!   (`pages.rs`); `segment_members` likewise per segment generation.
//! - Events go through the outbox relay ([`Relay`]): the batch writes them as outbox rows,
//!   the relay numbers them into the change log `events_after` reads.

mod birthdays;
mod pages;
pub mod rows;
mod statements;
mod write;

use crate::facts::MemberFacts;
use crate::orders::Order;
use crate::profile::{IndexKind, StoredProfile};
use crate::store::{LoggedEvent, MemberRepository, MemberWrite, SettingWrite, Versioned, Written};
use crate::vault::StoredTenantKey;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_scylla::relay::{OutboxPartitions, Relay};
use loyalty_scylla::session::Cluster;
pub use statements::MemberStatements;
use std::sync::Arc;

/// The relay's name for this service (its lease row).
const SERVICE: &str = "member";
/// Rows per page for reads without a LIMIT.
const PAGE_ROWS: i32 = 1_000;

/// The member store on one keyspace. Cheap to clone: clones share the session, the
/// prepared statements and the relay (a write batch runs its writes on clones, in tasks).
#[derive(Clone)]
pub struct ScyllaMemberStore {
    cluster: Arc<Cluster>,
    statements: Arc<MemberStatements>,
    relay: Arc<Relay>,
}

impl ScyllaMemberStore {
    /// Prepares the store's statements and the keyspace's relay (the keyspace migrated).
    pub async fn prepare(cluster: Arc<Cluster>, keyspace: &str) -> ServiceResult<Self> {
        let statements = MemberStatements::prepare(&cluster.session, keyspace).await?;
        let relay = Relay::prepare(Arc::clone(&cluster), keyspace, SERVICE).await?;
        Ok(Self {
            cluster,
            statements: Arc::new(statements),
            relay,
        })
    }

    fn session(&self) -> &scylla::client::session::Session {
        &self.cluster.session
    }

    /// The statics of a member's partition, decoded.
    async fn read_member(
        &self,
        tenant: &str,
        member: &str,
    ) -> ServiceResult<(Option<StoredProfile>, Option<Versioned<MemberFacts>>)> {
        match self
            .statements
            .statics
            .first(self.session(), (tenant.to_string(), member.to_string()))
            .await?
        {
            Some(row) => rows::member_of(row),
            None => Ok((None, None)),
        }
    }

    /// An order id's claim row: its holder, the order, when it was claimed, and whether it
    /// is recorded (the holder's history row holds it).
    async fn order_claim(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> ServiceResult<Option<(String, Order, Option<scylla::value::CqlTimestamp>, bool)>> {
        let Some((holder, body, claimed_at)) = self
            .statements
            .order
            .first(self.session(), (tenant.to_string(), order_id.to_string()))
            .await?
        else {
            return Ok(None);
        };
        let order = rows::order_of(body)?;
        let recorded = self.has_history_row(tenant, &holder, &order).await?;
        Ok(Some((holder, order, claimed_at, recorded)))
    }

    /// Whether `member`'s profile lists the index: what makes a claim on it hold.
    async fn lists_index(
        &self,
        tenant: &str,
        member: &str,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<bool> {
        let (profile, _) = self.read_member(tenant, member).await?;
        Ok(profile.is_some_and(|p| p.indexes.contains(&(kind, *index))))
    }

    /// Whether the order's history row is in `member`'s partition: what makes an order
    /// recorded (its `member_orders` row alone is a claim).
    async fn has_history_row(
        &self,
        tenant: &str,
        member: &str,
        order: &Order,
    ) -> ServiceResult<bool> {
        Ok(self
            .statements
            .history_row
            .first(
                self.session(),
                (
                    tenant.to_string(),
                    member.to_string(),
                    crate::store::history_cursor(order),
                ),
            )
            .await?
            .is_some())
    }
}

#[async_trait]
impl MemberRepository for ScyllaMemberStore {
    async fn profile(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<StoredProfile>> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        Ok(self.read_member(tenant, member).await?.0)
    }

    async fn facts(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<Versioned<MemberFacts>>> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        Ok(self.read_member(tenant, member).await?.1)
    }

    /// Both statics come in one read of the partition.
    async fn member(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<(Option<StoredProfile>, Option<Versioned<MemberFacts>>)> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        self.read_member(tenant, member).await
    }

    async fn write(&self, write: MemberWrite) -> ServiceResult<Written> {
        self.write_one(&write).await
    }

    async fn write_many(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Vec<Written>> {
        self.write_each(writes, setting).await
    }

    async fn write_all(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Written> {
        self.write_saga(writes, setting).await
    }

    /// The holder of a committed claim: a claim whose holder's profile does not list the
    /// index (a write in flight, or one that never applied) is not shown, as the embedded
    /// store shows only committed writes.
    async fn member_by_index(
        &self,
        tenant: &TenantId,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<Option<String>> {
        let tenant = tenant.as_str();
        let Some((holder, _)) = self
            .statements
            .index_holder
            .first(
                self.session(),
                (tenant.to_string(), rows::index_kind(kind), index.to_vec()),
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .lists_index(tenant, &holder, kind, index)
            .await?
            .then_some(holder))
    }

    async fn birthday_members(
        &self,
        tenant: &TenantId,
        birthday: &[u8; 32],
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        self.birthday_page(tenant.as_str(), birthday, after, limit)
            .await
    }

    async fn profiles_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<StoredProfile>> {
        let tenant = tenant.as_str();
        self.tenant_page(tenant, after, limit, |_, profile, _| profile)
            .await
    }

    async fn facts_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Versioned<MemberFacts>>> {
        let tenant = tenant.as_str();
        self.tenant_page(tenant, after, limit, |_, _, facts| facts)
            .await
    }

    /// A recorded order: its claim row, once the history row of its member holds it.
    async fn order(&self, tenant: &TenantId, order_id: &str) -> ServiceResult<Option<Order>> {
        let tenant = tenant.as_str();
        Ok(self
            .order_claim(tenant, order_id)
            .await?
            .and_then(|(_, order, _, recorded)| recorded.then_some(order)))
    }

    /// The history rows carry the orders themselves (moved with them in a merge), so this
    /// is one read of the partition, newest first in clustering order.
    async fn orders(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        before: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Order>> {
        let tenant = tenant.as_str();
        let member = member.as_str();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let (tenant, member) = (tenant.to_string(), member.to_string());
        let rows = match before {
            Some(cursor) => {
                self.statements
                    .history_before
                    .rows(self.session(), (tenant, member, cursor.to_string(), limit))
                    .await?
            }
            None => {
                self.statements
                    .history_newest
                    .rows(self.session(), (tenant, member, limit))
                    .await?
            }
        };
        rows.into_iter()
            .map(|(body,)| rows::order_of(body))
            .collect()
    }

    async fn tenant_keys(&self, tenant: &TenantId) -> ServiceResult<Vec<StoredTenantKey>> {
        let tenant = tenant.as_str();
        self.statements
            .tenant_keys
            .rows(self.session(), (tenant.to_string(),))
            .await?
            .into_iter()
            .map(rows::tenant_key_of)
            .collect()
    }

    async fn add_tenant_key(
        &self,
        tenant: &TenantId,
        key: &StoredTenantKey,
    ) -> ServiceResult<bool> {
        let tenant = tenant.as_str();
        let (version, sealed) = rows::tenant_key_row(key)?;
        self.statements
            .add_tenant_key
            .applied(self.session(), (tenant.to_string(), version, sealed))
            .await
    }

    async fn setting(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let tenant = tenant.as_str();
        let row = self
            .statements
            .setting
            .first(
                self.session(),
                (tenant.to_string(), kind.to_string(), name.to_string()),
            )
            .await?;
        // A setting written with an empty value reads as empty (CQL keeps an empty blob).
        Ok(row.map(|(value,)| value.unwrap_or_default()))
    }

    async fn put_setting(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        value: Option<Vec<u8>>,
    ) -> ServiceResult<()> {
        let tenant = tenant.as_str();
        let key = (tenant.to_string(), kind.to_string(), name.to_string());
        match value {
            Some(value) => {
                self.statements
                    .put_setting
                    .run(self.session(), (key.0, key.1, key.2, value))
                    .await
            }
            None => {
                self.statements
                    .delete_setting
                    .run(self.session(), key)
                    .await
            }
        }
    }

    async fn settings(
        &self,
        tenant: &TenantId,
        kind: &str,
    ) -> ServiceResult<Vec<(String, Vec<u8>)>> {
        let tenant = tenant.as_str();
        Ok(self
            .statements
            .settings
            .all_pages(
                self.session(),
                (tenant.to_string(), kind.to_string()),
                PAGE_ROWS,
            )
            .await?
            .into_iter()
            .map(|(name, value)| (name, value.unwrap_or_default()))
            .collect())
    }

    async fn add_segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
        members: Vec<String>,
    ) -> ServiceResult<()> {
        let tenant = tenant.as_str();
        self.add_to_segment(tenant, segment, generation, members)
            .await
    }

    async fn segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        let tenant = tenant.as_str();
        self.segment_page(tenant, segment, generation, after, limit)
            .await
    }

    /// A generation is a partition per bucket: 16 partition deletes.
    async fn drop_segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
    ) -> ServiceResult<()> {
        let tenant = tenant.as_str();
        let generation = rows::generation(generation)?;
        for bucket in 0..rows::BUCKETS {
            self.statements
                .drop_segment_bucket
                .run(
                    self.session(),
                    (tenant.to_string(), segment.to_string(), generation, bucket),
                )
                .await?;
        }
        Ok(())
    }

    /// A no-op on ScyllaDB, and the one place where this store does less than the embedded
    /// one: a client cannot make the cluster drop overwritten or deleted cells. They go when
    /// compaction merges the SSTables that hold them, and a deletion's tombstone (with what
    /// it shadows) only after the table's `gc_grace_seconds`; forcing it is an operator's
    /// `nodetool compact` on every replica. What an erasure removes for good is therefore
    /// gone within gc_grace plus the next compaction, not when this returns
    /// (docs/operations/scylla.md is where the operator's side belongs).
    async fn purge(&self) -> ServiceResult<()> {
        Ok(())
    }

    async fn tenants(&self) -> ServiceResult<Vec<String>> {
        let mut tenants: Vec<String> = self
            .statements
            .tenants
            .all_pages(self.session(), (), PAGE_ROWS)
            .await?
            .into_iter()
            .map(|(tenant,)| tenant)
            .collect();
        // Partitions come in token order.
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    /// The relay's change log, each body a member event.
    async fn events_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>> {
        self.relay
            .changes_after(self, seq, limit)
            .await?
            .into_iter()
            .map(|change| {
                let (event, trace) = rows::event_of(&change.body)?;
                Ok(LoggedEvent {
                    seq: change.seq,
                    event,
                    trace,
                })
            })
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        self.relay.position(reader).await
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        self.relay.save_position(reader, seq).await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        self.relay.log_end(from).await
    }
}

#[async_trait]
impl OutboxPartitions for ScyllaMemberStore {
    async fn outbox_rows(
        &self,
        tenant: &str,
        member: &str,
        after: u64,
        limit: usize,
    ) -> ServiceResult<Vec<(u64, Vec<u8>)>> {
        let rows = self
            .statements
            .outbox_after
            .rows(
                self.session(),
                (
                    tenant.to_string(),
                    member.to_string(),
                    rows::position_id(after),
                    i32::try_from(limit).unwrap_or(i32::MAX),
                ),
            )
            .await?;
        let mut out = rows
            .into_iter()
            .map(|(id, body)| {
                let body =
                    body.ok_or_else(|| ServiceError::internal("an outbox row without a body"))?;
                Ok((rows::position_of_id(&id)?, body))
            })
            .collect::<ServiceResult<Vec<_>>>()?;
        // Read in reverse clustering order, oldest first; sorted again to be sure.
        out.sort_by_key(|(position, _)| *position);
        Ok(out)
    }

    async fn forget_outbox(&self, tenant: &str, member: &str, upto: u64) -> ServiceResult<()> {
        self.statements
            .forget_outbox
            .run(
                self.session(),
                (
                    tenant.to_string(),
                    member.to_string(),
                    rows::position_id(upto),
                ),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_the_migrations() {
        let problems = loyalty_scylla::cql_check::check_statements(
            crate::schema::MIGRATIONS,
            &MemberStatements::definitions(),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
