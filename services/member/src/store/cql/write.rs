//! Member writes: the claims, the conditional batch on the member partition, and what
//! follows it.
//!
//! One write (`write_one`):
//! 1. read the partition's versions (profile, facts) and check the write's own conditions;
//! 2. claim the indexes its profile lists (`member_index ... IF NOT EXISTS`) and its order
//!    id (`member_orders ... IF NOT EXISTS`). A claim held by another member counts when
//!    that member's profile lists the index (for an order: when its history row is in the
//!    holder's partition); one that does not, made less than [`CLAIM_GRACE_MS`] ago, is a
//!    write in flight (Stale: read again and retry); an older one was left by a write that
//!    never applied, and is taken over (`IF member = <holder>`);
//! 3. write the hint for the relay (the commit's last outbox position), then one
//!    conditional batch on the partition: `IF profile_version = ? AND facts_version = ?`
//!    (or `= null`) as read, the statics, the order's history row, moved orders' rows and
//!    the events' outbox rows;
//! 4. applied: delete the released indexes (`IF member = <this member>`) and finish moving
//!    orders (their `member_orders` row, then the old history row). Not applied: give the
//!    claims back and start again from 1 (a concurrent write of another part of the member
//!    is not a conflict; one of the same part is, and returns Stale).
//!
//! The batch conditions on both versions, whatever the write changes: together they are
//! the partition's revision, strictly growing with every write that carries a profile or
//! facts, so outbox positions `(revision << 16) | index` never repeat in a partition. A
//! write with events and neither profile nor facts has no revision of its own and is
//! refused (the service never makes one).

use super::statements::MemberStatements;
use super::{ScyllaMemberStore, rows};
use crate::orders::Order;
use crate::profile::IndexKind;
use crate::store::{MemberWrite, SettingWrite, Written};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::BatchWrite;
use scylla::value::CqlTimestamp;
use std::collections::{HashMap, HashSet};

/// Rounds of read, claim and batch before a write that keeps losing is called Stale.
const ATTEMPTS: usize = 8;
/// How long a merge's hold on a member lasts if the merge dies before letting go: far above
/// the few requests between taking it and the member's batch.
const HOLD_TTL_SECS: i32 = 30;
/// How long a claim without its commit is taken for a write in flight: well above the time
/// from a claim to its batch (a few requests of at most `scylla.request_timeout_ms` each).
pub const CLAIM_GRACE_MS: i64 = 30_000;

fn now() -> CqlTimestamp {
    CqlTimestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    )
}

fn fresh(claimed_at: Option<CqlTimestamp>) -> bool {
    claimed_at.is_some_and(|at| now().0 - at.0 < CLAIM_GRACE_MS)
}

/// The stored versions of a member's profile and facts (None: none stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Versions {
    profile: Option<i64>,
    facts: Option<i64>,
}

impl Versions {
    fn profile(&self) -> u64 {
        self.profile.map_or(0, |v| v.max(0) as u64)
    }

    fn facts(&self) -> u64 {
        self.facts.map_or(0, |v| v.max(0) as u64)
    }

    fn revision(&self) -> u64 {
        self.profile().saturating_add(self.facts())
    }

    /// The versions once `w` is written.
    fn after(&self, w: &MemberWrite) -> ServiceResult<Self> {
        Ok(Self {
            profile: match &w.profile {
                Some(p) => Some(rows::stored_version(p.version)?),
                None => self.profile,
            },
            facts: match &w.facts {
                Some(f) => Some(rows::stored_version(f.version)?),
                None => self.facts,
            },
        })
    }
}

/// The write's profile does not follow the stored one.
fn profile_refusal(w: &MemberWrite, v: Versions) -> Option<Written> {
    let p = w.profile.as_ref()?;
    (v.profile() + 1 != p.version).then_some(Written::Stale)
}

/// The write's facts do not follow the stored ones. As in the embedded store, a new
/// member's first facts (profile and facts both at version 1) are not checked.
fn facts_refusal(w: &MemberWrite, v: Versions) -> Option<Written> {
    let f = w.facts.as_ref()?;
    let new_member = w.profile.as_ref().is_some_and(|p| p.version == 1);
    if new_member && f.version == 1 {
        return None;
    }
    (v.facts() + 1 != f.version).then_some(Written::Stale)
}

/// Writes of a `write_many` run at once, at most.
const WAVE: usize = 32;

/// What a write reads or changes that another write of the same batch may too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum WriteKey {
    Member(String, String),
    Index(String, IndexKind, [u8; 32]),
    Order(String, String),
}

fn write_keys(w: &MemberWrite) -> Vec<WriteKey> {
    let t = &w.tenant;
    let mut keys = vec![WriteKey::Member(t.clone(), w.member.clone())];
    let indexes = w.profile.iter().flat_map(|p| p.indexes.iter());
    for (kind, index) in indexes.chain(&w.released) {
        keys.push(WriteKey::Index(t.clone(), *kind, *index));
    }
    if let Some(order) = &w.order {
        keys.push(WriteKey::Order(t.clone(), order.order_id.clone()));
    }
    if let Some((from, order_ids)) = &w.orders_from {
        keys.push(WriteKey::Member(t.clone(), from.clone()));
        for id in order_ids {
            keys.push(WriteKey::Order(t.clone(), id.clone()));
        }
    }
    keys
}

/// An index: tenant, kind, keyed hash.
type IndexKey = (String, IndexKind, [u8; 32]);

/// What one write claimed, to give back if its batch does not apply.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// Each index with the holder it was taken from when that holder gave it up earlier in
    /// the same `write_all` (given back to it on release; otherwise the row is deleted).
    indexes: Vec<(IndexKind, [u8; 32], Option<String>)>,
    order: Option<Order>,
}

/// The condition of an ordinary write: both versions as read, and no merge holding the
/// member.
fn push_guard(
    s: &MemberStatements,
    batch: &mut BatchWrite,
    v: Versions,
    after: Versions,
    t: &str,
    m: &str,
) {
    let (t, m) = (t.to_string(), m.to_string());
    match (v.profile, v.facts) {
        (None, None) => batch.push(
            &s.guard_new,
            (after.profile, after.facts, t.clone(), m.clone()),
        ),
        (None, Some(f)) => batch.push(
            &s.guard_facts_only,
            (after.profile, after.facts, t.clone(), m.clone(), f),
        ),
        (Some(p), None) => batch.push(
            &s.guard_profile_only,
            (after.profile, after.facts, t.clone(), m.clone(), p),
        ),
        (Some(p), Some(f)) => batch.push(
            &s.guard_both,
            (after.profile, after.facts, t.clone(), m.clone(), p, f),
        ),
    }
}

/// A merge's hold on one member: the lock id, and whether its batch keeps the hold (a later
/// write of the same member in the merge follows).
pub(super) struct Hold {
    id: String,
    keep: bool,
}

/// Who holds an index, as far as a new claim is concerned.
enum Holder {
    Free,
    Member(String),
    InFlight,
}

impl ScyllaMemberStore {
    async fn versions(&self, tenant: &str, member: &str) -> ServiceResult<Versions> {
        let row = self
            .statements
            .versions
            .first(self.session(), (tenant.to_string(), member.to_string()))
            .await?;
        Ok(
            row.map_or_else(Versions::default, |(profile, facts)| Versions {
                profile,
                facts,
            }),
        )
    }

    /// The holder of a claim as a write sees it: a member whose profile lists the index, a
    /// write in flight, or free (none, the writer itself, or an abandoned claim).
    async fn index_holder(
        &self,
        tenant: &str,
        member: &str,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<(Holder, Option<String>)> {
        let row = self
            .statements
            .index_holder
            .first(
                self.session(),
                (tenant.to_string(), rows::index_kind(kind), index.to_vec()),
            )
            .await?;
        let Some((holder, claimed_at)) = row else {
            return Ok((Holder::Free, None));
        };
        if holder == member {
            return Ok((Holder::Free, Some(holder)));
        }
        if self.lists_index(tenant, &holder, kind, index).await? {
            return Ok((Holder::Member(holder.clone()), Some(holder)));
        }
        if fresh(claimed_at) {
            return Ok((Holder::InFlight, Some(holder)));
        }
        Ok((Holder::Free, Some(holder)))
    }

    /// Claims an index for `member`; the refusal if it cannot. `yielded` names the indexes
    /// that writes before this one in the same `write_all` give up, with who gives them up.
    async fn claim_index(
        &self,
        tenant: &str,
        member: &str,
        kind: IndexKind,
        index: &[u8; 32],
        yielded: &HashMap<IndexKey, String>,
        claims: &mut Claims,
    ) -> ServiceResult<Option<Written>> {
        let s = &self.statements;
        let key = (tenant.to_string(), rows::index_kind(kind), index.to_vec());
        for _ in 0..ATTEMPTS {
            if s.claim_index
                .applied(
                    self.session(),
                    (
                        key.0.clone(),
                        key.1.clone(),
                        key.2.clone(),
                        member.to_string(),
                        now(),
                    ),
                )
                .await?
            {
                claims.indexes.push((kind, *index, None));
                return Ok(None);
            }
            let (holder, row_holder) = self.index_holder(tenant, member, kind, index).await?;
            let Some(row_holder) = row_holder else {
                continue; // Deleted meanwhile: claim again.
            };
            if row_holder == member {
                return Ok(None);
            }
            let given_up = yielded.get(&(tenant.to_string(), kind, *index)) == Some(&row_holder);
            match holder {
                Holder::Member(holder) if !given_up => {
                    return Ok(Some(Written::Taken(kind, holder)));
                }
                Holder::InFlight if !given_up => return Ok(Some(Written::Stale)),
                _ => {}
            }
            if s.take_index
                .applied(
                    self.session(),
                    (
                        member.to_string(),
                        now(),
                        key.0.clone(),
                        key.1.clone(),
                        key.2.clone(),
                        row_holder.clone(),
                    ),
                )
                .await?
            {
                claims
                    .indexes
                    .push((kind, *index, given_up.then_some(row_holder)));
                return Ok(None);
            }
        }
        Ok(Some(Written::Stale))
    }

    /// The order stored under this id, as a claim sees it: recorded (Some), in flight
    /// (Stale) or free (an abandoned claim too). The holder of the row.
    async fn order_holder(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> ServiceResult<Option<(String, Result<Option<Order>, Written>)>> {
        let Some((holder, stored, claimed_at, recorded)) =
            self.order_claim(tenant, order_id).await?
        else {
            return Ok(None);
        };
        if recorded {
            return Ok(Some((holder, Ok(Some(stored)))));
        }
        if fresh(claimed_at) {
            return Ok(Some((holder, Err(Written::Stale))));
        }
        Ok(Some((holder, Ok(None))))
    }

    /// Claims the order's id for `member`; OrderExists with the recorded order if it is.
    async fn claim_order(
        &self,
        tenant: &str,
        member: &str,
        order: &Order,
        claims: &mut Claims,
    ) -> ServiceResult<Option<Written>> {
        let body = rows::encode(order)?;
        let key = (tenant.to_string(), order.order_id.clone());
        for _ in 0..ATTEMPTS {
            if self
                .statements
                .claim_order
                .applied(
                    self.session(),
                    (
                        key.0.clone(),
                        key.1.clone(),
                        member.to_string(),
                        body.clone(),
                        now(),
                    ),
                )
                .await?
            {
                claims.order = Some(order.clone());
                return Ok(None);
            }
            let Some((holder, state)) = self.order_holder(tenant, &order.order_id).await? else {
                continue;
            };
            match state {
                Ok(Some(recorded)) => return Ok(Some(Written::OrderExists(Box::new(recorded)))),
                Err(refused) => return Ok(Some(refused)),
                Ok(None) => {}
            }
            if self
                .statements
                .take_order
                .applied(
                    self.session(),
                    (
                        member.to_string(),
                        body.clone(),
                        now(),
                        key.0.clone(),
                        key.1.clone(),
                        holder,
                    ),
                )
                .await?
            {
                claims.order = Some(order.clone());
                return Ok(None);
            }
        }
        Ok(Some(Written::Stale))
    }

    /// The claims of `w`, in the embedded store's order of refusals: the profile's version,
    /// its indexes, the facts' version, the order.
    async fn check_and_claim(
        &self,
        w: &MemberWrite,
        v: Versions,
        yielded: &HashMap<IndexKey, String>,
        claims: &mut Claims,
    ) -> ServiceResult<Option<Written>> {
        if let Some(refused) = profile_refusal(w, v) {
            return Ok(Some(refused));
        }
        if let Some(refused) = self.claim_all(w, yielded, claims, Some(v)).await? {
            return Ok(Some(refused));
        }
        Ok(None)
    }

    /// Claims `w`'s indexes and order; with `v`, checks its facts' version between the two
    /// (where the embedded store checks it).
    async fn claim_all(
        &self,
        w: &MemberWrite,
        yielded: &HashMap<IndexKey, String>,
        claims: &mut Claims,
        v: Option<Versions>,
    ) -> ServiceResult<Option<Written>> {
        if let Some(p) = &w.profile {
            for (kind, index) in &p.indexes {
                let refused = self
                    .claim_index(&w.tenant, &w.member, *kind, index, yielded, claims)
                    .await?;
                if refused.is_some() {
                    return Ok(refused);
                }
            }
        }
        if let Some(refused) = v.and_then(|v| facts_refusal(w, v)) {
            return Ok(Some(refused));
        }
        if let Some(order) = &w.order {
            return self.claim_order(&w.tenant, &w.member, order, claims).await;
        }
        Ok(None)
    }

    /// Gives back what a write claimed whose batch did not apply. What the member's stored
    /// profile lists, or whose order its partition records, was committed by a concurrent
    /// write of the same member and stays.
    async fn release(&self, w: &MemberWrite, claims: Claims) -> ServiceResult<()> {
        if claims.indexes.is_empty() && claims.order.is_none() {
            return Ok(());
        }
        let (tenant, member) = (w.tenant.clone(), w.member.clone());
        let (profile, _) = self.read_member(&tenant, &member).await?;
        let listed = |kind: IndexKind, index: &[u8; 32]| {
            profile
                .as_ref()
                .is_some_and(|p| p.indexes.contains(&(kind, *index)))
        };
        let mut deleted = Vec::new();
        for (kind, index, previous) in claims.indexes {
            if listed(kind, &index) {
                continue;
            }
            let key = (tenant.clone(), rows::index_kind(kind), index.to_vec());
            if previous.is_none() {
                deleted.push((kind, index));
            }
            match previous {
                Some(previous) => {
                    self.statements
                        .take_index
                        .applied(
                            self.session(),
                            (previous, now(), key.0, key.1, key.2, member.clone()),
                        )
                        .await?;
                }
                None => {
                    self.statements
                        .release_index
                        .applied(self.session(), (key.0, key.1, key.2, member.clone()))
                        .await?;
                }
            }
        }
        self.restore_listed(&tenant, &member, &deleted).await?;
        if let Some(order) = claims.order
            && !self.has_history_row(&tenant, &member, &order).await?
        {
            self.statements
                .release_order
                .applied(
                    self.session(),
                    (tenant.clone(), order.order_id.clone(), member.clone()),
                )
                .await?;
        }
        Ok(())
    }

    /// The orders `w` moves that are still the other member's, as stored.
    async fn orders_to_move(&self, w: &MemberWrite) -> ServiceResult<Vec<Order>> {
        let Some((from, order_ids)) = &w.orders_from else {
            return Ok(Vec::new());
        };
        let mut moved = Vec::new();
        for order_id in order_ids {
            let row = self
                .statements
                .order
                .first(self.session(), (w.tenant.clone(), order_id.clone()))
                .await?;
            if let Some((_, body, _)) = row {
                let order = rows::order_of(body)?;
                if order.member == *from {
                    moved.push(order);
                }
            }
        }
        Ok(moved)
    }

    /// The hint, then the conditional batch on the member partition; whether it applied.
    async fn commit(
        &self,
        w: &MemberWrite,
        v: Versions,
        moved: &[Order],
        hold: Option<&Hold>,
    ) -> ServiceResult<bool> {
        let s = &self.statements;
        let (t, m) = (w.tenant.clone(), w.member.clone());
        let after = v.after(w)?;
        let mut batch = BatchWrite::default();
        if let Some(hold) = hold {
            // A merge's write: its hold kept the versions as its check read them.
            let guard = if hold.keep {
                &s.guard_locked_keep
            } else {
                &s.guard_locked
            };
            batch.push(
                guard,
                (
                    after.profile,
                    after.facts,
                    t.clone(),
                    m.clone(),
                    hold.id.clone(),
                ),
            );
        } else {
            push_guard(s, &mut batch, v, after, &t, &m);
        }
        if let Some(profile) = &w.profile {
            batch.push(
                &s.set_profile,
                (rows::encode(profile)?, t.clone(), m.clone()),
            );
        }
        if let Some(facts) = &w.facts {
            batch.push(
                &s.set_facts,
                (rows::facts_blob(facts)?, t.clone(), m.clone()),
            );
        }
        let history = |order: &Order| -> ServiceResult<_> {
            let (cursor, body) = rows::history_row(order)?;
            Ok((
                t.clone(),
                m.clone(),
                rows::HISTORY.to_string(),
                cursor,
                body,
            ))
        };
        if let Some(order) = &w.order {
            batch.push(&s.put_row, history(order)?);
        }
        for order in moved {
            let mut order = order.clone();
            order.member = m.clone();
            batch.push(&s.put_row, history(&order)?);
        }
        if !w.events.is_empty() {
            if after.revision() <= v.revision() {
                return Err(ServiceError::internal(
                    "a member write with events but neither profile nor facts: its events would have no outbox position",
                ));
            }
            let positions = rows::positions(after.revision(), w.events.len())?;
            for (position, event) in positions.iter().zip(&w.events) {
                batch.push(
                    &s.put_row,
                    (
                        t.clone(),
                        m.clone(),
                        rows::OUTBOX.to_string(),
                        rows::position_id(*position),
                        rows::event_body(event)?,
                    ),
                );
            }
            if let Some(last) = positions.last() {
                self.relay.hint(&t, &m, *last).await?;
            }
        }
        // A new member is listed for tenant pages before it exists: a listing without its
        // member (the batch lost) is skipped by the pages.
        if v == Versions::default() && (w.profile.is_some() || w.facts.is_some()) {
            s.add_to_tenant
                .run(self.session(), (t.clone(), rows::bucket(&m), m.clone()))
                .await?;
        }
        batch.apply(self.session(), None).await
    }

    /// Claims again, for `member`, the indexes just deleted that its profile lists now.
    /// The deletes are conditional on the holder, not on the write: another write of the
    /// same member that took the index over as its own (and committed after the profile
    /// this one read) would otherwise be left listing an index with no claim row.
    async fn restore_listed(
        &self,
        tenant: &str,
        member: &str,
        deleted: &[(IndexKind, [u8; 32])],
    ) -> ServiceResult<()> {
        if deleted.is_empty() {
            return Ok(());
        }
        let (profile, _) = self.read_member(tenant, member).await?;
        let Some(profile) = profile else {
            return Ok(());
        };
        for (kind, index) in deleted {
            if !profile.indexes.contains(&(*kind, *index)) {
                continue;
            }
            let key = (tenant.to_string(), rows::index_kind(*kind), index.to_vec());
            let claimed = self
                .statements
                .claim_index
                .applied(
                    self.session(),
                    (key.0, key.1, key.2, member.to_string(), now()),
                )
                .await?;
            if !claimed {
                let (_, holder) = self.index_holder(tenant, member, *kind, index).await?;
                if holder.as_deref() != Some(member) {
                    tracing::error!(
                        tenant,
                        member,
                        other = holder.as_deref().unwrap_or(""),
                        "an index this member lists was claimed by another member while it was \
                         being restored; the two members share a phone, email or ID number"
                    );
                }
            }
        }
        Ok(())
    }

    /// After an applied batch: released indexes deleted (unless the new profile lists them
    /// again, or another member took them meanwhile), moved orders pointed at their new
    /// member, then their old history rows deleted (in that order, so an order is always
    /// recorded in the partition its row names).
    async fn after_commit(&self, w: &MemberWrite, moved: &[Order]) -> ServiceResult<()> {
        let s = &self.statements;
        let mut deleted = Vec::new();
        for (kind, index) in &w.released {
            let kept = w
                .profile
                .as_ref()
                .is_some_and(|p| p.indexes.contains(&(*kind, *index)));
            if !kept {
                deleted.push((*kind, *index));
                s.release_index
                    .applied(
                        self.session(),
                        (
                            w.tenant.clone(),
                            rows::index_kind(*kind),
                            index.to_vec(),
                            w.member.clone(),
                        ),
                    )
                    .await?;
            }
        }
        self.restore_listed(&w.tenant, &w.member, &deleted).await?;
        for order in moved {
            let mut now_theirs = order.clone();
            now_theirs.member = w.member.clone();
            // Conditional, as every other write of these rows: a plain write's timestamp
            // (the coordinator's clock) could lose to, or hide, a Paxos write made after it.
            // Not applied: the order moved on already (a retry); nothing to do.
            s.move_order
                .applied(
                    self.session(),
                    (
                        w.member.clone(),
                        rows::encode(&now_theirs)?,
                        w.tenant.clone(),
                        order.order_id.clone(),
                        order.member.clone(),
                    ),
                )
                .await?;
            s.delete_row
                .applied(
                    self.session(),
                    (
                        w.tenant.clone(),
                        order.member.clone(),
                        rows::HISTORY.to_string(),
                        crate::store::history_cursor(order),
                    ),
                )
                .await?;
        }
        Ok(())
    }

    /// One member write (see the module's comment).
    pub(super) async fn write_one(&self, w: &MemberWrite) -> ServiceResult<Written> {
        let none = HashMap::new();
        for attempt in 0..ATTEMPTS {
            let v = self.versions(&w.tenant, &w.member).await?;
            let mut claims = Claims::default();
            if let Some(refused) = self.check_and_claim(w, v, &none, &mut claims).await? {
                self.release(w, claims).await?;
                return Ok(refused);
            }
            let moved = self.orders_to_move(w).await?;
            if self.commit(w, v, &moved, None).await? {
                self.after_commit(w, &moved).await?;
                return Ok(Written::Yes);
            }
            self.release(w, claims).await?;
            // Lost to another write, or a merge holds the member (for as long as it takes
            // to write its members: milliseconds, seconds with many orders to move).
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(std::time::Duration::from_millis(8 << attempt)).await;
            }
        }
        Ok(Written::Stale)
    }

    /// `write_many`: ScyllaDB has no transaction across partitions, so each write commits
    /// on its own, and each is checked against the store with the writes before it in the
    /// batch already in it, as the embedded store checks it against the batch so far. For
    /// speed the batch runs in waves of up to [`WAVE`] writes at once: a wave ends before a
    /// write that shares a member, an index or an order id with a write in it, so a write
    /// never runs beside one it depends on and each outcome is the one in-order writing
    /// gives. The setting is written after the last write. Unlike the embedded store, an
    /// error part-way leaves the writes before it committed (an import's checkpoint, written
    /// last, then still points before them, and a re-run finds them as they were written).
    pub(super) async fn write_each(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Vec<Written>> {
        let mut outcomes: Vec<Option<Written>> = vec![None; writes.len()];
        let mut wave: Vec<usize> = Vec::new();
        let mut wave_keys: HashSet<WriteKey> = HashSet::new();
        for (i, w) in writes.iter().enumerate() {
            let keys = write_keys(w);
            if wave.len() == WAVE || keys.iter().any(|k| wave_keys.contains(k)) {
                self.run_wave(&writes, &wave, &mut outcomes).await?;
                wave.clear();
                wave_keys.clear();
            }
            wave.push(i);
            wave_keys.extend(keys);
        }
        self.run_wave(&writes, &wave, &mut outcomes).await?;
        let mut orders_written: HashSet<(String, String)> = HashSet::new();
        let mut out = Vec::with_capacity(writes.len());
        for (w, outcome) in writes.iter().zip(outcomes) {
            let mut outcome =
                outcome.ok_or_else(|| ServiceError::internal("a write without an outcome"))?;
            if let Some(order) = &w.order {
                let key = (w.tenant.clone(), order.order_id.clone());
                match outcome {
                    // The embedded store answers a repeat within the batch with the
                    // write's own order.
                    Written::OrderExists(_) if orders_written.contains(&key) => {
                        outcome = Written::OrderExists(Box::new(order.clone()));
                    }
                    Written::Yes => {
                        orders_written.insert(key);
                    }
                    _ => {}
                }
            }
            out.push(outcome);
        }
        self.put_setting_write(setting).await?;
        Ok(out)
    }

    /// The writes `wave` names, at once; every one runs to its end before an error of any
    /// is returned (none is cut off between its claims and its batch).
    async fn run_wave(
        &self,
        writes: &[MemberWrite],
        wave: &[usize],
        outcomes: &mut [Option<Written>],
    ) -> ServiceResult<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in wave {
            let (store, w) = (self.clone(), writes[i].clone());
            tasks.spawn(async move { (i, store.write_one(&w).await) });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(outcome))) => outcomes[i] = Some(outcome),
                Ok((_, Err(e))) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(ServiceError::internal(e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn put_setting_write(&self, setting: Option<SettingWrite>) -> ServiceResult<()> {
        if let Some(s) = setting {
            self.statements
                .put_setting
                .run(self.session(), (s.tenant, s.kind, s.name, s.value))
                .await?;
        }
        Ok(())
    }

    /// `write_all` (merges and their reversals) as a saga, since no transaction spans two
    /// member partitions:
    ///
    /// 1. **check** every write, in order, against the store and the writes before it
    ///    (versions, indexes, orders), reading only: the first refusal is returned and
    ///    nothing is written or claimed;
    /// 2. **claim** every write's indexes and order; a claim lost to a concurrent writer
    ///    since step 1 gives back every claim made and returns its refusal (nothing written);
    /// 3. **hold** every member on the versions step 1 read (`merge_lock`, with a TTL): every
    ///    other write is conditional on no hold, so none lands from here to the member's
    ///    batch; a member changed since step 1 lets go of every hold and claim, and the
    ///    result is Stale with nothing written;
    /// 4. **write** each member's batch in order, conditional on its own hold, the member's
    ///    last one letting go of it;
    /// 5. the setting (the merge record), last.
    ///
    /// Atomic: each member's batch (its statics, history and outbox rows). Not atomic: the
    /// writes together, but from step 3 on nothing but a failure can stop them: a crash, a
    /// timeout, or a hold expiring (after 30 s) before its batch. Then the batches before it
    /// stay committed, the merge record is not written, and nothing finishes the merge at
    /// restart (decision 0012). The observable result on success, or on a refusal found in
    /// steps 1-3, is the embedded store's.
    pub(super) async fn write_saga(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Written> {
        let expected = match self.check_all(&writes).await? {
            Ok(expected) => expected,
            Err(refused) => return Ok(refused),
        };
        let mut claimed: Vec<Claims> = Vec::with_capacity(writes.len());
        let mut yielded: HashMap<IndexKey, String> = HashMap::new();
        for w in &writes {
            let mut claims = Claims::default();
            let refused = self.claim_all(w, &yielded, &mut claims, None).await?;
            claimed.push(claims);
            if let Some(refused) = refused {
                self.release_all(&writes, claimed).await?;
                return Ok(refused);
            }
            for (kind, index) in &w.released {
                yielded.insert((w.tenant.clone(), *kind, *index), w.member.clone());
            }
        }
        // Hold every member on the versions the check read, so that no other write lands
        // between the check and this merge's batches.
        let hold_id = ulid::Ulid::new().to_string();
        if !self.hold_all(&writes, &expected, &hold_id).await? {
            self.release_all(&writes, claimed).await?;
            return Ok(Written::Stale);
        }
        let written = self
            .write_held(&writes, expected, &hold_id, &mut claimed)
            .await;
        if written.is_err() {
            // Let go of what is still held now rather than in 30 s; the claims of writes
            // not made are taken over once their grace is past.
            if let Err(e) = self.let_go(&writes, &hold_id).await {
                tracing::warn!(error = %e, "letting go of a failed merge's holds");
            }
        }
        if written? != Written::Yes {
            return Ok(Written::Stale);
        }
        self.put_setting_write(setting).await?;
        Ok(Written::Yes)
    }

    /// Step 4 of the saga: each member's batch on its hold; Stale (the rest let go and
    /// released) if one cannot be written.
    async fn write_held(
        &self,
        writes: &[MemberWrite],
        expected: Vec<Versions>,
        hold_id: &str,
        claimed: &mut Vec<Claims>,
    ) -> ServiceResult<Written> {
        let mut committed: HashMap<(String, String), Versions> = HashMap::new();
        for (i, (w, expected)) in writes.iter().zip(expected).enumerate() {
            let key = (w.tenant.clone(), w.member.clone());
            let mut v = committed.get(&key).copied().unwrap_or(expected);
            let mut done = false;
            // The hold is let go by the member's last write here; kept before it.
            let mut hold = Some(Hold {
                id: hold_id.to_string(),
                keep: writes[i + 1..]
                    .iter()
                    .any(|later| later.tenant == w.tenant && later.member == w.member),
            });
            for _ in 0..ATTEMPTS {
                let moved = self.orders_to_move(w).await?;
                if self.commit(w, v, &moved, hold.take().as_ref()).await? {
                    self.after_commit(w, &moved).await?;
                    committed.insert(key.clone(), v.after(w)?);
                    done = true;
                    break;
                }
                // Another write of this member landed since the check: go on while this
                // one still follows what is stored.
                v = self.versions(&w.tenant, &w.member).await?;
                if profile_refusal(w, v)
                    .or_else(|| facts_refusal(w, v))
                    .is_some()
                {
                    break;
                }
            }
            if !done {
                // This write and the ones after it are not written: their claims and holds
                // go back.
                let left = claimed.split_off(i);
                self.let_go(&writes[i..], hold_id).await?;
                self.release_all(&writes[i..], left).await?;
                return Ok(Written::Stale);
            }
        }
        Ok(Written::Yes)
    }

    /// Holds each member of `writes` on the versions its first write expects (a hold
    /// expires after [`HOLD_TTL_SECS`] if the merge dies); false, with every hold taken let
    /// go, if one changed since the check.
    async fn hold_all(
        &self,
        writes: &[MemberWrite],
        expected: &[Versions],
        id: &str,
    ) -> ServiceResult<bool> {
        let s = &self.statements;
        let mut held: Vec<&MemberWrite> = Vec::new();
        for (w, v) in writes.iter().zip(expected) {
            if held
                .iter()
                .any(|h| h.tenant == w.tenant && h.member == w.member)
            {
                continue;
            }
            let (ttl, hold, t, m) = (
                HOLD_TTL_SECS,
                id.to_string(),
                w.tenant.clone(),
                w.member.clone(),
            );
            let applied = match (v.profile, v.facts) {
                (None, None) => {
                    s.lock_new
                        .applied(self.session(), (ttl, hold, t, m))
                        .await?
                }
                (None, Some(f)) => {
                    s.lock_facts_only
                        .applied(self.session(), (ttl, hold, t, m, f))
                        .await?
                }
                (Some(p), None) => {
                    s.lock_profile_only
                        .applied(self.session(), (ttl, hold, t, m, p))
                        .await?
                }
                (Some(p), Some(f)) => {
                    s.lock_both
                        .applied(self.session(), (ttl, hold, t, m, p, f))
                        .await?
                }
            };
            if !applied {
                let taken: Vec<MemberWrite> = held.into_iter().cloned().collect();
                self.let_go(&taken, id).await?;
                return Ok(false);
            }
            held.push(w);
        }
        Ok(true)
    }

    /// Lets go of the holds `id` has on the members of `writes` (those it still has).
    async fn let_go(&self, writes: &[MemberWrite], id: &str) -> ServiceResult<()> {
        for w in writes {
            self.statements
                .unlock
                .applied(
                    self.session(),
                    (None, w.tenant.clone(), w.member.clone(), id.to_string()),
                )
                .await?;
        }
        Ok(())
    }

    async fn release_all(&self, writes: &[MemberWrite], claimed: Vec<Claims>) -> ServiceResult<()> {
        // In reverse, so an index passed from one write to a later one goes back in turn.
        let pairs: Vec<_> = writes.iter().zip(claimed).collect();
        for (w, claims) in pairs.into_iter().rev() {
            self.release(w, claims).await?;
        }
        Ok(())
    }

    /// Step 1 of the saga: every write checked, reading only, against the store and the
    /// writes before it; the versions each is expected to find, or the first refusal.
    async fn check_all(
        &self,
        writes: &[MemberWrite],
    ) -> ServiceResult<Result<Vec<Versions>, Written>> {
        let mut versions: HashMap<(String, String), Versions> = HashMap::new();
        let mut indexes: HashMap<IndexKey, Option<String>> = HashMap::new();
        let mut orders: HashSet<(String, String)> = HashSet::new();
        let mut expected = Vec::with_capacity(writes.len());
        for w in writes {
            let key = (w.tenant.clone(), w.member.clone());
            let v = match versions.get(&key) {
                Some(v) => *v,
                None => self.versions(&w.tenant, &w.member).await?,
            };
            if let Some(refused) = profile_refusal(w, v) {
                return Ok(Err(refused));
            }
            if let Some(p) = &w.profile {
                for (kind, index) in &p.indexes {
                    let holder = match indexes.get(&(w.tenant.clone(), *kind, *index)) {
                        Some(Some(h)) if *h != w.member => Holder::Member(h.clone()),
                        Some(_) => Holder::Free,
                        None => {
                            self.index_holder(&w.tenant, &w.member, *kind, index)
                                .await?
                                .0
                        }
                    };
                    match holder {
                        Holder::Member(h) => return Ok(Err(Written::Taken(*kind, h))),
                        Holder::InFlight => return Ok(Err(Written::Stale)),
                        Holder::Free => {}
                    }
                }
            }
            if let Some(refused) = facts_refusal(w, v) {
                return Ok(Err(refused));
            }
            if let Some(order) = &w.order {
                let order_key = (w.tenant.clone(), order.order_id.clone());
                if orders.contains(&order_key) {
                    return Ok(Err(Written::OrderExists(Box::new(order.clone()))));
                }
                match self.order_holder(&w.tenant, &order.order_id).await? {
                    Some((_, Ok(Some(recorded)))) => {
                        return Ok(Err(Written::OrderExists(Box::new(recorded))));
                    }
                    Some((_, Err(refused))) => return Ok(Err(refused)),
                    _ => {}
                }
                orders.insert(order_key);
            }
            for (kind, index) in &w.released {
                indexes.insert((w.tenant.clone(), *kind, *index), None);
            }
            if let Some(p) = &w.profile {
                for (kind, index) in &p.indexes {
                    indexes.insert((w.tenant.clone(), *kind, *index), Some(w.member.clone()));
                }
            }
            versions.insert(key, v.after(w)?);
            expected.push(v);
        }
        Ok(Ok(expected))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use crate::facts::MemberFacts;
    use crate::store::Versioned;
    use loyalty_common::Timestamp;

    fn write(profile: Option<u64>, facts: Option<u64>) -> MemberWrite {
        MemberWrite {
            tenant: "t".into(),
            member: "m".into(),
            profile: profile.map(|version| crate::profile::StoredProfile {
                tenant: "t".into(),
                member_id: "m".into(),
                sealed: Default::default(),
                key: None,
                indexes: vec![],
                updated_at: Timestamp(0),
                erased_at: None,
                merged_into: None,
                version,
            }),
            facts: facts.map(|version| Versioned {
                version,
                value: MemberFacts::new("m", Timestamp(0)),
            }),
            ..MemberWrite::default()
        }
    }

    #[test]
    fn conditions_follow_the_embedded_store() {
        let none = Versions::default();
        let stored = Versions {
            profile: Some(2),
            facts: Some(5),
        };
        assert_eq!(profile_refusal(&write(Some(1), Some(1)), none), None);
        assert_eq!(facts_refusal(&write(Some(1), Some(1)), none), None);
        assert_eq!(profile_refusal(&write(Some(3), None), stored), None);
        assert_eq!(
            profile_refusal(&write(Some(2), None), stored),
            Some(Written::Stale)
        );
        assert_eq!(facts_refusal(&write(None, Some(6)), stored), None);
        assert_eq!(
            facts_refusal(&write(None, Some(5)), stored),
            Some(Written::Stale)
        );
        // A new member's first facts are not checked, as in the embedded store.
        assert_eq!(facts_refusal(&write(Some(1), Some(1)), stored), None);
    }

    #[test]
    fn the_revision_grows_with_every_versioned_write() {
        let stored = Versions {
            profile: Some(2),
            facts: Some(5),
        };
        for w in [
            write(Some(3), None),
            write(None, Some(6)),
            write(Some(3), Some(6)),
        ] {
            assert!(stored.after(&w).unwrap().revision() > stored.revision());
        }
        assert_eq!(stored.after(&write(None, None)).unwrap(), stored);
    }

    #[test]
    fn writes_sharing_a_member_an_index_or_an_order_share_a_key() {
        let mut a = write(Some(1), None);
        let phone = (IndexKind::Phone, [1; 32]);
        if let Some(p) = a.profile.as_mut() {
            p.indexes = vec![phone];
        }
        let keys = write_keys(&a);
        assert!(keys.contains(&WriteKey::Member("t".into(), "m".into())));
        assert!(keys.contains(&WriteKey::Index("t".into(), phone.0, phone.1)));
        let other = MemberWrite {
            member: "n".into(),
            released: vec![phone],
            orders_from: Some(("m".into(), vec!["o1".into()])),
            ..MemberWrite::default()
        };
        let other_keys = write_keys(&MemberWrite {
            tenant: "t".into(),
            ..other
        });
        assert!(other_keys.contains(&WriteKey::Index("t".into(), phone.0, phone.1)));
        assert!(other_keys.contains(&WriteKey::Member("t".into(), "m".into())));
        assert!(other_keys.contains(&WriteKey::Order("t".into(), "o1".into())));
    }

    #[test]
    fn a_claim_is_fresh_within_its_grace() {
        assert!(fresh(Some(now())));
        assert!(!fresh(Some(CqlTimestamp(now().0 - CLAIM_GRACE_MS - 1))));
        assert!(!fresh(None));
    }
}
