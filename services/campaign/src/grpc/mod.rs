//! The `campaign.v1` gRPC port: each method hands its request to the campaign service's
//! in-process client, which parses and serves it; errors keep their stable codes
//! (`x-error-code`). Who may call what is checked in front of the service, once per call
//! ([`crate::grpc_access`]).

pub mod convert;

use crate::client::{CampaignClient, InProcessCampaigns};
use crate::service::Campaigns;
use loyalty_proto::campaign::v1 as pb;
use loyalty_proto::campaign::v1::campaign_service_server::{
    CampaignService, CampaignServiceServer,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The gRPC face of the campaign service.
#[derive(Clone)]
pub struct CampaignGrpc {
    campaigns: InProcessCampaigns,
}

impl CampaignGrpc {
    pub fn new(campaigns: Arc<Campaigns>) -> Self {
        Self {
            campaigns: InProcessCampaigns::new(campaigns),
        }
    }

    /// The tonic service, ready to mount behind [`crate::grpc_access::guard`].
    pub fn into_server(self) -> CampaignServiceServer<Self> {
        CampaignServiceServer::new(self)
    }
}

/// Serves each method by the in-process client.
macro_rules! serve {
    ($($method:ident($request:ty) -> $reply:ty;)*) => {
        #[tonic::async_trait]
        impl CampaignService for CampaignGrpc {
            $(
                async fn $method(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$reply>, Status> {
                    let reply = self.campaigns.$method(request.into_inner()).await?;
                    Ok(Response::new(reply))
                }
            )*
        }
    };
}

serve! {
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
