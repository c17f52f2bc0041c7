//! The referrals half of the campaign store's port: members' referral codes (unique per
//! tenant, one per member), the blind indexes members presented (to refuse self-referral
//! by another account), and referrals, one per referee and campaign, with each referrer's
//! count of rewarded referrals moved in the same write as the referral, so a cap is never
//! passed however many referees qualify at once.

use crate::events::CampaignEvent;
use crate::referral::{Referral, ReferralMoved, Referred};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

#[async_trait]
pub trait ReferralRepository: Send + Sync + 'static {
    /// The member's referral code if it has one; else `code`, claimed for the member; None
    /// if `code` is another member's (draw another).
    async fn claim_referral_code(
        &self,
        tenant: &TenantId,
        member: &str,
        code: &str,
    ) -> ServiceResult<Option<String>>;
    async fn referral_code(&self, tenant: &TenantId, member: &str)
    -> ServiceResult<Option<String>>;
    /// The member holding referral code `code`.
    async fn code_holder(&self, tenant: &TenantId, code: &str) -> ServiceResult<Option<String>>;
    /// Keeps that `member` presented `fingerprints` (blind indexes); the other members that
    /// presented any of them before, by id.
    async fn remember_fingerprints(
        &self,
        tenant: &TenantId,
        member: &str,
        fingerprints: &[String],
    ) -> ServiceResult<Vec<String>>;
    /// Drops every fingerprint `member` presented (its erasure).
    async fn forget_fingerprints(&self, tenant: &TenantId, member: &str) -> ServiceResult<()>;
    /// Stores a new pending referral, if its referee has none in its campaign, with `events`.
    async fn refer(
        &self,
        referral: &Referral,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Referred>;
    /// The referee's referrals, in every campaign.
    async fn referrals_of(&self, tenant: &TenantId, referee: &str) -> ServiceResult<Vec<Referral>>;
    /// Moves a pending referral to qualified by `order` (at `order_ms`), rewarding the
    /// referrer if it has fewer than `cap` rewarded referrals in the campaign (counting this
    /// one when it does), at `at_ms`, with `events`.
    #[allow(clippy::too_many_arguments)] // One write: every part of it is named.
    async fn qualify_referral(
        &self,
        tenant: &TenantId,
        campaign: &str,
        referee: &str,
        order: &str,
        order_ms: i64,
        cap: Option<u32>,
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ReferralMoved>;
    /// Moves a qualified referral to reversed, taking back `taken_back` points (referrer,
    /// referee) and giving the referrer's place under the cap back, at `at_ms`, with `events`.
    async fn reverse_referral(
        &self,
        tenant: &TenantId,
        campaign: &str,
        referee: &str,
        taken_back: [i64; 2],
        at_ms: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ReferralMoved>;
}
