//! Merging duplicate members: the duplicate's tags, spend and orders move to the survivor,
//! its points move in the ledger, and the duplicate steps aside (its phone, email and ID
//! number released, its birthday index row dropped, its reads answered with
//! `MEMBER_MERGED`), its personal data still sealed.
//! Everything moved is written down in a merge record, in the same batch as the merge, so
//! the merge can be reversed exactly: the record is the undo. Reversal puts back what the
//! merge moved and keeps what happened since (orders the survivor made after the merge).
//! Both are checked in full before any points move in the ledger. Only available points
//! move: points still pending on the duplicate mature there.

use super::{ATTEMPTS, Members, busy};
use crate::blind::BlindIndex;
use crate::facts::{MemberFacts, MonthTotals};
use crate::profile::IndexKind;
use crate::store::{MemberWrite, SettingWrite, Written};
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};

const MERGES: &str = "merge";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeState {
    Applied,
    Reversed,
}

/// What a merge moved: enough to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub id: String,
    pub survivor: String,
    pub duplicate: String,
    pub state: MergeState,
    pub merged_at: Timestamp,
    pub reversed_at: Option<Timestamp>,
    /// Tags the survivor gained.
    pub tags_added: Vec<String>,
    /// The duplicate's orders, now the survivor's.
    pub orders_moved: Vec<String>,
    /// The duplicate's monthly totals and lifetime figures, added to the survivor's.
    pub months_moved: Vec<MonthTotals>,
    pub lifetime_spend_moved: i64,
    pub lifetime_orders_moved: u32,
    /// The blind indexes the duplicate gave up.
    pub indexes_released: Vec<(IndexKind, [u8; 32])>,
    /// Points moved in the ledger (0: none).
    pub points_moved: i64,
}

fn merge_not_found(id: &str) -> ServiceError {
    ServiceError::new(ErrorCode::MergeNotFound, format!("no merge {id}"))
}

impl Members {
    /// Merges `duplicate` into `survivor`; the record.
    pub async fn merge(
        &self,
        tenant: &TenantId,
        survivor: &MemberId,
        duplicate: &MemberId,
    ) -> ServiceResult<MergeRecord> {
        if survivor == duplicate {
            return Err(ServiceError::invalid(
                "a member cannot be merged into itself",
            ));
        }
        let t = tenant.as_str();
        let id = self.clock.new_ulid().to_string();
        // Both must be there and merge-able before anything moves.
        let (_, kept) = self.live(tenant, survivor).await?;
        let (_, gone) = self.live(tenant, duplicate).await?;
        let mut tags = kept.value.tags.clone();
        tags.extend(gone.value.tags.iter().cloned());
        super::check_tags(&tags)?;
        // The ledger next, keyed by the merge; a failure here leaves no half merge behind.
        let points = self
            .move_points(tenant, duplicate, survivor, &format!("merge.{id}"))
            .await?;
        for _ in 0..ATTEMPTS {
            let (_, mut kept) = self.live(tenant, survivor).await?;
            let (mut gone, mut gone_facts) = self.live(tenant, duplicate).await?;
            // Listed in the loop: an order recorded meanwhile moves with the rest.
            let orders = self.all_orders(tenant, duplicate).await?;
            let d = &gone_facts.value;
            let tags_added: Vec<String> = d.tags.difference(&kept.value.tags).cloned().collect();
            let record = MergeRecord {
                id: id.clone(),
                survivor: survivor.to_string(),
                duplicate: duplicate.to_string(),
                state: MergeState::Applied,
                merged_at: self.clock.now(),
                reversed_at: None,
                tags_added: tags_added.clone(),
                orders_moved: orders.clone(),
                months_moved: d.months.clone(),
                lifetime_spend_moved: d.lifetime_spend,
                lifetime_orders_moved: d.lifetime_orders,
                indexes_released: gone.indexes.clone(),
                points_moved: points,
            };
            absorb(&mut kept.value, d, &tags_added);
            kept.version += 1;
            gone.merged_into = Some(survivor.to_string());
            gone.indexes.clear();
            // Out of the birthday sweep while merged; its sealed birthday gives it back.
            let released_birthday = gone.birthday.take();
            gone.version += 1;
            gone_facts.value.merged_into = Some(survivor.to_string());
            gone_facts.version += 1;
            let data = serde_json::json!({"merge_id": id, "survivor": survivor.as_str(),
                "duplicate": duplicate.as_str(), "orders_moved": orders.len(), "points_moved": points});
            let writes = vec![
                MemberWrite {
                    tenant: t.into(),
                    member: duplicate.to_string(),
                    profile: Some(gone),
                    released: record.indexes_released.clone(),
                    released_birthday,
                    facts: Some(gone_facts),
                    events: vec![self.event(t, duplicate.as_str(), "merged_away", &data)],
                    ..MemberWrite::default()
                },
                MemberWrite {
                    tenant: t.into(),
                    member: survivor.to_string(),
                    facts: Some(kept),
                    orders_from: Some((duplicate.to_string(), orders.clone())),
                    events: vec![self.event(t, survivor.as_str(), "merged", &data)],
                    ..MemberWrite::default()
                },
            ];
            if self.commit_merge(t, writes, &record).await? {
                return Ok(record);
            }
        }
        Err(busy())
    }

    /// Reverses a merge: the duplicate comes back with its identifiers, tags, spend, orders
    /// and points; the record is marked reversed. Reversing again changes nothing.
    pub async fn reverse_merge(&self, tenant: &TenantId, id: &str) -> ServiceResult<MergeRecord> {
        let t = tenant.as_str();
        let record = self.merge_record(tenant, id).await?;
        if record.state == MergeState::Reversed {
            return Ok(record);
        }
        let survivor = MemberId::parse(&record.survivor)?;
        let duplicate = MemberId::parse(&record.duplicate)?;
        // Everything that could refuse the reversal is checked before points move back.
        self.reversible(tenant, &record, &survivor, &duplicate)
            .await?;
        if record.points_moved > 0 {
            let key = format!("unmerge.{id}");
            self.transfer(tenant, &survivor, &duplicate, record.points_moved, &key)
                .await?;
        }
        for _ in 0..ATTEMPTS {
            // Read again in the loop: a reversal that won a race is not applied twice.
            let record = self.merge_record(tenant, id).await?;
            if record.state == MergeState::Reversed {
                return Ok(record);
            }
            self.reversible(tenant, &record, &survivor, &duplicate)
                .await?;
            let (mut gone, mut gone_facts) = self.existing(tenant, &duplicate).await?;
            let (_, mut kept) = self.existing(tenant, &survivor).await?;
            give_back(&mut kept.value, &record);
            kept.version += 1;
            gone.merged_into = None;
            gone.indexes = record.indexes_released.clone();
            let blind = BlindIndex::for_tenant(&self.master, t);
            gone.birthday = self.birthday_index_of(tenant, &blind, &gone).await?;
            gone.version += 1;
            gone_facts.value.merged_into = None;
            gone_facts.version += 1;
            let now = self.clock.now();
            let data = serde_json::json!({"merge_id": id, "survivor": survivor.as_str(),
                "duplicate": duplicate.as_str()});
            let writes = vec![
                MemberWrite {
                    tenant: t.into(),
                    member: survivor.to_string(),
                    facts: Some(kept),
                    events: vec![self.event(t, survivor.as_str(), "unmerged", &data)],
                    ..MemberWrite::default()
                },
                MemberWrite {
                    tenant: t.into(),
                    member: duplicate.to_string(),
                    profile: Some(gone),
                    facts: Some(gone_facts),
                    orders_from: Some((survivor.to_string(), record.orders_moved.clone())),
                    events: vec![self.event(t, duplicate.as_str(), "restored", &data)],
                    ..MemberWrite::default()
                },
            ];
            let mut reversed = record.clone();
            reversed.state = MergeState::Reversed;
            reversed.reversed_at = Some(now);
            if self.commit_merge(t, writes, &reversed).await? {
                self.recount_order_dates(tenant, &survivor).await?;
                self.recount_order_dates(tenant, &duplicate).await?;
                return Ok(reversed);
            }
        }
        Err(busy())
    }

    /// Refuses a reversal that cannot go through: the duplicate erased, or no longer merged
    /// into the survivor; the survivor merged away itself; an identifier taken meanwhile.
    async fn reversible(
        &self,
        tenant: &TenantId,
        record: &MergeRecord,
        survivor: &MemberId,
        duplicate: &MemberId,
    ) -> ServiceResult<()> {
        let (gone, _) = self.existing(tenant, duplicate).await?;
        if gone.erased_at.is_some() {
            return Err(ServiceError::new(
                ErrorCode::MemberErased,
                format!("member {duplicate} was erased since the merge: it cannot come back"),
            ));
        }
        if gone.merged_into.as_deref() != Some(survivor.as_str()) {
            return Err(ServiceError::new(
                ErrorCode::VersionConflict,
                format!("member {duplicate} is not merged into {survivor} any more"),
            ));
        }
        let (kept, _) = self.existing(tenant, survivor).await?;
        if let Some(other) = &kept.merged_into {
            return Err(ServiceError::new(
                ErrorCode::MemberMerged,
                format!("member {survivor} was merged into {other} since: reverse that first"),
            ));
        }
        for (kind, index) in &record.indexes_released {
            let holder = self.repo.member_by_index(tenant, *kind, index).await?;
            if let Some(holder) = holder.filter(|h| h != duplicate.as_str()) {
                return Err(super::taken(*kind, &holder));
            }
        }
        Ok(())
    }

    pub async fn merge_record(&self, tenant: &TenantId, id: &str) -> ServiceResult<MergeRecord> {
        let bytes = self
            .repo
            .setting(tenant, MERGES, id)
            .await?
            .ok_or_else(|| merge_not_found(id))?;
        serde_json::from_slice(&bytes).map_err(ServiceError::internal)
    }

    /// Commits both members' writes and the record, all or nothing; false if either member
    /// changed meanwhile. A write refused for an index (a reversal whose phone another
    /// member took since) is an error naming it.
    async fn commit_merge(
        &self,
        tenant: &str,
        writes: Vec<MemberWrite>,
        record: &MergeRecord,
    ) -> ServiceResult<bool> {
        let setting = SettingWrite {
            tenant: tenant.into(),
            kind: MERGES.into(),
            name: record.id.clone(),
            value: serde_json::to_vec(record).map_err(ServiceError::internal)?,
        };
        match self.repo.write_all(writes, Some(setting)).await? {
            Written::Yes => Ok(true),
            Written::Taken(kind, holder) => Err(super::taken(kind, &holder)),
            _ => Ok(false),
        }
    }

    async fn all_orders(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let page = self
                .repo
                .orders(tenant, member, before.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(crate::store::history_cursor(last));
            let full = page.len() == 500;
            ids.extend(page.into_iter().map(|o| o.order_id));
            if !full {
                break;
            }
        }
        Ok(ids)
    }

    /// Moves the duplicate's available points to the survivor; how many.
    async fn move_points(
        &self,
        tenant: &TenantId,
        from: &MemberId,
        to: &MemberId,
        key: &str,
    ) -> ServiceResult<i64> {
        let Some(ledger) = &self.ledger else {
            return Ok(0);
        };
        let points = ledger.points(tenant, from).await?.unwrap_or(0);
        if points > 0 {
            self.transfer(tenant, from, to, points, key).await?;
        }
        Ok(points)
    }

    async fn transfer(
        &self,
        tenant: &TenantId,
        from: &MemberId,
        to: &MemberId,
        points: i64,
        key: &str,
    ) -> ServiceResult<()> {
        match &self.ledger {
            Some(ledger) => ledger.transfer(tenant, from, to, points, key).await,
            None => Ok(()),
        }
    }

    /// Sets the member's first and last order from its history (after orders moved).
    async fn recount_order_dates(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<()> {
        let t = tenant.as_str();
        for _ in 0..ATTEMPTS {
            let Some(mut facts) = self.repo.facts(tenant, member).await? else {
                return Ok(());
            };
            let newest = self.repo.orders(tenant, member, None, 1).await?;
            let all = self.all_orders(tenant, member).await?;
            let oldest = match all.last() {
                Some(id) => self.repo.order(tenant, id).await?,
                None => None,
            };
            facts.value.last_order_at = newest.first().map(|o| o.at);
            facts.value.first_order_at = oldest.map(|o| o.at);
            facts.version += 1;
            let write = MemberWrite {
                tenant: t.into(),
                member: member.to_string(),
                facts: Some(facts),
                ..MemberWrite::default()
            };
            if self.repo.write(write).await? == Written::Yes {
                return Ok(());
            }
        }
        Err(busy())
    }
}

/// The survivor takes the duplicate's tags, spend and order dates.
fn absorb(kept: &mut MemberFacts, gone: &MemberFacts, tags_added: &[String]) {
    kept.tags.extend(tags_added.iter().cloned());
    for m in &gone.months {
        add_month(kept, m.month, m.spend, i64::from(m.orders));
    }
    kept.lifetime_spend = kept.lifetime_spend.saturating_add(gone.lifetime_spend);
    kept.lifetime_orders = kept.lifetime_orders.saturating_add(gone.lifetime_orders);
    kept.first_order_at = min_some(kept.first_order_at, gone.first_order_at);
    kept.last_order_at = max_some(kept.last_order_at, gone.last_order_at);
}

/// The survivor gives back what the merge added (dates are recounted after).
fn give_back(kept: &mut MemberFacts, record: &MergeRecord) {
    for tag in &record.tags_added {
        kept.tags.remove(tag);
    }
    for m in &record.months_moved {
        add_month(kept, m.month, -m.spend, -i64::from(m.orders));
    }
    kept.months.retain(|m| m.spend != 0 || m.orders != 0);
    kept.lifetime_spend = kept
        .lifetime_spend
        .saturating_sub(record.lifetime_spend_moved);
    kept.lifetime_orders = kept
        .lifetime_orders
        .saturating_sub(record.lifetime_orders_moved);
}

fn add_month(facts: &mut MemberFacts, month: u32, spend: i64, orders: i64) {
    match facts.months.iter_mut().find(|m| m.month == month) {
        Some(m) => {
            m.spend = m.spend.saturating_add(spend);
            m.orders = u32::try_from(i64::from(m.orders) + orders).unwrap_or(0);
        }
        None => {
            facts.months.push(MonthTotals {
                month,
                spend,
                orders: u32::try_from(orders).unwrap_or(0),
            });
            facts.months.sort_by_key(|m| m.month);
        }
    }
}

fn min_some(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
