//! The campaign service's storage port, shaped like the ScyllaDB tables it is to have:
//!
//! - `templates`: a row per tenant and template, written conditionally on its version;
//! - `coupons`: a partition per tenant and code (codes are unique per tenant), and a
//!   member's coupons by member; an issue key claimed with the coupon, so a retried issue
//!   finds the coupon it made;
//! - `usage`: the counters the limits read (per code, per template and member, per
//!   template), moved only by a redemption's change of state, in the same commit;
//! - `redemptions`: a row per redemption id (the caller's idempotency key);
//! - `expiry`: member coupons by the time they lapse, read by the expiring-soon sweep, with
//!   its cursor;
//! - `changes`: the outbox of campaign events, in commit order, with readers' positions;
//! - campaigns and their grants ([`PlanRepository`]), their results and links
//!   ([`ResultRepository`]), referrals ([`ReferralRepository`]), check-ins
//!   ([`CheckInRepository`]), flash sales ([`SaleRepository`]), the points mall's items and
//!   orders ([`MallRepository`]), lucky draws and their entries ([`DrawRepository`]).
//!
//! Every write commits all or nothing with its events. The embedded adapter
//! ([`EmbeddedCampaignStore`]) keeps them in fjall; the conformance suite
//! (`store::conformance`) states the behaviour every adapter must have.

use crate::coupon::{Coupon, Redemption, RedemptionState, Usage};
use crate::events::{CampaignEvent, LoggedEvent};
use crate::template::CouponTemplate;
use async_trait::async_trait;
use loyalty_common::error::{ServiceError, ServiceResult};
use loyalty_common::ids::TenantId;
use serde::{Deserialize, Serialize};

pub mod check_ins;
#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "cql")]
pub mod cql;
pub mod draws;
mod embedded;
pub mod mall;
mod plans;
mod referrals;
mod results;
mod sales;
pub use check_ins::{CheckInRepository, CheckedIn};
pub use draws::{DrawRepository, Entered, EntrySettled};
pub use embedded::EmbeddedCampaignStore;
pub use mall::{ItemWritten, MallRepository, OrderSettled, Placed};
pub use plans::{GrantSettled, Granted, PlanRepository};
pub use referrals::ReferralRepository;
pub use results::ResultRepository;
pub use sales::{ClaimSettled, Claimed, SaleRepository};

/// A value with the version it was written at (the first write is version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// A coupon to add, with the key its issue is known by (a retried issue finds it) and the
/// event written if it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    pub coupon: Coupon,
    pub issue_key: Option<String>,
    /// Its events (`coupon_issued`, and `coupon_expiring_soon` for one issued within the
    /// notice), written with it.
    pub events: Vec<CampaignEvent>,
}

/// What became of one coupon to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    Yes,
    /// The tenant has a coupon with this code.
    CodeTaken,
    /// The issue key was used: the coupon it added.
    IssuedAlready(Coupon),
}

/// The limits a redemption is checked against for one of its coupons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub code: String,
    pub template: String,
    pub uses_per_code: u32,
    pub per_member_limit: Option<u32>,
    pub total_limit: Option<u64>,
}

/// Which limit refused a redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReached {
    Code,
    Member,
    Total,
}

/// How a new redemption ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Yes,
    /// A redemption with this id exists (the stored one).
    Exists(Box<Redemption>),
    /// A limit is reached for this code: nothing was written.
    Refused(String, LimitReached),
    /// An earlier attempt at this id is still pending (a store that records in steps):
    /// nothing was written; [`CampaignStore::resume_redemption`] finishes it.
    Pending(Box<Redemption>),
}

/// How a change of a redemption's state ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Moved: the redemption as it is now.
    Yes(Box<Redemption>),
    /// Not in the state the change starts from: the redemption as it is.
    NotFrom(Box<Redemption>),
    Missing,
}

/// Where the expiring-soon sweep has got to: the last coupon it announced, in the order of
/// their lapse time, tenant and code.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpiryCursor {
    pub until_ms: i64,
    pub tenant: String,
    pub code: String,
}

/// The expiring-soon sweep's cursor in one region.
pub const EXPIRY: &str = "expiry";

/// Which tenants' work a sweep in the store does: in two regions, those homed in this one.
pub type TenantFilter<'a> = dyn Fn(&str) -> bool + Send + Sync + 'a;

/// Coupons, redemptions and the outbox; flash sales through [`SaleRepository`].
#[async_trait]
pub trait CampaignRepository:
    SaleRepository
    + MallRepository
    + DrawRepository
    + PlanRepository
    + ResultRepository
    + ReferralRepository
    + CheckInRepository
    + Send
    + Sync
    + 'static
{
    async fn template(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> ServiceResult<Option<Versioned<CouponTemplate>>>;
    /// Every template of the tenant, by id.
    async fn templates(&self, tenant: &TenantId) -> ServiceResult<Vec<Versioned<CouponTemplate>>>;
    /// Writes the template if the stored version is `version - 1` (0: none); false if not.
    async fn put_template(
        &self,
        tenant: &TenantId,
        template: &Versioned<CouponTemplate>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<bool>;
    /// Adds every coupon that holds (its code free in the tenant, its issue key unused,
    /// also among those before it) with its event, in one durable batch with `events`; one
    /// outcome per coupon, in order.
    async fn add_coupons(
        &self,
        tenant: &TenantId,
        coupons: Vec<NewCoupon>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Vec<Added>>;
    async fn coupon(&self, tenant: &TenantId, code: &str) -> ServiceResult<Option<Coupon>>;
    /// A member's coupons (held by the member id), by code, at most `limit` after `after`.
    async fn member_coupons(
        &self,
        tenant: &TenantId,
        member: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<Coupon>>;
    /// The counters the limits of `code` (of `template`) read for `member`.
    async fn usage(
        &self,
        tenant: &TenantId,
        template: &str,
        code: &str,
        member: &str,
    ) -> ServiceResult<Usage>;
    async fn redemption(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<Redemption>>;
    /// The redemption with this id being recorded and not visible yet, if there is one: a
    /// store that records one in steps (the CQL store's saga) has counted some of its uses.
    /// An attempt cut off part-way (its caller's deadline, or its region lost) leaves one for
    /// its retry to find and finish ([`CampaignStore::resume_redemption`]).
    async fn pending_redemption(
        &self,
        _tenant: &TenantId,
        _id: &str,
    ) -> ServiceResult<Option<Redemption>> {
        Ok(None)
    }
    /// Finishes recording `redemption`, found pending: counts the uses not counted yet (each
    /// once, whoever else is finishing it) unless a limit of `limits` would be passed, then
    /// stores it with `events`. A limit reached leaves it pending, for the recovery sweep to
    /// undo. Only a store that records in steps has anything to resume.
    async fn resume_redemption(
        &self,
        redemption: &Redemption,
        _limits: &[Limit],
        _events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed> {
        Err(ServiceError::internal(format!(
            "redemption {}: this store records a redemption at once, never pending",
            redemption.id
        )))
    }
    /// Stores a new redemption (held or redeemed) and counts its uses, if no redemption has
    /// its id and no limit of `limits` would be passed, all at once with `events`.
    async fn redeem(
        &self,
        redemption: &Redemption,
        limits: &[Limit],
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Redeemed>;
    /// Moves a redemption from `from` to `to` (giving its uses back when `to` does not
    /// count), at `at_ms`, with `events`.
    async fn settle(
        &self,
        tenant: &TenantId,
        id: &str,
        from: RedemptionState,
        to: RedemptionState,
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Settled>;
    /// Held redemptions of every tenant whose hold lapsed before `before_ms`, at most
    /// `limit`, oldest first.
    async fn lapsed_holds(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Redemption>>;
    /// Member-held coupons of every tenant after `after` and lapsing at or before
    /// `until_ms`, at most `limit`, in cursor order (with their tenant).
    async fn coupons_lapsing(
        &self,
        after: &ExpiryCursor,
        until_ms: i64,
        limit: usize,
    ) -> ServiceResult<Vec<(String, Coupon)>>;
    /// Finishes or undoes the writes cut short (a crash mid-saga) that started before
    /// `older_than_ms`, of the tenants `here` says are this process's (in two regions, those
    /// homed in its region); how many. A store whose writes are each one commit has none.
    async fn recover(&self, older_than_ms: i64, here: &TenantFilter<'_>) -> ServiceResult<u64> {
        let _ = (older_than_ms, here);
        Ok(0)
    }
    /// The expiring-soon sweep's cursor named `name` ([`EXPIRY`] in one region,
    /// `expiry@<region>` in two); the start before the first is saved.
    async fn expiry_cursor(&self, name: &str) -> ServiceResult<ExpiryCursor>;
    /// Saves the expiring-soon sweep's cursor named `name` with the events it announced, at
    /// once.
    async fn advance_expiry(
        &self,
        name: &str,
        cursor: ExpiryCursor,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<()>;
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
