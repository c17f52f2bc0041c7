//! The campaign service end to end on the embedded store: issuing, the till's evaluation,
//! redemptions under concurrency (every limit exact), holds that lapse, undo once, and the
//! expiring-soon sweep, under a controlled clock.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::cart::{Cart, Line};
use loyalty_campaign::coupon::RedemptionState;
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::redeem::RedeemRequest;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_campaign::template::{Benefit, CouponTemplate, Eligibility, Stacking, Validity};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use std::sync::Arc;

const START: i64 = 1_800_000_000_000;

struct World {
    campaigns: Arc<Campaigns>,
    store: Arc<dyn CampaignRepository>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let clock = ManualClock::new(Timestamp(START));
    let campaigns = Arc::new(Campaigns::with_clock(
        Arc::clone(&store),
        None,
        clock.clone(),
    ));
    World {
        campaigns,
        store,
        clock,
        tenant: TenantId::parse("acme").unwrap(),
        _dir: dir,
    }
}

fn template(id: &str, benefit: Benefit) -> CouponTemplate {
    CouponTemplate {
        id: id.into(),
        name: format!("template {id}"),
        benefit,
        min_spend: 0,
        eligible: Eligibility::default(),
        validity: Validity::DaysFromIssue { days: 30 },
        per_member_limit: None,
        total_limit: None,
        uses_per_code: 1,
        stacking: Stacking::Exclusive,
        priority: 0,
        active: true,
    }
}

fn cart(member: &str, amount: i64) -> Cart {
    Cart {
        member: member.into(),
        store: "s1".into(),
        brand: None,
        at_ms: START + 1_000,
        tier: None,
        lines: vec![Line {
            id: "l1".into(),
            sku: "SKU1".into(),
            category: Some("food".into()),
            quantity: 1,
            unit_price: amount,
        }],
    }
}

fn redeem(member: &str, code: &str, id: &str) -> RedeemRequest {
    RedeemRequest {
        cart: cart(member, 10_000),
        codes: vec![code.into()],
        redemption_id: id.into(),
        order_id: format!("order-{id}"),
        hold_secs: None,
    }
}

fn member(id: &str) -> MemberId {
    MemberId::parse(id).unwrap()
}

impl World {
    async fn save(&self, t: CouponTemplate) {
        self.campaigns
            .put_template(&self.tenant, t, None)
            .await
            .unwrap();
    }

    async fn bearer(&self, template: &str, count: usize) -> Vec<String> {
        let mut codes = Vec::new();
        self.campaigns
            .generate(
                &self.tenant,
                template,
                &format!("b-{template}"),
                "",
                count,
                |done| codes.extend(done.iter().map(|c| c.code.clone())),
            )
            .await
            .unwrap();
        codes
    }

    async fn events(&self) -> Vec<String> {
        self.store
            .events_after(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.name)
            .collect()
    }
}

#[tokio::test]
async fn two_hundred_tills_redeeming_one_single_use_code_succeed_once() {
    let w = world();
    w.save(template("ONCE", Benefit::AmountOff { amount: 500 }))
        .await;
    let code = w.bearer("ONCE", 1).await.pop().unwrap();
    let mut tasks = Vec::new();
    for n in 0..200 {
        let (campaigns, tenant, code) = (Arc::clone(&w.campaigns), w.tenant.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            campaigns
                .redeem(&tenant, &redeem(&format!("m{n}"), &code, &format!("r{n}")))
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.code, ErrorCode::CouponLimitReached, "{}", e.message),
        }
    }
    assert_eq!(won, 1);
    let usage = w.store.usage(&w.tenant, "ONCE", &code, "m0").await.unwrap();
    assert_eq!((usage.code_uses, usage.total_uses), (1, 1));
}

#[tokio::test]
async fn a_total_limit_is_never_passed_under_far_more_redemptions() {
    let w = world();
    let mut t = template(
        "TWENTY",
        Benefit::PercentOff {
            basis_points: 1_000,
            cap: None,
        },
    );
    t.total_limit = Some(20);
    w.save(t).await;
    let codes = w.bearer("TWENTY", 100).await;
    let mut tasks = Vec::new();
    for (n, code) in codes.into_iter().enumerate() {
        let (campaigns, tenant) = (Arc::clone(&w.campaigns), w.tenant.clone());
        tasks.push(tokio::spawn(async move {
            campaigns
                .redeem(&tenant, &redeem(&format!("m{n}"), &code, &format!("r{n}")))
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += u32::from(task.await.unwrap().is_ok());
    }
    assert_eq!(won, 20);
}

#[tokio::test]
async fn redemptions_and_undos_racing_keep_the_counter_exact_and_under_the_limit() {
    let w = world();
    let mut t = template("PERMEMBER", Benefit::AmountOff { amount: 100 });
    t.per_member_limit = Some(3);
    t.uses_per_code = 1_000;
    w.save(t).await;
    let code = w.bearer("PERMEMBER", 1).await.pop().unwrap();
    let mut tasks = Vec::new();
    for n in 0..60 {
        let (campaigns, tenant, code) = (Arc::clone(&w.campaigns), w.tenant.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("r{n}");
            let Ok(_) = campaigns.redeem(&tenant, &redeem("m1", &code, &id)).await else {
                return (0, 0);
            };
            if n % 2 == 0 {
                let undone = campaigns.undo(&tenant, &id).await.unwrap();
                assert!(!undone.replayed);
                // Undone once: again changes nothing.
                assert!(campaigns.undo(&tenant, &id).await.unwrap().replayed);
                return (1, 1);
            }
            (1, 0)
        }));
    }
    let (mut successes, mut undos) = (0, 0);
    for task in tasks {
        let (s, u) = task.await.unwrap();
        successes += s;
        undos += u;
    }
    let usage = w
        .store
        .usage(&w.tenant, "PERMEMBER", &code, "m1")
        .await
        .unwrap();
    assert_eq!(usage.member_uses, successes - undos);
    assert!(usage.member_uses <= 3);
    assert!(successes >= 3, "at least the limit's worth went through");
}

#[tokio::test]
async fn a_hold_that_lapses_gives_its_use_back_and_cannot_be_confirmed() {
    let w = world();
    w.save(template("HOLD", Benefit::AmountOff { amount: 100 }))
        .await;
    let code = w.bearer("HOLD", 1).await.pop().unwrap();
    let mut held = redeem("m1", &code, "h1");
    held.hold_secs = Some(60);
    let r = w
        .campaigns
        .redeem(&w.tenant, &held)
        .await
        .unwrap()
        .redemption;
    assert_eq!(r.state, RedemptionState::Held);
    let busy = w
        .campaigns
        .redeem(&w.tenant, &redeem("m2", &code, "other"))
        .await
        .unwrap_err();
    assert_eq!(
        busy.code,
        ErrorCode::CouponLimitReached,
        "a held code is in use"
    );
    w.clock.advance_secs(61);
    let late = w.campaigns.confirm(&w.tenant, "h1").await.unwrap_err();
    assert_eq!(late.code, ErrorCode::RedemptionNotActive);
    assert_eq!(
        w.campaigns.redemption(&w.tenant, "h1").await.unwrap().state,
        RedemptionState::Released
    );
    w.campaigns
        .redeem(&w.tenant, &redeem("m2", &code, "other2"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_sweep_releases_lapsed_holds_and_a_confirmed_hold_stays_redeemed() {
    let w = world();
    w.save(template("SWEEP", Benefit::AmountOff { amount: 100 }))
        .await;
    let codes = w.bearer("SWEEP", 2).await;
    let mut a = redeem("m1", &codes[0], "ha");
    a.hold_secs = Some(30);
    let mut b = redeem("m2", &codes[1], "hb");
    b.hold_secs = Some(30);
    w.campaigns.redeem(&w.tenant, &a).await.unwrap();
    w.campaigns.redeem(&w.tenant, &b).await.unwrap();
    w.campaigns.confirm(&w.tenant, "ha").await.unwrap();
    w.clock.advance_secs(31);
    assert_eq!(w.campaigns.release_lapsed_holds().await.unwrap(), 1);
    assert_eq!(w.campaigns.release_lapsed_holds().await.unwrap(), 0);
    assert_eq!(
        w.campaigns.redemption(&w.tenant, "ha").await.unwrap().state,
        RedemptionState::Redeemed
    );
    assert_eq!(
        w.campaigns.redemption(&w.tenant, "hb").await.unwrap().state,
        RedemptionState::Released
    );
    let events = w.events().await;
    for name in ["coupon_held", "coupon_redeemed", "coupon_released"] {
        assert!(events.iter().any(|e| e == name), "{name} in {events:?}");
    }
}

#[tokio::test]
async fn a_redemption_id_answers_once_and_refuses_another_cart() {
    let w = world();
    w.save(template("IDEM", Benefit::AmountOff { amount: 100 }))
        .await;
    let code = w.bearer("IDEM", 1).await.pop().unwrap();
    let first = w
        .campaigns
        .redeem(&w.tenant, &redeem("m1", &code, "r1"))
        .await
        .unwrap();
    let again = w
        .campaigns
        .redeem(&w.tenant, &redeem("m1", &code, "r1"))
        .await
        .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.redemption, again.redemption);
    let mut other = redeem("m1", &code, "r1");
    other.cart.lines[0].unit_price = 20_000;
    let conflict = w.campaigns.redeem(&w.tenant, &other).await.unwrap_err();
    assert_eq!(conflict.code, ErrorCode::IdempotencyConflict);
}

#[tokio::test]
async fn the_till_hears_why_a_coupon_does_not_apply() {
    let w = world();
    let mut big = template("BIG", Benefit::AmountOff { amount: 2_000 });
    big.min_spend = 50_000;
    w.save(big).await;
    w.save(template(
        "TEN",
        Benefit::PercentOff {
            basis_points: 1_000,
            cap: Some(300),
        },
    ))
    .await;
    let held = w
        .campaigns
        .issue(&w.tenant, "BIG", &member("m1"), "welcome-m1")
        .await
        .unwrap();
    let presented = w.bearer("TEN", 1).await.pop().unwrap();
    let shown = loyalty_campaign::code::display(&presented).to_lowercase();
    let v = w
        .campaigns
        .validate(
            &w.tenant,
            &cart("m1", 10_000),
            &[shown, "NOSUCHCODE".into()],
        )
        .await
        .unwrap();
    assert_eq!(v.unknown_codes, ["NOSUCHCODE"]);
    let verdict = |code: &str| {
        v.evaluation
            .coupons
            .iter()
            .find(|c| c.code == code)
            .unwrap()
    };
    let big = verdict(&held.code);
    assert!(!big.applies);
    assert_eq!(big.refusal.unwrap().code(), "min_spend");
    let ten = verdict(&presented);
    assert!(ten.applies);
    assert_eq!(ten.discount, 300, "10% of 100.00 capped at 3.00");
    assert_eq!(v.evaluation.total, 9_700);
    let refused = w
        .campaigns
        .redeem(&w.tenant, &redeem("m1", &held.code, "r-big"))
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::CouponNotApplicable);
    assert!(refused.message.contains("min_spend"), "{}", refused.message);
    let not_theirs = w
        .campaigns
        .redeem(&w.tenant, &redeem("m2", &held.code, "r-m2"))
        .await
        .unwrap_err();
    assert!(
        not_theirs.message.contains("not_holder"),
        "{}",
        not_theirs.message
    );
}

#[tokio::test]
async fn issuing_and_generating_are_idempotent_by_their_keys() {
    let w = world();
    w.save(template(
        "GIFT",
        Benefit::StoredValueBonus { amount: 1_000 },
    ))
    .await;
    let first = w
        .campaigns
        .issue(&w.tenant, "GIFT", &member("m1"), "k1")
        .await
        .unwrap();
    let again = w
        .campaigns
        .issue(&w.tenant, "GIFT", &member("m1"), "k1")
        .await
        .unwrap();
    assert_eq!(first, again);
    let batch = w.bearer("GIFT", 12_000).await;
    let rerun = w.bearer("GIFT", 12_000).await;
    let (mut a, mut b) = (batch.clone(), rerun);
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same batch finds the same codes");
    let distinct: std::collections::HashSet<_> = batch.iter().collect();
    assert_eq!(distinct.len(), 12_000);
    let imported = w
        .campaigns
        .import_codes(
            &w.tenant,
            "GIFT",
            "printed",
            &["paper-0001".into(), batch[0].clone(), "PAPER0001".into()],
        )
        .await
        .unwrap();
    assert_eq!((imported.added, imported.already), (1, 1));
    assert_eq!(imported.taken, [batch[0].clone()]);
    let issued = w
        .events()
        .await
        .iter()
        .filter(|e| *e == "coupon_issued")
        .count();
    assert_eq!(issued, 1, "one event per coupon issued to a member");
}

#[tokio::test]
async fn a_template_that_cannot_be_evaluated_is_refused_naming_the_field() {
    let w = world();
    let mut bad = template(
        "BAD",
        Benefit::PercentOff {
            basis_points: 12_000,
            cap: None,
        },
    );
    let e = w
        .campaigns
        .put_template(&w.tenant, bad.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("benefit.basis_points"), "{}", e.message);
    bad.benefit = Benefit::AmountOff { amount: 100 };
    let saved = w
        .campaigns
        .put_template(&w.tenant, bad.clone(), Some(0))
        .await
        .unwrap();
    assert_eq!(saved.version, 1);
    bad.name = "renamed".into();
    let stale = w
        .campaigns
        .put_template(&w.tenant, bad, Some(0))
        .await
        .unwrap_err();
    assert_eq!(stale.code, ErrorCode::VersionConflict);
}

#[tokio::test]
async fn members_hear_once_that_a_coupon_is_about_to_lapse() {
    let w = world();
    let mut t = template("SOON", Benefit::AmountOff { amount: 100 });
    t.validity = Validity::DaysFromIssue { days: 5 };
    w.save(t).await;
    let used = w
        .campaigns
        .issue(&w.tenant, "SOON", &member("m1"), "a")
        .await
        .unwrap();
    w.campaigns
        .issue(&w.tenant, "SOON", &member("m2"), "b")
        .await
        .unwrap();
    w.campaigns
        .redeem(&w.tenant, &redeem("m1", &used.code, "r1"))
        .await
        .unwrap();
    assert_eq!(
        w.campaigns.announce_expiring().await.unwrap(),
        0,
        "five days out"
    );
    w.clock.advance_secs(3 * 86_400);
    assert_eq!(
        w.campaigns.announce_expiring().await.unwrap(),
        1,
        "the used one is not announced"
    );
    assert_eq!(w.campaigns.announce_expiring().await.unwrap(), 0, "once");
    let soon = w
        .events()
        .await
        .iter()
        .filter(|e| *e == "coupon_expiring_soon")
        .count();
    assert_eq!(soon, 1);
}

#[tokio::test]
async fn a_coupon_that_lapses_within_the_notice_is_announced_when_issued_and_only_then() {
    let w = world();
    // The sweep runs first, so its cursor is past tomorrow when the coupon is issued.
    let mut t = template("DAY", Benefit::AmountOff { amount: 100 });
    t.validity = Validity::DaysFromIssue { days: 1 };
    w.save(t).await;
    let mut week = template("WEEK", Benefit::AmountOff { amount: 100 });
    week.validity = Validity::DaysFromIssue { days: 7 };
    w.save(week).await;
    w.campaigns
        .issue(&w.tenant, "WEEK", &member("m1"), "week")
        .await
        .unwrap();
    w.clock.advance_secs(5 * 86_400);
    assert_eq!(
        w.campaigns.announce_expiring().await.unwrap(),
        1,
        "the week"
    );
    w.campaigns
        .issue(&w.tenant, "DAY", &member("m1"), "day")
        .await
        .unwrap();
    let soon = |events: &[String]| {
        events
            .iter()
            .filter(|e| *e == "coupon_expiring_soon")
            .count()
    };
    assert_eq!(soon(&w.events().await), 2, "the day's, with its issue");
    assert_eq!(w.campaigns.announce_expiring().await.unwrap(), 0);
    w.clock.advance_secs(12 * 3_600);
    assert_eq!(w.campaigns.announce_expiring().await.unwrap(), 0, "once");
    assert_eq!(soon(&w.events().await), 2);
}
