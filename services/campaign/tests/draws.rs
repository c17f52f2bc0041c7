//! Lucky draws against the real ledger (in process): an entry costs its points and wins by
//! the roll its id and the draw's seed give; points prizes are paid from the outbox, coupon
//! prizes issued; a prize out of stock gives nothing and the entry says so; points the
//! ledger refuses void the entry; an entry cut short after its cost was taken is voided
//! after a restart and its cost given back; and once the draw has ended its seed is
//! published and every roll can be recomputed from it.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::draw::entry::EntryState;
use loyalty_campaign::draw::{LuckyDraw, Prize, PrizeKind, roll_of};
use loyalty_campaign::mall::{MemberLimit, Period};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ManualClock, Timestamp};
use loyalty_ledger::client::LedgerClient;
use sha2::{Digest, Sha256};
use std::sync::Arc;

mod support;
use support::lossy::LossyLedger;

const START: i64 = 1_800_000_000_000;

struct World {
    campaigns: Campaigns,
    store: Arc<dyn CampaignRepository>,
    ledger: Arc<LossyLedger>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl World {
    async fn new() -> Self {
        let (dir, ledger_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = ManualClock::new(Timestamp(START));
        let ledger = Arc::new(LossyLedger::on(ledger_dir.path(), &clock));
        let store: Arc<dyn CampaignRepository> =
            Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
        let w = Self {
            campaigns: Self::service(&store, &ledger, &clock),
            store,
            ledger,
            clock,
            tenant: TenantId::parse("acme").unwrap(),
            _dirs: (dir, ledger_dir),
        };
        w.campaigns
            .put_template(&w.tenant, support::amount_off("TEN", 1_000), None)
            .await
            .unwrap();
        w
    }

    fn service(
        store: &Arc<dyn CampaignRepository>,
        ledger: &Arc<LossyLedger>,
        clock: &Arc<ManualClock>,
    ) -> Campaigns {
        Campaigns::with_clock(Arc::clone(store), None, clock.clone())
            .with_ledger(Arc::clone(ledger) as Arc<dyn LedgerClient>)
    }

    async fn enter(
        &self,
        member: &str,
        id: &str,
    ) -> loyalty_common::error::ServiceResult<loyalty_campaign::draw::entry::Entry> {
        let m = MemberId::parse(member).unwrap();
        self.campaigns
            .enter_draw(&self.tenant, ("SPRING", id), &m)
            .await
    }
}

/// Every entry draws the bonus (100 points, two of them) or, once that is gone, nothing;
/// costs 50; five a day.
fn spring(prize: PrizeKind, stock: u64) -> LuckyDraw {
    LuckyDraw {
        id: "SPRING".into(),
        name: "Spring draw".into(),
        cost_points: 50,
        prizes: vec![Prize {
            id: "bonus".into(),
            kind: prize,
            odds_ppm: 1_000_000,
            stock: Some(stock),
        }],
        limit: Some(MemberLimit {
            count: 5,
            period: Period::Day,
        }),
        budget_points: None,
        starts_ms: START,
        ends_ms: Some(START + 86_400_000),
        time_zone: "Asia/Shanghai".into(),
    }
}

#[tokio::test]
async fn an_entry_costs_its_points_and_wins_until_the_stock_is_gone() {
    let w = World::new().await;
    w.campaigns
        .create_draw(&w.tenant, spring(PrizeKind::Points { points: 100 }, 2))
        .await
        .unwrap();
    w.ledger.give("m1", 1_000).await;
    let first = w.enter("m1", "e1").await.unwrap();
    assert_eq!(first.state, EntryState::Paid);
    assert_eq!(first.outcome.prize.as_deref(), Some("bonus"));
    assert_eq!(
        w.enter("m1", "e1").await.unwrap(),
        first,
        "the same id answers"
    );
    w.enter("m1", "e2").await.unwrap();
    let third = w.enter("m1", "e3").await.unwrap();
    assert_eq!(
        (
            third.outcome.drawn.as_deref(),
            third.outcome.prize.as_deref(),
            third.outcome.reason.as_deref()
        ),
        (Some("bonus"), None, Some("out of stock")),
        "the entry records what it drew and why it got nothing"
    );
    assert_eq!(w.campaigns.pay_draws().await.unwrap(), 2);
    assert_eq!(w.campaigns.pay_draws().await.unwrap(), 0, "once");
    assert_eq!(w.ledger.points("m1").await, (1_000 - 3 * 50 + 2 * 100, 0));
    w.enter("m1", "e4").await.unwrap();
    w.enter("m1", "e5").await.unwrap();
    let sixth = w.enter("m1", "e6").await.unwrap_err();
    assert_eq!(sixth.code, ErrorCode::DrawLimitReached, "five a day");
}

#[tokio::test]
async fn a_coupon_prize_is_issued_and_a_poor_member_wins_nothing() {
    let w = World::new().await;
    let coupon = PrizeKind::Coupon {
        template: "TEN".into(),
    };
    w.campaigns
        .create_draw(&w.tenant, spring(coupon, 1))
        .await
        .unwrap();
    w.ledger.give("poor", 10).await;
    let refused = w.enter("poor", "p1").await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::InsufficientPoints);
    let voided = w
        .campaigns
        .draw_entry(&w.tenant, "SPRING", "p1")
        .await
        .unwrap();
    assert_eq!(voided.state, EntryState::Voided);
    w.ledger.give("m1", 1_000).await;
    let won = w.enter("m1", "e1").await.unwrap();
    assert_eq!(
        won.outcome.prize.as_deref(),
        Some("bonus"),
        "the voided entry gave it back"
    );
    let code = won.coupon.clone().unwrap();
    let m1 = MemberId::parse("m1").unwrap();
    let coupons = w
        .campaigns
        .member_coupons(&w.tenant, &m1, None, 100)
        .await
        .unwrap();
    assert!(coupons.iter().any(|c| c.code == code), "{coupons:?}");
    assert_eq!(w.ledger.points("poor").await, (10, 0));
}

#[tokio::test]
async fn an_entry_cut_short_after_its_cost_was_taken_is_voided_and_refunded_after_a_restart() {
    let w = World::new().await;
    w.campaigns
        .create_draw(&w.tenant, spring(PrizeKind::Points { points: 100 }, 1))
        .await
        .unwrap();
    w.ledger.give("m1", 1_000).await;
    w.ledger.lose_next("capture");
    assert_eq!(
        w.enter("m1", "e1").await.unwrap_err().code,
        ErrorCode::Unavailable
    );
    assert_eq!(w.ledger.points("m1").await, (950, 0), "taken, not recorded");
    w.clock.advance_secs(6 * 60);
    let restarted = World::service(&w.store, &w.ledger, &w.clock);
    assert_eq!(restarted.sweep_entries().await.unwrap(), 1);
    restarted.pay_draws().await.unwrap();
    let entry = restarted
        .draw_entry(&w.tenant, "SPRING", "e1")
        .await
        .unwrap();
    assert_eq!(entry.state, EntryState::Voided);
    assert_eq!(
        w.ledger.points("m1").await,
        (1_000, 0),
        "the cost is back, no prize paid"
    );
    let state = restarted.lucky_draw(&w.tenant, "SPRING").await.unwrap();
    assert_eq!(state.awarded.get("bonus"), Some(&0), "the prize is back");
}

#[tokio::test]
async fn the_seed_is_published_when_the_draw_ends_and_every_roll_checks_against_it() {
    let w = World::new().await;
    let created = w
        .campaigns
        .create_draw(&w.tenant, spring(PrizeKind::Points { points: 100 }, 10))
        .await
        .unwrap();
    w.ledger.give("m1", 1_000).await;
    let entry = w.enter("m1", "e1").await.unwrap();
    let running = w.campaigns.lucky_draw(&w.tenant, "SPRING").await.unwrap();
    assert!(running.seed.is_empty(), "secret while it runs");
    assert_eq!(running.seed_sha256, created.seed_sha256);
    w.clock.advance_secs(86_400);
    let ended = w.campaigns.lucky_draw(&w.tenant, "SPRING").await.unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(ended.seed.as_bytes())),
        created.seed_sha256,
        "the seed published is the one committed to"
    );
    assert_eq!(roll_of(&ended.seed, "e1"), entry.roll);
    let late = w.enter("m1", "e2").await.unwrap_err();
    assert_eq!(late.code, ErrorCode::DrawNotOpen);
}
