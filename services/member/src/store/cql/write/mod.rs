//! Member writes: the claims, the conditional batch on the member partition, and what
//! follows it.
//!
//! One write (`write_one`):
//! 1. read the partition's versions (profile, facts) and check the write's own conditions;
//! 2. claim the indexes its profile lists (`member_index ... IF NOT EXISTS`) and its order
//!    id (`member_orders ... IF NOT EXISTS`), then write the row of its profile's birthday
//!    index (not a claim: see `birthdays.rs`). A claim held by another member counts when
//!    that member's profile lists the index (for an order: when its history row is in the
//!    holder's partition); one that does not, made less than [`CLAIM_GRACE_MS`] ago, is a
//!    write in flight (Stale: read again and retry); an older one was left by a write that
//!    never applied, and is taken over (`IF member = <holder>`);
//! 3. write the hint for the relay (the commit's last outbox position), then one
//!    conditional batch on the partition: `IF profile_version = ? AND facts_version = ?`
//!    (or `= null`) as read, the statics, the order's history row, moved orders' rows and
//!    the events' outbox rows;
//! 4. applied: delete the released indexes (`IF member = <this member>`) and the released
//!    birthday row, and finish moving orders (their `member_orders` row, then the old history
//!    row). Not applied: give the claims and the birthday row back and start again from 1 (a concurrent write of another part of the member
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

mod claims;
mod commit;
mod many;

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
    /// The birthday row written for the write's profile.
    birthday: Option<[u8; 32]>,
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
pub(super) enum Holder {
    Free,
    Member(String),
    InFlight,
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
                birthday: None,
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
