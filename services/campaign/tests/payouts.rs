//! Coupons' bonus points and bonus stored value paid through the ledger from the campaign
//! store's outbox: paid once however often the outbox is read, taken back on an undo (what is
//! left of them when some were spent), and a ledger that is down delays a payment without
//! losing it.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::cart::{Cart, Line};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::payouts::{self, Paid};
use loyalty_campaign::service::redeem::RedeemRequest;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_campaign::template::{Benefit, CouponTemplate, Eligibility, Stacking, Validity};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const START: i64 = 1_800_000_000_000;

mod support;
use support::Ledger;

struct World {
    campaigns: Campaigns,
    store: Arc<dyn CampaignRepository>,
    ledger: Arc<Ledger>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

/// A tenant with a double-points coupon (1 point per 1.00 spent, doubled) issued to m1.
async fn world() -> (World, String) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let ledger = Arc::new(Ledger::default());
    let clock = ManualClock::new(Timestamp(START));
    let campaigns = Campaigns::with_clock(Arc::clone(&store), None, clock)
        .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>);
    let tenant = TenantId::parse("acme").unwrap();
    let template = CouponTemplate {
        id: "DOUBLE".into(),
        name: "Double points".into(),
        benefit: Benefit::PointsMultiplier {
            multiplier_percent: 200,
            points_per_unit: 1,
        },
        min_spend: 0,
        eligible: Eligibility::default(),
        validity: Validity::DaysFromIssue { days: 30 },
        per_member_limit: None,
        total_limit: None,
        uses_per_code: 1,
        stacking: Stacking::Exclusive,
        priority: 0,
        active: true,
    };
    campaigns
        .put_template(&tenant, template, None)
        .await
        .unwrap();
    let m1 = MemberId::parse("m1").unwrap();
    let code = campaigns
        .issue(&tenant, "DOUBLE", &m1, "welcome-m1")
        .await
        .unwrap()
        .code;
    let world = World {
        campaigns,
        store,
        ledger,
        tenant,
        _dir: dir,
    };
    (world, code)
}

/// A 250.00 cart for m1 with `code`: 250 bonus points.
fn checkout(code: &str, id: &str) -> RedeemRequest {
    RedeemRequest {
        cart: Cart {
            member: "m1".into(),
            store: "s1".into(),
            brand: None,
            at_ms: START + 1_000,
            tier: None,
            lines: vec![Line {
                id: "l1".into(),
                sku: "TEA-1".into(),
                category: None,
                quantity: 1,
                unit_price: 25_000,
            }],
        },
        codes: vec![code.into()],
        redemption_id: id.into(),
        order_id: format!("order-{id}"),
        hold_secs: None,
    }
}

#[tokio::test]
async fn bonus_points_are_paid_once_however_often_the_outbox_is_read() {
    let (w, code) = world().await;
    w.campaigns
        .redeem(&w.tenant, &checkout(&code, "r1"))
        .await
        .unwrap();
    let paid = w.campaigns.pay_out().await.unwrap();
    assert_eq!(
        paid,
        Paid {
            adjustments: 1,
            points: 250,
            stored_value: 0
        }
    );
    assert_eq!(w.ledger.balance("m1"), 250);
    assert_eq!(w.campaigns.pay_out().await.unwrap(), Paid::default());
    // A crash before the position was saved: the page is read again, the ledger replays.
    w.store.save_position(payouts::READER, 0).await.unwrap();
    w.campaigns.pay_out().await.unwrap();
    assert_eq!(w.ledger.balance("m1"), 250, "paid once");

    w.campaigns.undo(&w.tenant, "r1").await.unwrap();
    let undone = w.campaigns.pay_out().await.unwrap();
    assert_eq!(undone.points, -250);
    assert_eq!(w.ledger.balance("m1"), 0);
    w.store.save_position(payouts::READER, 0).await.unwrap();
    w.campaigns.pay_out().await.unwrap();
    assert_eq!(w.ledger.balance("m1"), 0, "paid once, taken back once");
}

#[tokio::test]
async fn a_returned_coupon_takes_back_what_is_left_of_a_spent_bonus() {
    let (w, code) = world().await;
    w.campaigns
        .redeem(&w.tenant, &checkout(&code, "r1"))
        .await
        .unwrap();
    w.campaigns.pay_out().await.unwrap();
    w.ledger.spend("m1", 200);
    w.campaigns.undo(&w.tenant, "r1").await.unwrap();
    let undone = w.campaigns.pay_out().await.unwrap();
    assert_eq!(undone.points, -50, "the 50 points left, not below zero");
    assert_eq!(w.ledger.balance("m1"), 0);
}

#[tokio::test]
async fn a_ledger_that_is_down_delays_the_bonus_and_loses_nothing() {
    let (w, code) = world().await;
    w.ledger.down.store(true, Ordering::SeqCst);
    w.campaigns
        .redeem(&w.tenant, &checkout(&code, "r1"))
        .await
        .unwrap();
    let down = w.campaigns.pay_out().await.unwrap_err();
    assert_eq!(down.code, ErrorCode::Unavailable);
    assert_eq!(w.store.position(payouts::READER).await.unwrap(), 0);
    w.ledger.down.store(false, Ordering::SeqCst);
    assert_eq!(w.campaigns.pay_out().await.unwrap().points, 250);
    assert_eq!(w.ledger.balance("m1"), 250);
}

#[tokio::test]
async fn a_stored_value_bonus_is_given_once_and_what_is_left_taken_back() {
    let (w, _) = world().await;
    let mut template = support::amount_off("TOPUP", 1);
    template.benefit = Benefit::StoredValueBonus { amount: 500 };
    w.campaigns
        .put_template(&w.tenant, template, None)
        .await
        .unwrap();
    let m1 = MemberId::parse("m1").unwrap();
    let issued = w.campaigns.issue(&w.tenant, "TOPUP", &m1, "sv-m1").await;
    let code = issued.unwrap().code;
    w.campaigns
        .redeem(&w.tenant, &checkout(&code, "r1"))
        .await
        .unwrap();
    let paid = w.campaigns.pay_out().await.unwrap();
    assert_eq!((paid.adjustments, paid.stored_value), (1, 500));
    w.store.save_position(payouts::READER, 0).await.unwrap();
    w.campaigns.pay_out().await.unwrap();
    assert_eq!(w.ledger.bonus_value("m1"), 500, "given once");
    assert_eq!(w.ledger.balance("m1"), 0, "no points");

    // 300 of it spent at the till, then the coupon's order is returned.
    *w.ledger.bonus.lock().unwrap().get_mut("m1").unwrap() -= 300;
    w.campaigns.undo(&w.tenant, "r1").await.unwrap();
    let undone = w.campaigns.pay_out().await.unwrap();
    assert_eq!(undone.stored_value, -200, "what was left, never below zero");
    assert_eq!(w.ledger.bonus_value("m1"), 0);
}
