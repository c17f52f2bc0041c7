//! Campaigns through the campaign service on the embedded store, under a controlled clock:
//! maker-checker, the schedule in the tenant's time zone, rewards paid once per key, a
//! budget exactly spent under far more qualifying events, a cap per member and day, the
//! holdout, and a grant cut short by a ledger that was down, paid by the sweep.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::campaign::grant::GrantState;
use loyalty_campaign::campaign::{
    Actions, Audience, Budget, BudgetUnit, Campaign, FrequencyCap, Reward, Schedule, Step, Trigger,
    Variant,
};
use loyalty_campaign::service::Campaigns;
use loyalty_campaign::service::grants::Rewarded;
use loyalty_campaign::store::{CampaignRepository, EmbeddedCampaignStore};
use loyalty_common::Timestamp;
use loyalty_common::clock::ManualClock;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use std::sync::Arc;
use std::sync::atomic::Ordering;

mod support;
use support::{Ledger, amount_off};

/// 2027-01-15T00:00:00+08:00: midnight in Shanghai.
const MIDNIGHT_SHANGHAI: i64 = 1_799_942_400_000;
const DAY_MS: i64 = 86_400_000;

struct World {
    campaigns: Arc<Campaigns>,
    ledger: Arc<Ledger>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CampaignRepository> =
        Arc::new(EmbeddedCampaignStore::open(dir.path()).unwrap());
    let ledger = Arc::new(Ledger::default());
    // An hour before the campaigns below start.
    let clock = ManualClock::new(Timestamp(MIDNIGHT_SHANGHAI - 3_600_000));
    let campaigns = Campaigns::with_clock(store, None, clock.clone())
        .with_ledger(Arc::clone(&ledger) as Arc<dyn LedgerClient>);
    World {
        campaigns: Arc::new(campaigns),
        ledger,
        clock,
        tenant: TenantId::parse("acme").unwrap(),
        _dir: dir,
    }
}

/// 10 points to everyone from 2027-01-15 to the end of 2027-01-20, Shanghai time.
fn campaign(id: &str) -> Campaign {
    Campaign {
        id: id.into(),
        name: "New year".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "ten".into(),
            weight: 1,
            reward: Reward::Points { points: 10 },
        }],
        holdout_percent: 0,
        schedule: Schedule {
            starts: "2027-01-15".into(),
            ends: Some("2027-01-20".into()),
            time_zone: "Asia/Shanghai".into(),
        },
        budget: None,
        frequency_cap: None,
        trigger: None,
        actions: Actions::default(),
        attribution_days: None,
    }
}

fn member(n: usize) -> MemberId {
    MemberId::parse(format!("m{n}").as_str()).unwrap()
}

impl World {
    /// Saves `c` as `maker`, submits it and has `checker` approve it.
    async fn approved(&self, c: Campaign) {
        let (t, s) = (&self.tenant, &self.campaigns);
        let id = c.id.clone();
        s.save_campaign(t, c, "maker", None).await.unwrap();
        s.step_campaign(t, &id, Step::Submit, "maker", None)
            .await
            .unwrap();
        s.step_campaign(t, &id, Step::Approve, "checker", None)
            .await
            .unwrap();
    }

    fn start(&self) {
        self.clock.advance_secs(3_600);
    }
}

#[tokio::test]
async fn a_campaign_is_written_submitted_approved_by_another_and_runs_in_its_window() {
    let w = world();
    let (t, s) = (&w.tenant, &w.campaigns);
    let mut bad = campaign("NY");
    bad.schedule.time_zone = "Mars/Olympus".into();
    let refused = s.save_campaign(t, bad, "maker", None).await.unwrap_err();
    assert!(
        refused.message.starts_with("schedule.time_zone"),
        "{}",
        refused.message
    );

    let saved = s
        .save_campaign(t, campaign("NY"), "maker", None)
        .await
        .unwrap();
    assert_eq!((saved.phase, saved.record.version), ("draft", 1));
    s.step_campaign(t, "NY", Step::Submit, "maker", None)
        .await
        .unwrap();
    let own = s
        .step_campaign(t, "NY", Step::Approve, "maker", None)
        .await
        .unwrap_err();
    assert_eq!(own.code, ErrorCode::ApproverIsMaker);
    let approved = s
        .step_campaign(t, "NY", Step::Approve, "checker", None)
        .await
        .unwrap();
    assert_eq!(approved.phase, "scheduled");
    assert_eq!(approved.starts_ms, MIDNIGHT_SHANGHAI);
    assert_eq!(
        approved.ends_ms,
        Some(MIDNIGHT_SHANGHAI + 6 * DAY_MS),
        "the end of 20 January"
    );

    let early = s.reward(t, "NY", &member(1), "k1").await.unwrap_err();
    assert_eq!(early.code, ErrorCode::CampaignNotRunning);
    w.start();
    let Rewarded::Granted(grant) = s.reward(t, "NY", &member(1), "k1").await.unwrap() else {
        panic!("no holdout in this campaign");
    };
    assert_eq!((grant.state, grant.units), (GrantState::Confirmed, 10));
    let again = s.reward(t, "NY", &member(1), "k1").await.unwrap();
    assert_eq!(
        again,
        Rewarded::Granted(grant),
        "the same key answers the same grant"
    );
    assert_eq!(w.ledger.balance("m1"), 10, "paid once");
    let other = s.reward(t, "NY", &member(2), "k1").await.unwrap();
    assert!(matches!(other, Rewarded::Granted(_)), "keys are per member");

    s.step_campaign(t, "NY", Step::Pause, "checker", None)
        .await
        .unwrap();
    let paused = s.reward(t, "NY", &member(3), "k3").await.unwrap_err();
    assert_eq!(paused.code, ErrorCode::CampaignNotRunning);
    let view = s.campaign(t, "NY").await.unwrap();
    let steps: Vec<&str> = view
        .record
        .history
        .iter()
        .map(|h| h.what.as_str())
        .collect();
    assert_eq!(steps, ["written", "submitted", "approved", "paused"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_spent_exactly_under_far_more_qualifying_events() {
    let w = world();
    let mut c = campaign("BUDGET");
    c.budget = Some(Budget {
        unit: BudgetUnit::Points,
        limit: 1_000,
    });
    w.approved(c).await;
    w.start();
    let mut tasks = Vec::new();
    for n in 0..300 {
        let (s, t) = (Arc::clone(&w.campaigns), w.tenant.clone());
        tasks.push(tokio::spawn(async move {
            s.reward(&t, "BUDGET", &member(n), "signup").await
        }));
    }
    let (mut granted, mut exhausted) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(Rewarded::Granted(_)) => granted += 1,
            Err(e) if e.code == ErrorCode::BudgetExhausted => exhausted += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((granted, exhausted), (100, 200));
    let view = w.campaigns.campaign(&w.tenant, "BUDGET").await.unwrap();
    assert_eq!(
        (view.record.spent, view.record.reserved, view.budget_left),
        (1_000, 0, Some(0))
    );
    let paid: i64 = (0..300).map(|n| w.ledger.balance(&format!("m{n}"))).sum();
    assert_eq!(paid, 1_000, "exactly the budget reached wallets");
}

#[tokio::test]
async fn a_member_is_rewarded_once_per_local_day_under_a_daily_cap() {
    let w = world();
    let mut c = campaign("DAILY");
    c.frequency_cap = Some(FrequencyCap {
        times: 1,
        per_days: Some(1),
    });
    w.approved(c).await;
    w.start();
    let (t, s, m) = (&w.tenant, &w.campaigns, member(1));
    s.reward(t, "DAILY", &m, "visit-1").await.unwrap();
    let capped = s.reward(t, "DAILY", &m, "visit-2").await.unwrap_err();
    assert_eq!(capped.code, ErrorCode::FrequencyCapReached);
    // 23:59:59 the same day in Shanghai: still capped; a second later, a new day.
    w.clock.advance_secs(86_399);
    let late = s.reward(t, "DAILY", &m, "visit-3").await.unwrap_err();
    assert_eq!(late.code, ErrorCode::FrequencyCapReached);
    w.clock.advance_secs(1);
    s.reward(t, "DAILY", &m, "visit-4").await.unwrap();
    assert_eq!(w.ledger.balance("m1"), 20);
}

#[tokio::test]
async fn a_coupon_reward_issues_one_coupon_and_the_holdout_gets_nothing() {
    let w = world();
    let (t, s) = (&w.tenant, &w.campaigns);
    let template = amount_off("FIVE", 500);
    s.put_template(t, template, None).await.unwrap();
    let mut c = campaign("COUPONS");
    c.variants[0].reward = Reward::Coupon {
        template: "FIVE".into(),
    };
    c.holdout_percent = 50;
    w.approved(c).await;
    w.start();
    let (mut coupons, mut holdout) = (0, 0);
    for n in 0..40 {
        match s.reward(t, "COUPONS", &member(n), "welcome").await.unwrap() {
            Rewarded::Granted(g) => {
                let code = g.paid_with.clone().unwrap();
                assert_eq!(
                    s.coupon(t, &code).await.unwrap().member.as_deref(),
                    Some(g.member.as_str())
                );
                let again = s.reward(t, "COUPONS", &member(n), "welcome").await.unwrap();
                assert_eq!(again, Rewarded::Granted(g), "one coupon per key");
                coupons += 1;
            }
            Rewarded::Holdout => holdout += 1,
        }
    }
    assert!(
        coupons > 5 && holdout > 5,
        "{coupons} rewarded, {holdout} held out"
    );
    let view = s.campaign(t, "COUPONS").await.unwrap();
    assert_eq!(view.record.spent, coupons);
}

#[tokio::test]
async fn a_grant_cut_short_by_the_ledger_is_paid_by_the_sweep() {
    let w = world();
    w.approved(campaign("LATER")).await;
    w.start();
    let (t, s) = (&w.tenant, &w.campaigns);
    w.ledger.down.store(true, Ordering::SeqCst);
    let down = s.reward(t, "LATER", &member(1), "k").await.unwrap_err();
    assert_eq!(down.code, ErrorCode::Unavailable);
    let view = s.campaign(t, "LATER").await.unwrap();
    assert_eq!((view.record.reserved, view.record.spent), (10, 0));
    w.ledger.down.store(false, Ordering::SeqCst);
    assert_eq!(s.recover_grants().await.unwrap(), 0, "not before a minute");
    w.clock.advance_secs(61);
    assert_eq!(s.recover_grants().await.unwrap(), 1);
    assert_eq!(w.ledger.balance("m1"), 10);
    let view = s.campaign(t, "LATER").await.unwrap();
    assert_eq!((view.record.reserved, view.record.spent), (0, 10));
}

/// A member-service event of `member` at `at_ms`, as the bus delivers it.
fn member_event_at(name: &str, member: &str, data: &str, at_ms: i64) -> loyalty_events::Envelope {
    let origin = loyalty_events::envelope::Origin {
        service: "member",
        tenant: "acme",
        member,
    };
    let id = format!("{name}-{member}-{at_ms}");
    loyalty_events::Envelope::from_stored(origin, name, id, 1, at_ms, data)
}

/// The same, an hour into the campaigns.
fn member_event(name: &str, member: &str, data: &str) -> loyalty_events::Envelope {
    member_event_at(name, member, data, MIDNIGHT_SHANGHAI + 3_600_000)
}

#[tokio::test]
async fn a_trigger_event_delivered_again_rewards_once() {
    let w = world();
    let mut c = campaign("WELCOME");
    c.trigger = Some(Trigger::Welcome);
    w.approved(c).await;
    let mut big = campaign("BIG");
    big.trigger = Some(Trigger::OrderAtLeast { amount: 20_000 });
    w.approved(big).await;
    w.start();
    let s = &w.campaigns;
    let joined_before = member_event_at(
        "created",
        "m9",
        r#"{"source":"api"}"#,
        MIDNIGHT_SHANGHAI - 1,
    );
    assert_eq!(
        s.on_event(&joined_before).await.unwrap(),
        0,
        "joined before the campaign"
    );
    let created = member_event("created", "m1", r#"{"source":"api"}"#);
    assert_eq!(s.on_event(&created).await.unwrap(), 1);
    assert_eq!(
        s.on_event(&created).await.unwrap(),
        1,
        "answered again, not paid again"
    );
    let small = member_event(
        "order_recorded",
        "m1",
        r#"{"order_id":"P1","total":19999,"refund_of":null}"#,
    );
    assert_eq!(s.on_event(&small).await.unwrap(), 0);
    let order = member_event(
        "order_recorded",
        "m1",
        r#"{"order_id":"P2","total":20000,"refund_of":null}"#,
    );
    assert_eq!(s.on_event(&order).await.unwrap(), 1);
    let refund = member_event(
        "order_recorded",
        "m1",
        r#"{"order_id":"P3","total":-20000,"refund_of":"P2"}"#,
    );
    assert_eq!(s.on_event(&refund).await.unwrap(), 0);
    assert_eq!(
        w.ledger.balance("m1"),
        20,
        "10 welcome, 10 for the big order, once each"
    );
    // A campaign that is not running any more rewards nothing.
    w.campaigns
        .step_campaign(&w.tenant, "BIG", Step::Pause, "checker", None)
        .await
        .unwrap();
    let later = member_event(
        "order_recorded",
        "m1",
        r#"{"order_id":"P4","total":90000,"refund_of":null}"#,
    );
    assert_eq!(s.on_event(&later).await.unwrap(), 0);
}

#[tokio::test]
async fn a_paid_reward_asks_once_for_a_notification() {
    let w = world();
    let mut c = campaign("HELLO");
    c.actions = Actions {
        tag: None,
        notify: Some(loyalty_campaign::campaign::Notify {
            template: "welcome-sms".into(),
            channels: vec!["wechat".into(), "sms".into()],
        }),
    };
    let mut bad = c.clone();
    bad.id = "BAD".into();
    bad.actions.notify.as_mut().unwrap().channels = vec!["pigeon".into()];
    let refused = w
        .campaigns
        .save_campaign(&w.tenant, bad, "maker", None)
        .await
        .unwrap_err();
    assert!(
        refused.message.starts_with("actions.notify.channels"),
        "{}",
        refused.message
    );
    w.approved(c).await;
    w.start();
    for _ in 0..2 {
        w.campaigns
            .reward(&w.tenant, "HELLO", &member(1), "hello")
            .await
            .unwrap();
    }
    let logged = w
        .campaigns
        .repository()
        .events_after(0, 10_000)
        .await
        .unwrap();
    let asked: Vec<_> = logged
        .iter()
        .filter(|l| l.event.name == "campaign_notification_requested")
        .collect();
    assert_eq!(asked.len(), 1, "asked once, on the payment");
    let data: serde_json::Value = serde_json::from_str(&asked[0].event.data).unwrap();
    assert_eq!(data["template"], "welcome-sms");
    assert_eq!(data["channels"], serde_json::json!(["wechat", "sms"]));
    assert_eq!(asked[0].event.member, "m1");
}

#[tokio::test]
async fn a_stored_value_reward_is_given_within_a_stored_value_budget() {
    let w = world();
    let mut c = campaign("BONUS-SV");
    c.variants[0].reward = Reward::StoredValue { amount: 1_000 };
    c.budget = Some(Budget {
        unit: BudgetUnit::StoredValue,
        limit: 2_500,
    });
    w.approved(c).await;
    w.start();
    let (t, s) = (&w.tenant, &w.campaigns);
    for n in 1..=2 {
        s.reward(t, "BONUS-SV", &member(n), "k").await.unwrap();
    }
    let third = s.reward(t, "BONUS-SV", &member(3), "k").await.unwrap_err();
    assert_eq!(third.code, ErrorCode::BudgetExhausted);
    let given: Vec<i64> = (1..=3)
        .map(|n| w.ledger.bonus_value(&format!("m{n}")))
        .collect();
    assert_eq!(
        given,
        [1_000, 1_000, 0],
        "10.00 of bonus stored value each, within 25.00"
    );
    let view = s.campaign(t, "BONUS-SV").await.unwrap();
    assert_eq!(
        (view.record.spent, view.record.budget_left()),
        (2_000, Some(500))
    );
    let mut wrong = campaign("MIXED");
    wrong.budget = Some(Budget {
        unit: BudgetUnit::StoredValue,
        limit: 100,
    });
    let refused = s.save_campaign(t, wrong, "maker", None).await.unwrap_err();
    assert!(
        refused.message.contains("variants[0].reward.type"),
        "{refused:?}"
    );
}
