//! The flash-sale half of the campaign store's port: a sale with the units taken from each
//! quota, its members' counts and its claims, all moved together by one write per claim.

use crate::events::CampaignEvent;
use crate::sale::{Claim, ClaimState, FlashSale, SaleState};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

/// How a new claim ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    Yes,
    /// A claim with this id exists (the stored one).
    Exists(Box<Claim>),
    /// Its quota is taken: nothing was written.
    SoldOut,
    /// The member holds or bought the sale's limit: nothing was written.
    MemberLimit,
    NoSale,
}

/// How a change of a claim's state ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSettled {
    /// Moved: the claim as it is now.
    Yes(Box<Claim>),
    /// Not in the state the change starts from: the claim as it is.
    NotFrom(Box<Claim>),
    Missing,
}

#[async_trait]
pub trait SaleRepository: Send + Sync + 'static {
    /// Stores a new sale with `events`; the stored one instead if its id is taken.
    async fn create_sale(
        &self,
        tenant: &TenantId,
        sale: &FlashSale,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Option<FlashSale>>;
    async fn sale(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<SaleState>>;
    async fn claim_of(
        &self,
        tenant: &TenantId,
        sale: &str,
        id: &str,
    ) -> ServiceResult<Option<Claim>>;
    /// Stores a new held claim, if no claim of the sale has its id, its quota has a unit
    /// left and its member is under the sale's limit, all at once with `events`.
    async fn claim(&self, claim: &Claim, events: Vec<CampaignEvent>) -> ServiceResult<Claimed>;
    /// Moves a claim from `from` to `to` (giving its unit back when `to` does not count), at
    /// `at_ms`, with `coupon` (the code issued on confirming) and `events`.
    #[allow(clippy::too_many_arguments)] // One write: every part of it is named.
    async fn settle_claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        id: &str,
        (from, to): (ClaimState, ClaimState),
        at_ms: i64,
        coupon: Option<String>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ClaimSettled>;
    /// Held claims of every tenant whose hold lapsed before `before_ms`, at most `limit`,
    /// oldest first.
    async fn lapsed_claims(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Claim>>;
}
