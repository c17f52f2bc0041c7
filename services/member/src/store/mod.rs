//! The member service's storage port, shaped like the ScyllaDB tables it will have:
//!
//! - `profiles`: a partition per member with the sealed personal data, written conditionally
//!   on its version;
//! - `facts`: a partition per member with what segments, tiers and scores read (no personal
//!   data), versioned on its own so a nightly scoring run never rewrites sealed data;
//! - `indexes`: a partition per blind index, claimed in the profile's own write;
//! - `birthdays`: a partition per tenant and birthday index (the keyed hash of a month and
//!   day), members in id order, written with the profile that holds the index;
//! - `orders`: a member's purchase history, one row per order id (written once);
//! - `changes`: the outbox of member events, in commit order, with readers' positions;
//! - `tenant_keys` and `settings` (tier policy, scoring policy, segments) per tenant;
//! - `segment_members`: a partition per segment and generation, members in id order.
//!
//! A [`MemberWrite`] touches one member and commits all or nothing; [`MemberRepository::write_many`]
//! commits many in one durable batch, which is what makes a bulk import fast. The embedded
//! adapter ([`EmbeddedMemberStore`], in `embedded.rs`) keeps them in fjall.

use crate::events::MemberEvent;
use crate::facts::MemberFacts;
use crate::orders::Order;
use crate::profile::{IndexKind, StoredProfile};
use crate::vault::StoredTenantKey;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_events::trace::{self, TraceContext};
use serde::{Deserialize, Serialize};

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "cql")]
pub mod cql;
mod embedded;
pub use embedded::{EmbeddedMemberStore, history_cursor};

/// A value with the version it was written at (the first write is version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// How a conditional write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// The profile or facts changed since they were read: read again and retry.
    Stale,
    /// Another member holds this index.
    Taken(IndexKind, String),
    /// An order with this id is stored already (the stored one).
    OrderExists(Box<Order>),
}

/// Everything one change to one member writes, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct MemberWrite {
    pub tenant: String,
    pub member: String,
    /// Written if the stored version is `version - 1`, claiming its indexes.
    pub profile: Option<StoredProfile>,
    /// Indexes the member gives up (erasure, a changed phone).
    pub released: Vec<(IndexKind, [u8; 32])>,
    /// The birthday index row the member gives up (erasure, a merge, a changed or cleared
    /// birthday); the profile's own `birthday` is written, so one the profile still holds
    /// stays.
    pub released_birthday: Option<[u8; 32]>,
    /// Written if the stored facts' version is `version - 1`.
    pub facts: Option<Versioned<MemberFacts>>,
    /// Written unless an order with its id exists.
    pub order: Option<Order>,
    /// Orders moved to this member from another (a merge, or its reversal): their history
    /// rows move and their `member` changes.
    pub orders_from: Option<(String, Vec<String>)>,
    /// Appended to the outbox, in order, if the write goes through.
    pub events: Vec<MemberEvent>,
}

/// A tenant setting written with a batch of member writes.
#[derive(Debug, Clone)]
pub struct SettingWrite {
    pub tenant: String,
    pub kind: String,
    pub name: String,
    pub value: Vec<u8>,
}

/// An event as the outbox holds it: its place in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub seq: u64,
    pub event: MemberEvent,
    /// The trace context of the request that wrote it, as its record carries it.
    #[serde(skip)]
    pub trace: Option<TraceContext>,
}

impl LoggedEvent {
    /// The record the embedded store keeps: the event with its number, then the trace
    /// context of the request that wrote it ([`loyalty_events::trace`]).
    pub fn record(&self) -> ServiceResult<Vec<u8>> {
        trace::encode_traced(self, &self.event.id)
    }

    /// The event of a record [`LoggedEvent::record`] wrote.
    pub fn from_record(record: &[u8]) -> ServiceResult<Self> {
        let (logged, trace) = trace::decode_traced::<Self>(record)?;
        Ok(Self { trace, ..logged })
    }
}

#[async_trait]
pub trait MemberRepository: Send + Sync + 'static {
    async fn profile(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<StoredProfile>>;
    async fn facts(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<Versioned<MemberFacts>>>;
    /// A member's profile and facts, read together: what a profile read needs. An adapter
    /// over the network can send both reads at once; by default they are read in turn.
    async fn member(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<(Option<StoredProfile>, Option<Versioned<MemberFacts>>)> {
        Ok((
            self.profile(tenant, member).await?,
            self.facts(tenant, member).await?,
        ))
    }
    async fn write(&self, write: MemberWrite) -> ServiceResult<Written>;
    /// Commits every write that holds in one durable batch, with `setting` (e.g. an import's
    /// checkpoint) if given; each write is checked against the store and against the writes
    /// before it in the batch. One outcome per write, in order.
    async fn write_many(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Vec<Written>>;
    /// Commits every write and `setting` in one durable batch if every write holds, else
    /// nothing; the first refusal.
    async fn write_all(
        &self,
        writes: Vec<MemberWrite>,
        setting: Option<SettingWrite>,
    ) -> ServiceResult<Written>;
    async fn member_by_index(
        &self,
        tenant: &TenantId,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<Option<String>>;
    /// Up to `limit` members of the tenant whose profile holds the birthday index
    /// `birthday`, after member id `after`, in member id order.
    async fn birthday_members(
        &self,
        tenant: &TenantId,
        birthday: &[u8; 32],
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>>;
    /// Up to `limit` profiles of the tenant after member id `after`, in member id order.
    async fn profiles_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<StoredProfile>>;
    /// Up to `limit` facts rows of the tenant after member id `after`, in member id order.
    async fn facts_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Versioned<MemberFacts>>>;
    /// The tenant's order with this id, if recorded.
    async fn order(&self, tenant: &TenantId, order_id: &str) -> ServiceResult<Option<Order>>;
    /// The member's orders, newest first, at most `limit`, before order id `before`.
    async fn orders(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        before: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Order>>;
    async fn tenant_keys(&self, tenant: &TenantId) -> ServiceResult<Vec<StoredTenantKey>>;
    /// Adds a key version unless that version exists (false then).
    async fn add_tenant_key(&self, tenant: &TenantId, key: &StoredTenantKey)
    -> ServiceResult<bool>;
    /// A tenant's setting (`kind` such as "tier_policy", `name` within it).
    async fn setting(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
    ) -> ServiceResult<Option<Vec<u8>>>;
    async fn put_setting(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        value: Option<Vec<u8>>,
    ) -> ServiceResult<()>;
    /// Every setting of one kind: (name, value), by name.
    async fn settings(
        &self,
        tenant: &TenantId,
        kind: &str,
    ) -> ServiceResult<Vec<(String, Vec<u8>)>>;
    /// Adds members to generation `generation` of a segment's membership.
    async fn add_segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
        members: Vec<String>,
    ) -> ServiceResult<()>;
    /// Up to `limit` members of a segment's generation after `after`, in member id order.
    async fn segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>>;
    /// Deletes a generation of a segment's membership.
    async fn drop_segment_members(
        &self,
        tenant: &TenantId,
        segment: &str,
        generation: u64,
    ) -> ServiceResult<()>;
    /// Removes overwritten and deleted rows from the profiles' storage for good (after
    /// erasures: an LSM store keeps old versions until it compacts them away).
    async fn purge(&self) -> ServiceResult<()>;
    /// The tenants that have a key ring (every tenant with members).
    async fn tenants(&self) -> ServiceResult<Vec<String>>;
    /// Outbox events after `seq`, at most `limit`.
    async fn events_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>>;
    /// The last sequence number `reader` saved (0: none).
    async fn position(&self, reader: &str) -> ServiceResult<u64>;
    /// Saves `reader`'s position; durable when this returns.
    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()>;
    /// The newest position of the change log, at least `from` (a position known to be in
    /// it), for the publisher's backlog.
    async fn log_end(&self, from: u64) -> ServiceResult<u64>;
}
