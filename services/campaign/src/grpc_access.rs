//! Who may call which `campaign.v1` method from another process: the table below, checked
//! for every call by the guard in front of the gRPC service
//! ([`loyalty_identity::grpc_guard`]), with the same permissions as the REST routes. Writes
//! are recorded in the audit log there.

use loyalty_identity::checks::CallerChecks;
use loyalty_identity::grpc_guard::{GuardLayer, Rpc};
use loyalty_identity::permissions as p;
use loyalty_identity::rpc;
use loyalty_proto::campaign::v1 as pb;
use std::sync::Arc;

/// The full service name, which prefixes the actions of audited writes.
const SERVICE: &str = "campaign.v1.CampaignService";

fn tenant(tenant: String) -> (String, String) {
    (tenant, String::new())
}

/// The tenant and the audit target `kind:tenant/id`.
fn target(tenant: String, kind: &str, id: &str) -> (String, String) {
    let target = format!("{kind}:{tenant}/{id}");
    (tenant, target)
}

fn redemption(r: pb::RedemptionRef) -> (String, String) {
    target(r.tenant_id, "redemption", &r.redemption_id)
}

/// A claim is named by its sale and its id: claim ids are unique per sale only.
fn claim(tenant: String, sale: &str, claim: &str) -> (String, String) {
    target(tenant, "flash-sale-claim", &format!("{sale}/{claim}"))
}

fn claim_ref(r: pb::ClaimRef) -> (String, String) {
    claim(r.tenant_id, &r.sale_id, &r.claim_id)
}

fn mall_order(tenant: String, item: &str, order: &str) -> (String, String) {
    target(tenant, "mall_order", &format!("{item}/{order}"))
}

fn campaign_ref(r: pb::CampaignRef) -> (String, String) {
    target(r.tenant_id, "campaign", &r.campaign_id)
}

/// Every method of `campaign.v1.CampaignService`, the permission it needs and its scope.
pub const RPCS: &[Rpc] = &[
    rpc!(
        "PutTemplate",
        p::COUPONS_WRITE,
        pb::PutTemplateRequest,
        |r| {
            let id = serde_json::from_str::<serde_json::Value>(&r.json)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            target(r.tenant_id, "coupon-template", &id)
        }
    ),
    rpc!("GetTemplate", p::COUPONS_READ, pb::TemplateRef, |r| tenant(
        r.tenant_id
    )),
    rpc!("ListTemplates", p::COUPONS_READ, pb::TenantRef, |r| tenant(
        r.tenant_id
    )),
    rpc!(
        "IssueCoupon",
        p::COUPONS_WRITE,
        pb::IssueCouponRequest,
        |r| { target(r.tenant_id, "member", &r.member_id) }
    ),
    rpc!(
        "IssueToSegment",
        p::COUPONS_WRITE,
        pb::IssueToSegmentRequest,
        |r| { target(r.tenant_id, "segment", &r.segment_code) }
    ),
    rpc!(
        "GenerateCodes",
        p::COUPONS_WRITE,
        pb::GenerateCodesRequest,
        |r| { target(r.tenant_id, "coupon-batch", &r.batch) }
    ),
    rpc!(
        "ImportCodes",
        p::COUPONS_WRITE,
        pb::ImportCodesRequest,
        |r| { target(r.tenant_id, "coupon-batch", &r.batch) }
    ),
    rpc!("GetCoupon", p::COUPONS_READ, pb::CouponRef, |r| tenant(
        r.tenant_id
    )),
    rpc!(
        "ListMemberCoupons",
        p::COUPONS_READ,
        pb::ListMemberCouponsRequest,
        |r| { tenant(r.tenant_id) }
    ),
    rpc!(
        "ValidateCart",
        p::COUPONS_READ,
        pb::ValidateCartRequest,
        |r| tenant(r.tenant_id)
    ),
    rpc!("Redeem", p::REDEEM, pb::RedeemRequest, |r| {
        target(r.tenant_id, "redemption", &r.redemption_id)
    }),
    rpc!("ConfirmRedemption", p::REDEEM, pb::RedemptionRef, |r| {
        redemption(r)
    }),
    rpc!("ReleaseRedemption", p::REDEEM, pb::RedemptionRef, |r| {
        redemption(r)
    }),
    rpc!("UndoRedemption", p::REDEEM, pb::RedemptionRef, |r| {
        redemption(r)
    }),
    rpc!("GetRedemption", p::COUPONS_READ, pb::RedemptionRef, |r| {
        tenant(r.tenant_id)
    }),
    // Head office sets flash sales up; tills and e-shops claim, as they redeem.
    rpc!(
        "CreateFlashSale",
        p::SALES_WRITE,
        pb::CreateFlashSaleRequest,
        |r| {
            let id = serde_json::from_str::<serde_json::Value>(&r.json)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            target(r.tenant_id, "flash-sale", &id)
        }
    ),
    rpc!("GetFlashSale", p::SALES_READ, pb::FlashSaleRef, |r| {
        tenant(r.tenant_id)
    }),
    rpc!("ClaimFlashSale", p::CLAIMS_WRITE, pb::ClaimRequest, |r| {
        claim(r.tenant_id, &r.sale_id, &r.claim_id)
    }),
    rpc!("GetClaim", p::CLAIMS_READ, pb::ClaimRef, |r| tenant(
        r.tenant_id
    )),
    rpc!(
        "ConfirmClaim",
        p::CLAIMS_WRITE,
        pb::ClaimRef,
        |r| claim_ref(r)
    ),
    rpc!(
        "ReleaseClaim",
        p::CLAIMS_WRITE,
        pb::ClaimRef,
        |r| claim_ref(r)
    ),
    // Head office writes campaigns; another staff member with the approval permission
    // decides them; a partner's automation rewards members from running ones.
    rpc!(
        "SaveCampaign",
        p::CAMPAIGNS_WRITE,
        pb::SaveCampaignRequest,
        |r| {
            let id = serde_json::from_str::<serde_json::Value>(&r.json)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            target(r.tenant_id, "campaign", &id)
        }
    ),
    rpc!("GetCampaign", p::CAMPAIGNS_READ, pb::CampaignRef, |r| {
        tenant(r.tenant_id)
    }),
    rpc!("ListCampaigns", p::CAMPAIGNS_READ, pb::TenantRef, |r| {
        tenant(r.tenant_id)
    }),
    rpc!(
        "ChangeCampaign",
        p::CAMPAIGNS_WRITE,
        pb::ChangeCampaignRequest,
        |r| target(r.tenant_id, "campaign", &r.campaign_id)
    ),
    rpc!(
        "DecideCampaign",
        p::CAMPAIGN_APPROVALS,
        pb::DecideCampaignRequest,
        |r| target(r.tenant_id, "campaign", &r.campaign_id)
    ),
    rpc!("DryRunCampaign", p::CAMPAIGNS_READ, pb::CampaignRef, |r| {
        tenant(r.tenant_id)
    }),
    rpc!(
        "GetCampaignResults",
        p::CAMPAIGNS_READ,
        pb::CampaignRef,
        |r| { tenant(r.tenant_id) }
    ),
    rpc!(
        "BroadcastCampaign",
        p::CAMPAIGNS_WRITE,
        pb::CampaignRef,
        |r| campaign_ref(r)
    ),
    rpc!(
        "RewardMember",
        p::CAMPAIGN_REWARDS,
        pb::RewardMemberRequest,
        |r| target(r.tenant_id, "campaign", &r.campaign_id)
    ),
    rpc!("CheckIn", p::CAMPAIGN_REWARDS, pb::CheckInRequest, |r| {
        target(r.tenant_id, "campaign", &r.campaign_id)
    }),
    rpc!("SweepBirthdays", p::CAMPAIGNS_WRITE, pb::TenantRef, |r| {
        tenant(r.tenant_id)
    }),
    rpc!(
        "GetReferralCode",
        p::REFERRALS_WRITE,
        pb::MemberReferralsRequest,
        |r| target(r.tenant_id, "member", &r.member_id)
    ),
    rpc!("Refer", p::REFERRALS_WRITE, pb::ReferRequest, |r| target(
        r.tenant_id,
        "campaign",
        &r.campaign_id
    )),
    rpc!(
        "ListReferrals",
        p::REFERRALS_READ,
        pb::MemberReferralsRequest,
        |r| target(r.tenant_id, "member", &r.member_id)
    ),
    rpc!("PutMallItem", p::MALL_WRITE, pb::PutMallItemRequest, |r| {
        tenant(r.tenant_id)
    }),
    rpc!("GetMallItem", p::MALL_READ, pb::MallItemRef, |r| target(
        r.tenant_id,
        "mall_item",
        &r.item_id
    )),
    rpc!(
        "ListMallItems",
        p::MALL_READ,
        pb::ListMallItemsRequest,
        |r| { tenant(r.tenant_id) }
    ),
    rpc!(
        "PlaceMallOrder",
        p::MALL_ORDERS_WRITE,
        pb::PlaceMallOrderRequest,
        |r| mall_order(r.tenant_id, &r.item_id, &r.order_id)
    ),
    rpc!("GetMallOrder", p::MALL_ORDERS_READ, pb::MallOrderRef, |r| {
        mall_order(r.tenant_id, &r.item_id, &r.order_id)
    }),
    rpc!(
        "ChangeMallOrder",
        p::MALL_ORDERS_WRITE,
        pb::ChangeMallOrderRequest,
        |r| mall_order(r.tenant_id, &r.item_id, &r.order_id)
    ),
    rpc!(
        "CreateLuckyDraw",
        p::DRAWS_WRITE,
        pb::CreateLuckyDrawRequest,
        |r| tenant(r.tenant_id)
    ),
    rpc!("GetLuckyDraw", p::DRAWS_READ, pb::LuckyDrawRef, |r| target(
        r.tenant_id,
        "lucky_draw",
        &r.draw_id
    )),
    rpc!(
        "EnterLuckyDraw",
        p::DRAW_ENTRIES_WRITE,
        pb::EnterLuckyDrawRequest,
        |r| target(
            r.tenant_id,
            "draw_entry",
            &format!("{}/{}", r.draw_id, r.entry_id)
        )
    ),
    rpc!(
        "GetDrawEntry",
        p::DRAW_ENTRIES_READ,
        pb::DrawEntryRef,
        |r| {
            target(
                r.tenant_id,
                "draw_entry",
                &format!("{}/{}", r.draw_id, r.entry_id),
            )
        }
    ),
];

/// The guard of the `campaign.v1` port.
pub fn guard(identity: Arc<dyn CallerChecks>) -> GuardLayer {
    GuardLayer::new(identity, SERVICE, RPCS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use prost::Message;

    #[test]
    fn every_method_of_the_service_is_in_the_table() {
        let set =
            prost_types::FileDescriptorSet::decode(loyalty_proto::FILE_DESCRIPTOR_SET).unwrap();
        let (package, service) = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(_, s)| s.name() == "CampaignService")
            .unwrap();
        assert_eq!(format!("{package}.{}", service.name()), SERVICE);
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|rpc| rpc.method).collect();
        assert_eq!(methods, table);
    }

    #[test]
    fn the_till_redeems_and_head_office_issues() {
        let needs = |method: &str| {
            RPCS.iter()
                .find(|r| r.method == method)
                .map(|r| r.permission)
        };
        assert_eq!(needs("Redeem"), Some(p::REDEEM));
        assert_eq!(needs("UndoRedemption"), Some(p::REDEEM));
        assert_eq!(needs("ValidateCart"), Some(p::COUPONS_READ));
        assert_eq!(needs("GenerateCodes"), Some(p::COUPONS_WRITE));
    }

    #[test]
    fn head_office_creates_flash_sales_and_the_till_claims() {
        let needs = |method: &str| {
            RPCS.iter()
                .find(|r| r.method == method)
                .map(|r| r.permission)
        };
        assert_eq!(needs("CreateFlashSale"), Some(p::SALES_WRITE));
        assert_eq!(needs("GetFlashSale"), Some(p::SALES_READ));
        assert_eq!(needs("ClaimFlashSale"), Some(p::CLAIMS_WRITE));
        assert_eq!(needs("GetClaim"), Some(p::CLAIMS_READ));
        assert_eq!(needs("ConfirmClaim"), Some(p::CLAIMS_WRITE));
        assert_eq!(needs("ReleaseClaim"), Some(p::CLAIMS_WRITE));
    }
}
