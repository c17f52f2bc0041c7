//! The member store's conformance suite: one body per behaviour of `MemberRepository`, which
//! every adapter passes (`tests/conformance.rs` runs it on the embedded store and on ScyllaDB).
//! Bodies use tenants and members of their own (the keyspace is shared by a run). Writes and
//! their conflicts are in [`writes`], reads, listings and housekeeping in [`reads`], the
//! birthday index in [`birthdays`].

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

mod birthdays;
mod reads;
mod writes;

pub use birthdays::*;
pub use reads::*;
pub use writes::*;

use loyalty_scylla::conformance;

use crate::events::MemberEvent;
use crate::facts::MemberFacts;
use crate::orders::Order;
use crate::profile::{IndexKind, StoredProfile};
use crate::store::{
    MemberRepository, MemberWrite, SettingWrite, Versioned, Written, history_cursor,
};
use crate::vault::StoredTenantKey;
use loyalty_common::Timestamp;
use loyalty_events::trace::TraceContext;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use conformance::unique;
use loyalty_common::ids::{MemberId, TenantId};
use std::future::Future;
use std::pin::Pin;

/// Opens the data of a store anew, as a restarted process would.
pub type Reopen = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Stores> + Send>> + Send>;

/// A store under test, and how to open it again.
pub struct Stores {
    pub repo: Arc<dyn MemberRepository>,
    pub reopen: Reopen,
}

/// A test's tenant name as the id the ports take.
fn tid(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// A test's member name as the id the ports take.
fn mid(name: &str) -> MemberId {
    MemberId::parse(name).unwrap()
}

impl Stores {
    /// The same data through a store opened anew (what a restarted process sees).
    async fn reopen(self) -> Stores {
        let Stores { repo, reopen } = self;
        drop(repo);
        reopen().await
    }
}

// ---- What the bodies write ----

fn phone(n: u8) -> (IndexKind, [u8; 32]) {
    // Unique per test run as well: the keyspace outlives a test.
    let mut hash = [n; 32];
    let run = ulid::Ulid::new().to_bytes();
    hash[..16].copy_from_slice(&run);
    (IndexKind::Phone, hash)
}

fn profile(
    tenant: &str,
    member: &str,
    version: u64,
    indexes: Vec<(IndexKind, [u8; 32])>,
) -> StoredProfile {
    StoredProfile {
        tenant: tenant.into(),
        member_id: member.into(),
        sealed: [("name".to_string(), version.to_be_bytes().to_vec())]
            .into_iter()
            .collect(),
        key: None,
        indexes,
        updated_at: Timestamp(1_800_000_000_000 + version as i64),
        erased_at: None,
        merged_into: None,
        version,
        birthday: None,
    }
}

fn facts(member: &str, version: u64) -> Versioned<MemberFacts> {
    let mut value = MemberFacts::new(member, Timestamp(1_800_000_000_000));
    value.lifetime_orders = version as u32;
    Versioned { version, value }
}

fn order(member: &str, id: &str, at: i64) -> Order {
    Order {
        order_id: id.into(),
        member: member.into(),
        at: Timestamp(at),
        at_given: true,
        total: 1_000,
        lines: vec![],
        store: None,
        channel: None,
        refund_of: None,
        points: Some(10),
        recorded_at: Timestamp(at),
    }
}

fn event(tenant: &str, member: &str, name: &str) -> MemberEvent {
    MemberEvent::new(
        ulid::Ulid::new().to_string(),
        tenant,
        member,
        name,
        Timestamp(1_800_000_000_000),
        &serde_json::json!({ "name": name }),
    )
}

/// A new member: profile and facts at version 1, with `indexes`.
fn created(tenant: &str, member: &str, indexes: Vec<(IndexKind, [u8; 32])>) -> MemberWrite {
    MemberWrite {
        tenant: tenant.into(),
        member: member.into(),
        profile: Some(profile(tenant, member, 1, indexes)),
        facts: Some(facts(member, 1)),
        events: vec![event(tenant, member, "created")],
        ..MemberWrite::default()
    }
}

fn facts_write(tenant: &str, member: &str, version: u64) -> MemberWrite {
    MemberWrite {
        tenant: tenant.into(),
        member: member.into(),
        facts: Some(facts(member, version)),
        ..MemberWrite::default()
    }
}

/// Declares the suite's tests for two store constructors, each an async fn in the calling
/// crate: `member_conformance!(crate::embedded, crate::scylla)`, the first returning
/// [`Stores`], the second `Option<Stores>` (None when no cluster is configured). Each
/// behaviour runs on both.
#[macro_export]
macro_rules! member_conformance {
    ($embedded:path, $scylla:path) => {
        ::loyalty_scylla::conformance!(
            profile_write_stale,
            $crate::store::conformance::profile_write_and_stale_conflict,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            index_taken,
            $crate::store::conformance::index_claim_and_taken,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            index_released,
            $crate::store::conformance::released_index_reusable,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            facts_versions,
            $crate::store::conformance::facts_versioning,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            order_exists_once,
            $crate::store::conformance::order_exists,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            orders_newest_first,
            $crate::store::conformance::orders_newest_first_with_cursor,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            orders_move,
            $crate::store::conformance::orders_from_moving_orders,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            write_many_outcomes,
            $crate::store::conformance::write_many_per_write_outcomes,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            write_all_refusal,
            $crate::store::conformance::write_all_or_nothing,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            write_all_shapes,
            $crate::store::conformance::write_all_over_members_of_every_shape,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            racing_writes,
            $crate::store::conformance::racing_writes_leave_the_losers_orders_free,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            racing_merges,
            $crate::store::conformance::racing_merges_let_go_of_what_they_held,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            pages_member_order,
            $crate::store::conformance::pages_in_member_order,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            settings,
            $crate::store::conformance::settings_put_get_list_delete,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            tenant_keys,
            $crate::store::conformance::tenant_keys_add_twice,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            segments,
            $crate::store::conformance::segments_add_page_drop,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            events_once_each,
            $crate::store::conformance::events_in_order_once_each,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            tenants,
            $crate::store::conformance::tenants_list,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            birthdays_follow_profiles,
            $crate::store::conformance::birthday_rows_follow_the_profile,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            birthdays_of_refused_writes,
            $crate::store::conformance::birthday_rows_of_a_refused_claim_or_batch,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            birthday_pages,
            $crate::store::conformance::birthday_pages_in_member_order_per_tenant,
            $embedded,
            $scylla
        );
        ::loyalty_scylla::conformance!(
            purge,
            $crate::store::conformance::purge_keeps_what_is_current,
            $embedded,
            $scylla
        );
    };
}
