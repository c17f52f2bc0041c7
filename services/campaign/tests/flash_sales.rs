//! Flash sales through the campaign service on the embedded store, under a controlled
//! clock: the sale's window, claims held and confirmed or given back (released, or lapsed
//! by the sweep), a coupon sale's coupon issued once per claim, and idempotent retries.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::sale::{ClaimState, FlashSale, SaleItem};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_campaign::template::{Benefit, CouponTemplate, Eligibility, Stacking, Validity};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use std::sync::Arc;

const START: i64 = 1_800_000_000_000;

struct World {
    campaigns: Campaigns,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let clock = ManualClock::new(Timestamp(START));
    World {
        campaigns: Campaigns::with_clock(store, None, clock.clone()),
        clock,
        tenant: TenantId::parse("acme").unwrap(),
        _dir: dir,
    }
}

fn sale(id: &str, units: u64, item: SaleItem) -> FlashSale {
    FlashSale {
        id: id.into(),
        name: "Singles' day tea".into(),
        item,
        quotas: [("*".to_string(), units)].into(),
        per_member_limit: 1,
        starts_ms: START + 60_000,
        ends_ms: Some(START + 3_600_000),
        hold_secs: 900,
        created_ms: 0,
    }
}

fn tea() -> SaleItem {
    SaleItem::Item {
        sku: "TEA-1".into(),
    }
}

fn member(n: u32) -> MemberId {
    MemberId::parse(format!("m{n}").as_str()).unwrap()
}

#[tokio::test]
async fn claims_are_taken_only_while_the_sale_is_open_and_never_past_its_stock() {
    let w = world();
    let (c, t) = (&w.campaigns, &w.tenant);
    c.create_sale(t, sale("S1", 2, tea())).await.unwrap();
    let early = c.claim(t, "S1", "k0", &member(0)).await.unwrap_err();
    assert_eq!(early.code, ErrorCode::SaleNotOpen);
    w.clock.advance_secs(60);
    let first = c.claim(t, "S1", "k1", &member(1)).await.unwrap();
    assert_eq!((first.state, first.quota.as_str()), (ClaimState::Held, "*"));
    assert_eq!(first.hold_until_ms, Some(START + 60_000 + 900_000));
    assert_eq!(
        c.claim(t, "S1", "k1", &member(1)).await.unwrap(),
        first,
        "a retry"
    );
    let other = c.claim(t, "S1", "k1", &member(2)).await.unwrap_err();
    assert_eq!(other.code, ErrorCode::IdempotencyConflict);
    let twice = c.claim(t, "S1", "k2", &member(1)).await.unwrap_err();
    assert_eq!(twice.code, ErrorCode::ClaimLimitReached);
    c.claim(t, "S1", "k3", &member(3)).await.unwrap();
    let sold_out = c.claim(t, "S1", "k4", &member(4)).await.unwrap_err();
    assert_eq!(sold_out.code, ErrorCode::SoldOut);
    // A released claim gives its unit back, once.
    let released = c.release_claim(t, "S1", "k3").await.unwrap();
    assert_eq!(released.state, ClaimState::Released);
    assert_eq!(c.release_claim(t, "S1", "k3").await.unwrap(), released);
    c.claim(t, "S1", "k4", &member(4)).await.unwrap();
    assert_eq!(c.sale(t, "S1").await.unwrap().taken["*"], 2);
    w.clock.advance_secs(3_600);
    let late = c.claim(t, "S1", "k5", &member(5)).await.unwrap_err();
    assert_eq!(late.code, ErrorCode::SaleNotOpen);
}

#[tokio::test]
async fn a_hold_not_confirmed_in_time_goes_back_to_the_quota() {
    let w = world();
    let (c, t) = (&w.campaigns, &w.tenant);
    c.create_sale(t, sale("S1", 1, tea())).await.unwrap();
    w.clock.advance_secs(60);
    c.claim(t, "S1", "k1", &member(1)).await.unwrap();
    w.clock.advance_secs(600);
    assert_eq!(c.lapse_claims().await.unwrap(), 0, "still within its hold");
    c.claim(t, "S1", "k2", &member(2)).await.unwrap_err();
    w.clock.advance_secs(301);
    assert_eq!(c.lapse_claims().await.unwrap(), 1);
    assert_eq!(c.lapse_claims().await.unwrap(), 0, "once");
    let lapsed = c.sale_claim(t, "S1", "k1").await.unwrap();
    assert_eq!(lapsed.state, ClaimState::Lapsed);
    let confirm = c.confirm_claim(t, "S1", "k1").await.unwrap_err();
    assert_eq!(confirm.code, ErrorCode::ClaimNotActive);
    let next = c.claim(t, "S1", "k2", &member(2)).await.unwrap();
    // Confirming after the hold lapsed, before the sweep ran, gives the unit back too.
    w.clock.advance_secs(900);
    let too_late = c.confirm_claim(t, "S1", &next.id).await.unwrap_err();
    assert_eq!(too_late.code, ErrorCode::ClaimNotActive);
    assert_eq!(c.sale(t, "S1").await.unwrap().taken["*"], 0);
}

#[tokio::test]
async fn a_confirmed_coupon_claim_issues_its_coupon_once() {
    let w = world();
    let (c, t) = (&w.campaigns, &w.tenant);
    let template = CouponTemplate {
        id: "HALF".into(),
        name: "Half off tea".into(),
        benefit: Benefit::PercentOff {
            basis_points: 5_000,
            cap: None,
        },
        min_spend: 0,
        eligible: Eligibility::default(),
        validity: Validity::DaysFromIssue { days: 7 },
        per_member_limit: None,
        total_limit: None,
        uses_per_code: 1,
        stacking: Stacking::Exclusive,
        priority: 0,
        active: true,
    };
    let coupon_sale = sale(
        "S2",
        5,
        SaleItem::Coupon {
            template: "HALF".into(),
        },
    );
    let missing = c.create_sale(t, coupon_sale.clone()).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::TemplateNotFound);
    c.put_template(t, template, None).await.unwrap();
    let created = c.create_sale(t, coupon_sale.clone()).await.unwrap();
    assert_eq!(
        c.create_sale(t, coupon_sale.clone()).await.unwrap(),
        created,
        "a retry"
    );
    let changed = FlashSale {
        hold_secs: 60,
        ..coupon_sale
    };
    assert_eq!(
        c.create_sale(t, changed).await.unwrap_err().code,
        ErrorCode::AlreadyExists
    );
    w.clock.advance_secs(60);
    c.claim(t, "S2", "k1", &member(1)).await.unwrap();
    let confirmed = c.confirm_claim(t, "S2", "k1").await.unwrap();
    let code = confirmed.coupon.clone().expect("a coupon issued");
    assert_eq!(confirmed.state, ClaimState::Confirmed);
    assert_eq!(
        c.confirm_claim(t, "S2", "k1").await.unwrap(),
        confirmed,
        "a retry"
    );
    let held = c.member_coupons(t, &member(1), None, 10).await.unwrap();
    assert_eq!(
        held.iter().map(|h| h.code.as_str()).collect::<Vec<_>>(),
        [code.as_str()]
    );
    let release = c.release_claim(t, "S2", "k1").await.unwrap_err();
    assert_eq!(release.code, ErrorCode::ClaimNotActive);
    let unknown = c.confirm_claim(t, "S2", "nope").await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::ClaimNotFound);
    let no_sale = c.claim(t, "S9", "k1", &member(1)).await.unwrap_err();
    assert_eq!(no_sale.code, ErrorCode::SaleNotFound);
}

#[tokio::test]
async fn a_sale_without_a_quota_for_the_member_refuses_the_claim() {
    let w = world();
    let (c, t) = (&w.campaigns, &w.tenant);
    let mut diamond_only = sale("S3", 5, tea());
    diamond_only.quotas = [("diamond".to_string(), 5)].into();
    c.create_sale(t, diamond_only).await.unwrap();
    w.clock.advance_secs(60);
    // Without a tier (no member service here), only an any-tier quota would do.
    let refused = c.claim(t, "S3", "k1", &member(1)).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::SaleNotEligible);
    let bad = c
        .claim(t, "S3", "not an id!", &member(1))
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidArgument);
}
