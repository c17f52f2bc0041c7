//! Coupons' bonus points paid through the ledger from the campaign store's outbox: paid once
//! however often the outbox is read, taken back on an undo (what is left of them when some
//! were spent), and a ledger that is down delays a payment without losing it.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use async_trait::async_trait;
use loyalty_campaign::cart::{Cart, Line};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::payouts::{self, Paid};
use loyalty_campaign::service::redeem::RedeemRequest;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_campaign::template::{Benefit, CouponTemplate, Eligibility, Stacking, Validity};
use loyalty_common::ServiceError;
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as pb;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const START: i64 = 1_800_000_000_000;

/// A ledger of one wallet per member that keeps adjustments by idempotency key, as the real
/// one does, and refuses a debit past the balance.
#[derive(Default)]
struct Ledger {
    applied: Mutex<HashMap<String, i64>>,
    balances: Mutex<HashMap<String, i64>>,
    down: AtomicBool,
}

impl Ledger {
    fn balance(&self, member: &str) -> i64 {
        *self.balances.lock().unwrap().get(member).unwrap_or(&0)
    }

    fn spend(&self, member: &str, points: i64) {
        *self
            .balances
            .lock()
            .unwrap()
            .entry(member.into())
            .or_default() -= points;
    }
}

fn unused() -> ServiceError {
    ServiceError::internal("payouts only adjust and read balances")
}

#[async_trait]
impl LedgerClient for Ledger {
    async fn adjust(&self, r: pb::AdjustRequest) -> ServiceResult<pb::WriteResult> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ServiceError::unavailable("the ledger is down"));
        }
        let member = r.wallet.unwrap().member_id;
        let mut applied = self.applied.lock().unwrap();
        if let Some(points) = applied.get(&r.idempotency_key) {
            assert_eq!(
                *points, r.points,
                "a key is sent again with the same points"
            );
            return Ok(pb::WriteResult {
                replayed: true,
                ..Default::default()
            });
        }
        let mut balances = self.balances.lock().unwrap();
        let balance = balances.entry(member).or_default();
        if *balance + r.points < 0 {
            return Err(ServiceError::new(
                ErrorCode::InsufficientPoints,
                "not enough points",
            ));
        }
        *balance += r.points;
        applied.insert(r.idempotency_key, r.points);
        Ok(pb::WriteResult::default())
    }

    async fn get_balance(&self, r: pb::WalletRef) -> ServiceResult<pb::Balance> {
        Ok(pb::Balance {
            points_available: self.balance(&r.member_id),
            ..Default::default()
        })
    }

    async fn open_wallet(&self, _: pb::OpenWalletRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn earn(&self, _: pb::EarnRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn redeem(&self, _: pb::RedeemRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn capture_hold(&self, _: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn void_hold(&self, _: pb::HoldActionRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn reverse(&self, _: pb::ReverseRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn transfer(&self, _: pb::TransferRequest) -> ServiceResult<pb::TransferResult> {
        Err(unused())
    }
    async fn top_up(&self, _: pb::TopUpRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn spend(&self, _: pb::SpendRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn refund(&self, _: pb::RefundRequest) -> ServiceResult<pb::WriteResult> {
        Err(unused())
    }
    async fn list_history(&self, _: pb::ListHistoryRequest) -> ServiceResult<pb::HistoryPage> {
        Err(unused())
    }
    async fn list_expiring(&self, _: pb::ListExpiringRequest) -> ServiceResult<pb::ExpiringPoints> {
        Err(unused())
    }
    async fn put_rules(&self, _: pb::PutRulesRequest) -> ServiceResult<pb::RuleSet> {
        Err(unused())
    }
    async fn get_rules(&self, _: pb::GetRulesRequest) -> ServiceResult<pb::RuleSet> {
        Err(unused())
    }
}

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
            points: 250
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
