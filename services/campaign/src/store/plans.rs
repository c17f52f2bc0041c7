//! The campaigns half of the campaign store's port: a campaign's record (written whole,
//! conditionally on its version) with its budget counters, its grants, and its members'
//! counts per cap period. A grant and the counters it moves are one write, so a budget is
//! never overspent and a cap never passed, however many grants race.

use crate::campaign::CampaignRecord;
use crate::campaign::grant::{Grant, GrantState};
use crate::events::CampaignEvent;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

/// How a new grant ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    Yes,
    /// A grant with this key exists (the stored one).
    Exists(Box<Grant>),
    /// The budget has fewer units left than the grant takes: nothing was written.
    BudgetExhausted,
    /// The member has as many grants in the period as the cap allows: nothing was written.
    CapReached,
    NoCampaign,
}

/// How a change of a grant's state ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSettled {
    Yes(Box<Grant>),
    NotFrom(Box<Grant>),
    Missing,
}

#[async_trait]
pub trait PlanRepository: Send + Sync + 'static {
    /// Writes `record` if the stored one is at `record.version - 1` (none for version 1),
    /// keeping the stored budget counters; false if another write came first.
    async fn put_campaign(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<bool>;
    async fn campaign(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<CampaignRecord>>;
    async fn campaigns(&self, tenant: &TenantId) -> ServiceResult<Vec<CampaignRecord>>;
    /// Every tenant that has written a campaign, for the sweeps that look for triggers.
    async fn campaign_tenants(&self) -> ServiceResult<Vec<String>>;
    /// The member's grant under `key` (keys are the caller's, per member: `birthday-2027`).
    async fn grant_of(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        key: &str,
    ) -> ServiceResult<Option<Grant>>;
    /// Stores a new reserved grant, if the member has no grant of the campaign under its key, the budget has
    /// its units left and the member has fewer than `cap` grants in its period (`cap` None:
    /// no cap), all at once with `events`. A grant held out at once is stored as it is,
    /// taking no budget and no place under the cap.
    async fn grant(
        &self,
        grant: &Grant,
        cap: Option<u32>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Granted>;
    /// Moves a reserved grant to `to` at `at_ms`: confirmed (its units spent) or released
    /// (its units and its place under the cap given back), with `paid_with` and `events`.
    #[allow(clippy::too_many_arguments)] // One write: every part of it is named.
    async fn settle_grant(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        key: &str,
        to: GrantState,
        at_ms: i64,
        paid_with: Option<String>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<GrantSettled>;
    /// Grants of every tenant still reserved that were made before `before_ms` (cut short
    /// by a crash or a failed reward), at most `limit`, oldest first.
    async fn reserved_grants(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Grant>>;
}
