//! The campaign service in this process: each request is parsed and checked as the gRPC
//! port would ([`crate::grpc::convert`]), then served by [`Campaigns`] directly.

use super::CampaignClient;
use super::campaigns;
use super::draws;
use super::mall;
use crate::grpc::convert;
use crate::service::Campaigns;
use crate::service::redeem::RedeemRequest;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::campaign::v1 as pb;
use std::sync::Arc;

/// The most codes one API call generates; a larger batch is `memberd coupons generate`.
pub const MAX_GENERATED_PER_CALL: u32 = 10_000;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// The campaign service of this process, as a client.
#[derive(Clone)]
pub struct InProcessCampaigns {
    campaigns: Arc<Campaigns>,
}

impl InProcessCampaigns {
    pub fn new(campaigns: Arc<Campaigns>) -> Self {
        Self { campaigns }
    }
}

fn redemption_ref(r: pb::RedemptionRef) -> ServiceResult<(TenantId, String)> {
    Ok((TenantId::parse(r.tenant_id)?, r.redemption_id))
}

fn claim_ref(r: pb::ClaimRef) -> ServiceResult<(TenantId, String, String)> {
    Ok((TenantId::parse(r.tenant_id)?, r.sale_id, r.claim_id))
}

#[async_trait]
impl CampaignClient for InProcessCampaigns {
    async fn put_template(&self, r: pb::PutTemplateRequest) -> ServiceResult<pb::Template> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let template = convert::template_in(&r.json)?;
        let saved = self
            .campaigns
            .put_template(&tenant, template, r.expected_version)
            .await?;
        Ok(convert::template(&saved))
    }

    async fn get_template(&self, r: pb::TemplateRef) -> ServiceResult<pb::Template> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let t = self.campaigns.template(&tenant, &r.template_id).await?;
        Ok(convert::template(&t))
    }

    async fn list_templates(&self, r: pb::TenantRef) -> ServiceResult<pb::Templates> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let templates = self.campaigns.templates(&tenant).await?;
        Ok(pb::Templates {
            templates: templates.iter().map(convert::template).collect(),
        })
    }

    async fn issue_coupon(&self, r: pb::IssueCouponRequest) -> ServiceResult<pb::Coupon> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let member = MemberId::parse(r.member_id)?;
        let coupon = self
            .campaigns
            .issue(&tenant, &r.template_id, &member, &r.issue_key)
            .await?;
        Ok(convert::coupon(coupon))
    }

    async fn issue_to_segment(
        &self,
        r: pb::IssueToSegmentRequest,
    ) -> ServiceResult<pb::IssueResult> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let issued = self
            .campaigns
            .issue_to_segment(&tenant, &r.template_id, &r.segment_code, &r.issue_key)
            .await?;
        Ok(convert::issued(issued))
    }

    async fn generate_codes(
        &self,
        r: pb::GenerateCodesRequest,
    ) -> ServiceResult<pb::GeneratedCodes> {
        let tenant = TenantId::parse(r.tenant_id)?;
        if !(1..=MAX_GENERATED_PER_CALL).contains(&r.count) {
            return Err(ServiceError::invalid(format!(
                "count: must be 1 to {MAX_GENERATED_PER_CALL} per call; \
                 `memberd coupons generate` makes larger batches"
            )));
        }
        let mut codes = Vec::with_capacity(r.count as usize);
        let issued = self
            .campaigns
            .generate(
                &tenant,
                &r.template_id,
                &r.batch,
                &r.prefix,
                r.count as usize,
                |done| codes.extend(done.iter().map(|c| c.code.clone())),
            )
            .await?;
        Ok(pb::GeneratedCodes {
            codes,
            added: issued.added,
            already: issued.already,
        })
    }

    async fn import_codes(&self, r: pb::ImportCodesRequest) -> ServiceResult<pb::IssueResult> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let issued = self
            .campaigns
            .import_codes(&tenant, &r.template_id, &r.batch, &r.codes)
            .await?;
        Ok(convert::issued(issued))
    }

    async fn get_coupon(&self, r: pb::CouponRef) -> ServiceResult<pb::Coupon> {
        let tenant = TenantId::parse(r.tenant_id)?;
        Ok(convert::coupon(
            self.campaigns.coupon(&tenant, &r.code).await?,
        ))
    }

    async fn list_member_coupons(
        &self,
        r: pb::ListMemberCouponsRequest,
    ) -> ServiceResult<pb::Coupons> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let member = MemberId::parse(r.member_id)?;
        let limit = match r.limit {
            0 => DEFAULT_PAGE,
            l if l > MAX_PAGE => {
                return Err(ServiceError::invalid(format!(
                    "limit must be at most {MAX_PAGE}"
                )));
            }
            l => l,
        };
        let after = Some(r.after.as_str()).filter(|a| !a.is_empty());
        let coupons = self
            .campaigns
            .member_coupons(&tenant, &member, after, limit as usize)
            .await?;
        Ok(pb::Coupons {
            coupons: coupons.into_iter().map(convert::coupon).collect(),
        })
    }

    async fn validate_cart(&self, r: pb::ValidateCartRequest) -> ServiceResult<pb::Validation> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let cart = convert::cart(r.cart)?;
        let validation = self.campaigns.validate(&tenant, &cart, &r.codes).await?;
        Ok(convert::validation(validation))
    }

    async fn redeem(&self, r: pb::RedeemRequest) -> ServiceResult<pb::RedemptionResult> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let request = RedeemRequest {
            cart: convert::cart(r.cart)?,
            codes: r.codes,
            redemption_id: r.redemption_id,
            order_id: r.order_id,
            hold_secs: Some(r.hold_secs).filter(|s| *s > 0),
        };
        Ok(convert::result(
            self.campaigns.redeem(&tenant, &request).await?,
        ))
    }

    async fn confirm_redemption(
        &self,
        r: pb::RedemptionRef,
    ) -> ServiceResult<pb::RedemptionResult> {
        let (tenant, id) = redemption_ref(r)?;
        Ok(convert::result(self.campaigns.confirm(&tenant, &id).await?))
    }

    async fn release_redemption(
        &self,
        r: pb::RedemptionRef,
    ) -> ServiceResult<pb::RedemptionResult> {
        let (tenant, id) = redemption_ref(r)?;
        Ok(convert::result(self.campaigns.release(&tenant, &id).await?))
    }

    async fn undo_redemption(&self, r: pb::RedemptionRef) -> ServiceResult<pb::RedemptionResult> {
        let (tenant, id) = redemption_ref(r)?;
        Ok(convert::result(self.campaigns.undo(&tenant, &id).await?))
    }

    async fn get_redemption(&self, r: pb::RedemptionRef) -> ServiceResult<pb::RedemptionResult> {
        let (tenant, id) = redemption_ref(r)?;
        let redemption = self.campaigns.redemption(&tenant, &id).await?;
        Ok(convert::result(crate::service::redeem::RedemptionResult {
            redemption,
            replayed: false,
        }))
    }

    async fn create_flash_sale(
        &self,
        r: pb::CreateFlashSaleRequest,
    ) -> ServiceResult<pb::FlashSale> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let sale = self
            .campaigns
            .create_sale(&tenant, convert::sale_in(&r.json)?)
            .await?;
        Ok(convert::sale(self.campaigns.sale(&tenant, &sale.id).await?))
    }

    async fn get_flash_sale(&self, r: pb::FlashSaleRef) -> ServiceResult<pb::FlashSale> {
        let tenant = TenantId::parse(r.tenant_id)?;
        Ok(convert::sale(
            self.campaigns.sale(&tenant, &r.sale_id).await?,
        ))
    }

    async fn claim_flash_sale(&self, r: pb::ClaimRequest) -> ServiceResult<pb::Claim> {
        let tenant = TenantId::parse(r.tenant_id)?;
        let member = MemberId::parse(r.member_id)?;
        let claim = self
            .campaigns
            .claim(&tenant, &r.sale_id, &r.claim_id, &member)
            .await?;
        Ok(convert::claim(claim))
    }

    async fn get_claim(&self, r: pb::ClaimRef) -> ServiceResult<pb::Claim> {
        let (tenant, sale, id) = claim_ref(r)?;
        let claim = self.campaigns.sale_claim(&tenant, &sale, &id).await?;
        Ok(convert::claim(claim))
    }

    async fn confirm_claim(&self, r: pb::ClaimRef) -> ServiceResult<pb::Claim> {
        let (tenant, sale, id) = claim_ref(r)?;
        let claim = self.campaigns.confirm_claim(&tenant, &sale, &id).await?;
        Ok(convert::claim(claim))
    }

    async fn release_claim(&self, r: pb::ClaimRef) -> ServiceResult<pb::Claim> {
        let (tenant, sale, id) = claim_ref(r)?;
        let claim = self.campaigns.release_claim(&tenant, &sale, &id).await?;
        Ok(convert::claim(claim))
    }

    async fn save_campaign(
        &self,
        r: pb::SaveCampaignRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        campaigns::save(&self.campaigns, r).await
    }

    async fn get_campaign(&self, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument> {
        campaigns::get(&self.campaigns, r).await
    }

    async fn list_campaigns(&self, r: pb::TenantRef) -> ServiceResult<pb::CampaignDocuments> {
        campaigns::list(&self.campaigns, r).await
    }

    async fn change_campaign(
        &self,
        r: pb::ChangeCampaignRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        campaigns::change(&self.campaigns, r).await
    }

    async fn decide_campaign(
        &self,
        r: pb::DecideCampaignRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        campaigns::decide(&self.campaigns, r).await
    }

    async fn dry_run_campaign(&self, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument> {
        campaigns::dry_run(&self.campaigns, r).await
    }

    async fn get_campaign_results(
        &self,
        r: pb::CampaignRef,
    ) -> ServiceResult<pb::CampaignDocument> {
        campaigns::results(&self.campaigns, r).await
    }

    async fn check_in(&self, r: pb::CheckInRequest) -> ServiceResult<pb::CampaignDocument> {
        campaigns::check_in(&self.campaigns, r).await
    }

    async fn get_referral_code(
        &self,
        r: pb::MemberReferralsRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        campaigns::referral_code(&self.campaigns, r).await
    }

    async fn refer(&self, r: pb::ReferRequest) -> ServiceResult<pb::CampaignDocument> {
        campaigns::refer(&self.campaigns, r).await
    }

    async fn sweep_birthdays(&self, r: pb::TenantRef) -> ServiceResult<pb::CampaignDocument> {
        campaigns::sweep_birthdays(&self.campaigns, r).await
    }

    async fn list_referrals(
        &self,
        r: pb::MemberReferralsRequest,
    ) -> ServiceResult<pb::CampaignDocuments> {
        campaigns::referrals(&self.campaigns, r).await
    }

    async fn put_mall_item(
        &self,
        r: pb::PutMallItemRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        mall::put_item(&self.campaigns, r).await
    }

    async fn get_mall_item(&self, r: pb::MallItemRef) -> ServiceResult<pb::CampaignDocument> {
        mall::get_item(&self.campaigns, r).await
    }

    async fn list_mall_items(
        &self,
        r: pb::ListMallItemsRequest,
    ) -> ServiceResult<pb::CampaignDocuments> {
        mall::list_items(&self.campaigns, r).await
    }

    async fn place_mall_order(
        &self,
        r: pb::PlaceMallOrderRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        mall::place(&self.campaigns, r).await
    }

    async fn get_mall_order(&self, r: pb::MallOrderRef) -> ServiceResult<pb::CampaignDocument> {
        mall::get_order(&self.campaigns, r).await
    }

    async fn change_mall_order(
        &self,
        r: pb::ChangeMallOrderRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        mall::change(&self.campaigns, r).await
    }

    async fn create_lucky_draw(
        &self,
        r: pb::CreateLuckyDrawRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        draws::create(&self.campaigns, r).await
    }

    async fn get_lucky_draw(&self, r: pb::LuckyDrawRef) -> ServiceResult<pb::CampaignDocument> {
        draws::get(&self.campaigns, r).await
    }

    async fn enter_lucky_draw(
        &self,
        r: pb::EnterLuckyDrawRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        draws::enter(&self.campaigns, r).await
    }

    async fn get_draw_entry(&self, r: pb::DrawEntryRef) -> ServiceResult<pb::CampaignDocument> {
        draws::entry(&self.campaigns, r).await
    }

    async fn broadcast_campaign(&self, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument> {
        campaigns::broadcast(&self.campaigns, r).await
    }

    async fn reward_member(
        &self,
        r: pb::RewardMemberRequest,
    ) -> ServiceResult<pb::CampaignDocument> {
        campaigns::reward(&self.campaigns, r).await
    }
}
