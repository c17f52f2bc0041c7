//! How other services and the gateway call the campaign service: one trait,
//! [`CampaignClient`], in the `campaign.v1` messages, with an implementation in this process
//! ([`InProcessCampaigns`]) and one over gRPC ([`GrpcCampaignClient`]). A caller cannot tell
//! which it has. Access is checked once, at the edge a request came in by.

mod campaigns;
mod draws;
mod grpc;
mod in_process;
mod mall;

pub use grpc::GrpcCampaignClient;
pub use in_process::InProcessCampaigns;

use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::campaign::v1 as pb;

/// Every method of `campaign.v1.CampaignService`.
#[async_trait]
pub trait CampaignClient: Send + Sync + 'static {
    async fn put_template(&self, r: pb::PutTemplateRequest) -> ServiceResult<pb::Template>;
    async fn get_template(&self, r: pb::TemplateRef) -> ServiceResult<pb::Template>;
    async fn list_templates(&self, r: pb::TenantRef) -> ServiceResult<pb::Templates>;
    async fn issue_coupon(&self, r: pb::IssueCouponRequest) -> ServiceResult<pb::Coupon>;
    async fn issue_to_segment(
        &self,
        r: pb::IssueToSegmentRequest,
    ) -> ServiceResult<pb::IssueResult>;
    async fn generate_codes(
        &self,
        r: pb::GenerateCodesRequest,
    ) -> ServiceResult<pb::GeneratedCodes>;
    async fn import_codes(&self, r: pb::ImportCodesRequest) -> ServiceResult<pb::IssueResult>;
    async fn get_coupon(&self, r: pb::CouponRef) -> ServiceResult<pb::Coupon>;
    async fn list_member_coupons(
        &self,
        r: pb::ListMemberCouponsRequest,
    ) -> ServiceResult<pb::Coupons>;
    async fn validate_cart(&self, r: pb::ValidateCartRequest) -> ServiceResult<pb::Validation>;
    async fn redeem(&self, r: pb::RedeemRequest) -> ServiceResult<pb::RedemptionResult>;
    async fn confirm_redemption(&self, r: pb::RedemptionRef)
    -> ServiceResult<pb::RedemptionResult>;
    async fn release_redemption(&self, r: pb::RedemptionRef)
    -> ServiceResult<pb::RedemptionResult>;
    async fn undo_redemption(&self, r: pb::RedemptionRef) -> ServiceResult<pb::RedemptionResult>;
    async fn get_redemption(&self, r: pb::RedemptionRef) -> ServiceResult<pb::RedemptionResult>;
    async fn create_flash_sale(
        &self,
        r: pb::CreateFlashSaleRequest,
    ) -> ServiceResult<pb::FlashSale>;
    async fn get_flash_sale(&self, r: pb::FlashSaleRef) -> ServiceResult<pb::FlashSale>;
    async fn claim_flash_sale(&self, r: pb::ClaimRequest) -> ServiceResult<pb::Claim>;
    async fn get_claim(&self, r: pb::ClaimRef) -> ServiceResult<pb::Claim>;
    async fn confirm_claim(&self, r: pb::ClaimRef) -> ServiceResult<pb::Claim>;
    async fn release_claim(&self, r: pb::ClaimRef) -> ServiceResult<pb::Claim>;
    async fn save_campaign(
        &self,
        r: pb::SaveCampaignRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn get_campaign(&self, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument>;
    async fn list_campaigns(&self, r: pb::TenantRef) -> ServiceResult<pb::CampaignDocuments>;
    async fn change_campaign(
        &self,
        r: pb::ChangeCampaignRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn decide_campaign(
        &self,
        r: pb::DecideCampaignRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn dry_run_campaign(&self, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument>;
    async fn get_campaign_results(&self, r: pb::CampaignRef)
    -> ServiceResult<pb::CampaignDocument>;
    async fn broadcast_campaign(&self, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument>;
    async fn reward_member(
        &self,
        r: pb::RewardMemberRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn check_in(&self, r: pb::CheckInRequest) -> ServiceResult<pb::CampaignDocument>;
    async fn get_referral_code(
        &self,
        r: pb::MemberReferralsRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn refer(&self, r: pb::ReferRequest) -> ServiceResult<pb::CampaignDocument>;
    async fn sweep_birthdays(&self, r: pb::TenantRef) -> ServiceResult<pb::CampaignDocument>;
    async fn list_referrals(
        &self,
        r: pb::MemberReferralsRequest,
    ) -> ServiceResult<pb::CampaignDocuments>;
    async fn put_mall_item(&self, r: pb::PutMallItemRequest)
    -> ServiceResult<pb::CampaignDocument>;
    async fn get_mall_item(&self, r: pb::MallItemRef) -> ServiceResult<pb::CampaignDocument>;
    async fn list_mall_items(
        &self,
        r: pb::ListMallItemsRequest,
    ) -> ServiceResult<pb::CampaignDocuments>;
    async fn place_mall_order(
        &self,
        r: pb::PlaceMallOrderRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn get_mall_order(&self, r: pb::MallOrderRef) -> ServiceResult<pb::CampaignDocument>;
    async fn change_mall_order(
        &self,
        r: pb::ChangeMallOrderRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn create_lucky_draw(
        &self,
        r: pb::CreateLuckyDrawRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn get_lucky_draw(&self, r: pb::LuckyDrawRef) -> ServiceResult<pb::CampaignDocument>;
    async fn enter_lucky_draw(
        &self,
        r: pb::EnterLuckyDrawRequest,
    ) -> ServiceResult<pb::CampaignDocument>;
    async fn get_draw_entry(&self, r: pb::DrawEntryRef) -> ServiceResult<pb::CampaignDocument>;
}
