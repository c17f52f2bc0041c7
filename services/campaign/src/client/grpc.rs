//! The campaign service in another process, over its gRPC port. Every write is keyed (a
//! template by its version, an issue by its key, a redemption, a flash sale or a claim by its
//! id) or moves a redemption or a claim to a state it stays in, so every method is retried
//! when the service was unreachable or overloaded ([`retry_idempotent`]). A retried claim
//! answers with the claim made the first time, never a second unit; a retried step of a
//! campaign (a save at a version, a submission, a decision) answers with the campaign as the
//! first one left it, and a reward is keyed.

use super::CampaignClient;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_proto::campaign::v1 as pb;
use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use loyalty_proto::transport::{Transport, retry_idempotent};

/// A client of the campaign service's replicas behind `transport`.
#[derive(Clone)]
pub struct GrpcCampaignClient {
    client: CampaignServiceClient<Transport>,
}

impl GrpcCampaignClient {
    pub fn new(transport: Transport) -> Self {
        Self {
            client: CampaignServiceClient::new(transport),
        }
    }
}

/// Each method calls its RPC, retried when the service could not be reached.
macro_rules! retried {
    ($($method:ident($request:ty) -> $reply:ty;)*) => {
        #[async_trait]
        impl CampaignClient for GrpcCampaignClient {
            $(
                async fn $method(&self, r: $request) -> ServiceResult<$reply> {
                    let reply = retry_idempotent(|| {
                        let mut client = self.client.clone();
                        let request = r.clone();
                        async move { client.$method(request).await }
                    })
                    .await?;
                    Ok(reply.into_inner())
                }
            )*
        }
    };
}

retried! {
    put_template(pb::PutTemplateRequest) -> pb::Template;
    get_template(pb::TemplateRef) -> pb::Template;
    list_templates(pb::TenantRef) -> pb::Templates;
    issue_coupon(pb::IssueCouponRequest) -> pb::Coupon;
    issue_to_segment(pb::IssueToSegmentRequest) -> pb::IssueResult;
    generate_codes(pb::GenerateCodesRequest) -> pb::GeneratedCodes;
    import_codes(pb::ImportCodesRequest) -> pb::IssueResult;
    get_coupon(pb::CouponRef) -> pb::Coupon;
    list_member_coupons(pb::ListMemberCouponsRequest) -> pb::Coupons;
    validate_cart(pb::ValidateCartRequest) -> pb::Validation;
    redeem(pb::RedeemRequest) -> pb::RedemptionResult;
    confirm_redemption(pb::RedemptionRef) -> pb::RedemptionResult;
    release_redemption(pb::RedemptionRef) -> pb::RedemptionResult;
    undo_redemption(pb::RedemptionRef) -> pb::RedemptionResult;
    get_redemption(pb::RedemptionRef) -> pb::RedemptionResult;
    create_flash_sale(pb::CreateFlashSaleRequest) -> pb::FlashSale;
    get_flash_sale(pb::FlashSaleRef) -> pb::FlashSale;
    claim_flash_sale(pb::ClaimRequest) -> pb::Claim;
    get_claim(pb::ClaimRef) -> pb::Claim;
    confirm_claim(pb::ClaimRef) -> pb::Claim;
    release_claim(pb::ClaimRef) -> pb::Claim;
    save_campaign(pb::SaveCampaignRequest) -> pb::CampaignDocument;
    get_campaign(pb::CampaignRef) -> pb::CampaignDocument;
    list_campaigns(pb::TenantRef) -> pb::CampaignDocuments;
    change_campaign(pb::ChangeCampaignRequest) -> pb::CampaignDocument;
    decide_campaign(pb::DecideCampaignRequest) -> pb::CampaignDocument;
    dry_run_campaign(pb::CampaignRef) -> pb::CampaignDocument;
    get_campaign_results(pb::CampaignRef) -> pb::CampaignDocument;
    broadcast_campaign(pb::CampaignRef) -> pb::CampaignDocument;
    reward_member(pb::RewardMemberRequest) -> pb::CampaignDocument;
    check_in(pb::CheckInRequest) -> pb::CampaignDocument;
    get_referral_code(pb::MemberReferralsRequest) -> pb::CampaignDocument;
    sweep_birthdays(pb::TenantRef) -> pb::CampaignDocument;
    refer(pb::ReferRequest) -> pb::CampaignDocument;
    list_referrals(pb::MemberReferralsRequest) -> pb::CampaignDocuments;
    put_mall_item(pb::PutMallItemRequest) -> pb::CampaignDocument;
    get_mall_item(pb::MallItemRef) -> pb::CampaignDocument;
    list_mall_items(pb::ListMallItemsRequest) -> pb::CampaignDocuments;
    place_mall_order(pb::PlaceMallOrderRequest) -> pb::CampaignDocument;
    get_mall_order(pb::MallOrderRef) -> pb::CampaignDocument;
    change_mall_order(pb::ChangeMallOrderRequest) -> pb::CampaignDocument;
    create_lucky_draw(pb::CreateLuckyDrawRequest) -> pb::CampaignDocument;
    get_lucky_draw(pb::LuckyDrawRef) -> pb::CampaignDocument;
    enter_lucky_draw(pb::EnterLuckyDrawRequest) -> pb::CampaignDocument;
    get_draw_entry(pb::DrawEntryRef) -> pb::CampaignDocument;
}
