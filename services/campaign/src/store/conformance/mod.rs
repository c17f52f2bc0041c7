//! The campaign store's port, one behaviour per body: the suite every adapter passes
//! (`tests/conformance.rs` runs it). The store may be shared by a whole run, so every body
//! works on tenants of its own and reads global listings (lapsed holds, lapsing coupons,
//! the change log) only for them.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use crate::coupon::{Coupon, RedeemedCoupon, Redemption, RedemptionState, Usage};
use crate::events::CampaignEvent;
use crate::store::{
    Added, CampaignRepository, EXPIRY, ExpiryCursor, Limit, LimitReached, NewCoupon, Redeemed,
    Settled, Versioned,
};
use crate::template::{Benefit, CouponTemplate, Eligibility, Stacking, Validity};
use loyalty_common::Timestamp;
use loyalty_common::ids::TenantId;
use loyalty_events::trace::TraceContext;
use loyalty_scylla::conformance;
use std::sync::Arc;

mod check_ins;
mod draws;
mod mall;
mod plans;
mod referrals;
mod results;
mod sales;
pub use check_ins::*;
pub use draws::*;
pub use mall::*;
pub use plans::*;
pub use referrals::*;
pub use results::*;
pub use sales::*;

/// One store, and what keeps it alive.
pub struct Stores {
    pub store: Arc<dyn CampaignRepository>,
    /// The embedded store's directory, removed when the stores are dropped.
    pub dir: Option<tempfile::TempDir>,
}

fn tenant() -> TenantId {
    TenantId::parse(conformance::unique("t")).unwrap()
}

fn template(id: &str) -> CouponTemplate {
    CouponTemplate {
        id: id.into(),
        name: "Ten off".into(),
        benefit: Benefit::AmountOff { amount: 1_000 },
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

fn coupon(code: &str, member: Option<&str>, until_ms: i64) -> Coupon {
    Coupon {
        code: code.into(),
        template: "T1".into(),
        member: member.map(str::to_string),
        issued_ms: 1_000,
        valid_from_ms: 1_000,
        valid_until_ms: until_ms,
        batch: None,
    }
}

/// The trace context of a till's request.
fn trace_context() -> TraceContext {
    TraceContext {
        traceparent: format!("00-{:032x}-00f067aa0ba902b7-01", ulid::Ulid::new().0),
        tracestate: Some("acme=till-7".into()),
    }
}

fn event(tenant: &TenantId, name: &str) -> CampaignEvent {
    CampaignEvent::new(
        ulid::Ulid::new().to_string(),
        tenant.as_str(),
        "",
        name,
        Timestamp(1_000),
        &serde_json::json!({}),
    )
}

fn new(code: &str, member: Option<&str>, key: Option<&str>) -> NewCoupon {
    NewCoupon {
        coupon: coupon(code, member, 10_000),
        issue_key: key.map(str::to_string),
        events: Vec::new(),
    }
}

fn redemption(
    tenant: &TenantId,
    id: &str,
    member: &str,
    codes: &[&str],
    state: RedemptionState,
) -> Redemption {
    Redemption {
        id: id.into(),
        tenant: tenant.to_string(),
        member: member.into(),
        order_id: format!("o-{id}"),
        store: "s1".into(),
        coupons: codes
            .iter()
            .map(|c| RedeemedCoupon {
                code: (*c).into(),
                template: "T1".into(),
                discount: 1_000,
                bonus_points: 0,
                stored_value: 0,
            })
            .collect(),
        state,
        created_ms: 1_000,
        hold_until_ms: (state == RedemptionState::Held).then_some(5_000),
        updated_ms: 1_000,
        request_digest: "d".into(),
    }
}

fn limit(code: &str, per_code: u32, per_member: Option<u32>, total: Option<u64>) -> Limit {
    Limit {
        code: code.into(),
        template: "T1".into(),
        uses_per_code: per_code,
        per_member_limit: per_member,
        total_limit: total,
    }
}

/// The events of `tenant` in the change log, by name, once `expected` of them are there
/// (an adapter may hand events on to its log a moment after the commit), or after 30 s.
async fn names(store: &dyn CampaignRepository, tenant: &TenantId, expected: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = store.events_after(after, 1_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            found.extend(
                page.into_iter()
                    .filter(|e| e.event.tenant == tenant.as_str())
                    .map(|e| e.event.name),
            );
        }
        if found.len() >= expected || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

pub async fn templates_are_written_by_version(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    let v1 = Versioned {
        version: 1,
        value: template("T1"),
    };
    assert!(
        store
            .put_template(&t, &v1, vec![event(&t, "template_saved")])
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_template(&t, &v1, vec![event(&t, "lost")])
            .await
            .unwrap(),
        "version 1 exists"
    );
    let mut v2 = Versioned {
        version: 2,
        value: template("T1"),
    };
    v2.value.name = "Twenty off".into();
    assert!(store.put_template(&t, &v2, Vec::new()).await.unwrap());
    assert_eq!(store.template(&t, "T1").await.unwrap(), Some(v2));
    let other = Versioned {
        version: 1,
        value: template("T0"),
    };
    assert!(store.put_template(&t, &other, Vec::new()).await.unwrap());
    let ids: Vec<String> = store
        .templates(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.value.id)
        .collect();
    assert_eq!(ids, ["T0", "T1"]);
    assert_eq!(
        store.template(&tenant(), "T1").await.unwrap(),
        None,
        "templates are per tenant"
    );
    assert_eq!(
        names(store.as_ref(), &t, 1).await,
        ["template_saved"],
        "a refused write logs nothing"
    );
}

pub async fn codes_are_unique_per_tenant_and_issue_keys_answer_once(stores: Stores) {
    let store = stores.store;
    let (t, other) = (tenant(), tenant());
    let mut first = new("AAAA1", Some("m1"), Some("k1"));
    first.events = vec![event(&t, "coupon_issued")];
    let outcomes = store
        .add_coupons(
            &t,
            vec![first, new("AAAA2", None, None), new("AAAA2", None, None)],
            vec![event(&t, "batch")],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [Added::Yes, Added::Yes, Added::CodeTaken],
        "checked against the batch too"
    );
    let mut retried = new("BBBB1", Some("m1"), Some("k1"));
    retried.events = vec![event(&t, "lost")];
    let again = store
        .add_coupons(&t, vec![retried, new("AAAA1", None, None)], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        again,
        [
            Added::IssuedAlready(coupon("AAAA1", Some("m1"), 10_000)),
            Added::CodeTaken
        ]
    );
    assert_eq!(store.coupon(&t, "BBBB1").await.unwrap(), None);
    assert_eq!(
        store
            .add_coupons(&other, vec![new("AAAA1", None, Some("k1"))], Vec::new())
            .await
            .unwrap(),
        [Added::Yes],
        "codes and keys are per tenant"
    );
    assert_eq!(
        store.coupon(&t, "AAAA2").await.unwrap(),
        Some(coupon("AAAA2", None, 10_000))
    );
    store
        .add_coupons(
            &t,
            vec![
                new("AAAA0", Some("m1"), None),
                new("AAAA9", Some("m2"), None),
            ],
            Vec::new(),
        )
        .await
        .unwrap();
    let mine: Vec<String> = store
        .member_coupons(&t, "m1", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(mine, ["AAAA0", "AAAA1"]);
    let next: Vec<String> = store
        .member_coupons(&t, "m1", Some("AAAA0"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(next, ["AAAA1"]);
    assert_eq!(
        names(store.as_ref(), &t, 2).await,
        ["coupon_issued", "batch"],
        "only added coupons' events"
    );
}

pub async fn a_redemption_counts_against_every_limit_or_writes_nothing(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .add_coupons(
            &t,
            vec![
                new("CODE1", None, None),
                new("CODE2", None, None),
                new("CODE3", None, None),
            ],
            Vec::new(),
        )
        .await
        .unwrap();
    let r1 = redemption(&t, "r1", "m1", &["CODE1"], RedemptionState::Redeemed);
    let limits = [
        limit("CODE1", 2, Some(1), Some(2)),
        limit("CODE2", 1, Some(1), Some(2)),
        limit("CODE3", 1, Some(5), Some(2)),
    ];
    assert_eq!(
        store
            .redeem(&r1, &limits, vec![event(&t, "coupon_redeemed")])
            .await
            .unwrap(),
        Redeemed::Yes
    );
    assert_eq!(
        store.redeem(&r1, &limits, Vec::new()).await.unwrap(),
        Redeemed::Exists(Box::new(r1.clone()))
    );
    assert_eq!(
        store.usage(&t, "T1", "CODE1", "m1").await.unwrap(),
        Usage {
            code_uses: 1,
            member_uses: 1,
            total_uses: 1
        }
    );
    let again = redemption(&t, "r2", "m1", &["CODE2"], RedemptionState::Redeemed);
    assert_eq!(
        store.redeem(&again, &limits, Vec::new()).await.unwrap(),
        Redeemed::Refused("CODE2".into(), LimitReached::Member)
    );
    let m2 = redemption(&t, "r3", "m2", &["CODE2"], RedemptionState::Held);
    assert_eq!(
        store.redeem(&m2, &limits, Vec::new()).await.unwrap(),
        Redeemed::Yes
    );
    let m3 = redemption(&t, "r4", "m3", &["CODE3"], RedemptionState::Redeemed);
    assert_eq!(
        store.redeem(&m3, &limits, Vec::new()).await.unwrap(),
        Redeemed::Refused("CODE3".into(), LimitReached::Total)
    );
    let reused = redemption(&t, "r5", "m3", &["CODE2"], RedemptionState::Redeemed);
    let loose = [limit("CODE2", 1, None, None)];
    assert_eq!(
        store.redeem(&reused, &loose, Vec::new()).await.unwrap(),
        Redeemed::Refused("CODE2".into(), LimitReached::Code)
    );
    assert_eq!(
        store.redemption(&t, "r4").await.unwrap(),
        None,
        "a refused redemption is not stored"
    );
    assert_eq!(
        store.usage(&t, "T1", "CODE3", "m3").await.unwrap(),
        Usage {
            code_uses: 0,
            member_uses: 0,
            total_uses: 2
        }
    );
    assert_eq!(names(store.as_ref(), &t, 1).await, ["coupon_redeemed"]);
}

pub async fn settling_moves_a_redemption_once_and_gives_its_uses_back(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .add_coupons(
            &t,
            vec![new("HOLD1", None, None), new("DONE1", None, None)],
            Vec::new(),
        )
        .await
        .unwrap();
    let limits = [limit("HOLD1", 1, None, None), limit("DONE1", 1, None, None)];
    store
        .redeem(
            &redemption(&t, "h", "m1", &["HOLD1"], RedemptionState::Held),
            &limits,
            Vec::new(),
        )
        .await
        .unwrap();
    store
        .redeem(
            &redemption(&t, "d", "m1", &["DONE1"], RedemptionState::Redeemed),
            &limits,
            Vec::new(),
        )
        .await
        .unwrap();
    let Settled::Yes(released) = store
        .settle(
            &t,
            "h",
            RedemptionState::Held,
            RedemptionState::Released,
            2_000,
            vec![event(&t, "coupon_released")],
        )
        .await
        .unwrap()
    else {
        panic!("the hold is released");
    };
    assert_eq!(
        (released.state, released.hold_until_ms, released.updated_ms),
        (RedemptionState::Released, None, 2_000)
    );
    assert_eq!(
        store
            .usage(&t, "T1", "HOLD1", "m1")
            .await
            .unwrap()
            .code_uses,
        0
    );
    let twice = store
        .settle(
            &t,
            "h",
            RedemptionState::Held,
            RedemptionState::Released,
            3_000,
            vec![event(&t, "lost")],
        )
        .await
        .unwrap();
    assert_eq!(twice, Settled::NotFrom(released));
    store
        .settle(
            &t,
            "d",
            RedemptionState::Redeemed,
            RedemptionState::Undone,
            2_000,
            Vec::new(),
        )
        .await
        .unwrap();
    let undone_twice = store
        .settle(
            &t,
            "d",
            RedemptionState::Redeemed,
            RedemptionState::Undone,
            2_000,
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(matches!(undone_twice, Settled::NotFrom(_)));
    assert_eq!(
        store.usage(&t, "T1", "DONE1", "m1").await.unwrap(),
        Usage::default(),
        "given back once"
    );
    assert_eq!(
        store
            .settle(
                &t,
                "nope",
                RedemptionState::Held,
                RedemptionState::Released,
                1,
                Vec::new()
            )
            .await
            .unwrap(),
        Settled::Missing
    );
    let held = redemption(&t, "h2", "m1", &["HOLD1"], RedemptionState::Held);
    store.redeem(&held, &limits, Vec::new()).await.unwrap();
    let confirmed = store
        .settle(
            &t,
            "h2",
            RedemptionState::Held,
            RedemptionState::Redeemed,
            2_500,
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(matches!(confirmed, Settled::Yes(r) if r.state == RedemptionState::Redeemed));
    assert_eq!(
        store
            .usage(&t, "T1", "HOLD1", "m1")
            .await
            .unwrap()
            .code_uses,
        1,
        "a confirmed hold still counts"
    );
    assert_eq!(names(store.as_ref(), &t, 1).await, ["coupon_released"]);
}

pub async fn lapsed_holds_are_listed_until_settled(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .add_coupons(&t, vec![new("LAPSE1", None, None)], Vec::new())
        .await
        .unwrap();
    let held = redemption(&t, "h", "m1", &["LAPSE1"], RedemptionState::Held);
    store
        .redeem(&held, &[limit("LAPSE1", 1, None, None)], Vec::new())
        .await
        .unwrap();
    let mine = |all: Vec<Redemption>| {
        all.into_iter()
            .filter(|r| r.tenant == t.as_str())
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert!(
        mine(store.lapsed_holds(5_000, 10_000).await.unwrap()).is_empty(),
        "not before it lapses"
    );
    assert_eq!(
        mine(store.lapsed_holds(5_001, 10_000).await.unwrap()),
        ["h"]
    );
    store
        .settle(
            &t,
            "h",
            RedemptionState::Held,
            RedemptionState::Released,
            6_000,
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(mine(store.lapsed_holds(i64::MAX, 10_000).await.unwrap()).is_empty());
}

pub async fn lapsing_member_coupons_page_in_order_after_the_cursor(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    // Far in the future, where no other body's coupons lapse.
    let base = 4_000_000_000_000 + i64::from(rand::random::<u32>() % 1_000_000) * 1_000;
    let add = |code: &str, member: Option<&str>, until: i64| NewCoupon {
        coupon: coupon(code, member, until),
        issue_key: None,
        events: Vec::new(),
    };
    store
        .add_coupons(
            &t,
            vec![
                add("EXP3", Some("m"), base + 3),
                add("EXP1", Some("m"), base + 1),
                add("EXP2", Some("m"), base + 1),
                add("BEARER", None, base + 1),
            ],
            Vec::new(),
        )
        .await
        .unwrap();
    let start = ExpiryCursor {
        until_ms: base,
        tenant: String::new(),
        code: String::new(),
    };
    let codes = |page: Vec<(String, Coupon)>| {
        page.into_iter()
            .map(|(tenant, c)| {
                assert_eq!(tenant, t.as_str());
                c.code
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(store.coupons_lapsing(&start, base + 2, 10).await.unwrap()),
        ["EXP1", "EXP2"],
        "bearer codes have no one to tell"
    );
    let after_first = ExpiryCursor {
        until_ms: base + 1,
        tenant: t.to_string(),
        code: "EXP1".into(),
    };
    assert_eq!(
        codes(
            store
                .coupons_lapsing(&after_first, base + 3, 10)
                .await
                .unwrap()
        ),
        ["EXP2", "EXP3"]
    );
    assert_eq!(
        codes(store.coupons_lapsing(&start, base + 3, 1).await.unwrap()),
        ["EXP1"]
    );
    let before = store.expiry_cursor(EXPIRY).await.unwrap();
    let saved = ExpiryCursor {
        until_ms: before.until_ms.max(base + 1),
        tenant: t.to_string(),
        code: "EXP1".into(),
    };
    store
        .advance_expiry(
            EXPIRY,
            saved.clone(),
            vec![event(&t, "coupon_expiring_soon")],
        )
        .await
        .unwrap();
    assert_eq!(store.expiry_cursor(EXPIRY).await.unwrap(), saved);
    assert_eq!(names(store.as_ref(), &t, 1).await, ["coupon_expiring_soon"]);
}

pub async fn the_change_log_keeps_commit_order_and_reader_positions(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    // The second event's write is made in a request's trace: its record carries it.
    let traced = trace_context();
    for name in ["one", "two", "three"] {
        let made = event(&t, name);
        if name == "two" {
            loyalty_events::trace::keep([made.id.clone()], &traced);
        }
        store.add_coupons(&t, Vec::new(), vec![made]).await.unwrap();
    }
    assert_eq!(names(store.as_ref(), &t, 3).await, ["one", "two", "three"]);
    let all = store.events_after(0, 100_000).await.unwrap();
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "in sequence order"
    );
    let traces: Vec<(&str, Option<&TraceContext>)> = all
        .iter()
        .filter(|e| e.event.tenant == t.as_str())
        .map(|e| (e.event.name.as_str(), e.trace.as_ref()))
        .collect();
    assert_eq!(
        traces,
        [("one", None), ("two", Some(&traced)), ("three", None)]
    );
    // The log's end, for the publisher's backlog: at least what was read.
    let newest = all.last().unwrap().seq;
    assert!(store.log_end(0).await.unwrap() >= newest);
    let reader = conformance::unique("reader");
    assert_eq!(store.position(&reader).await.unwrap(), 0);
    store.save_position(&reader, 7).await.unwrap();
    assert_eq!(store.position(&reader).await.unwrap(), 7);
}

pub async fn concurrent_redemptions_of_one_code_count_once(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .add_coupons(&t, vec![new("RACE1", None, None)], Vec::new())
        .await
        .unwrap();
    let limits = [limit("RACE1", 1, None, Some(1))];
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (store, t) = (Arc::clone(&store), t.clone());
            let r = redemption(
                &t,
                &format!("r{n}"),
                &format!("m{n}"),
                &["RACE1"],
                RedemptionState::Redeemed,
            );
            let limits = limits.clone();
            tokio::spawn(async move { store.redeem(&r, &limits, Vec::new()).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        // A request told to retry (contention) did not redeem.
        if let Ok(Redeemed::Yes) = task.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let usage = store.usage(&t, "T1", "RACE1", "m0").await.unwrap();
    assert_eq!(
        (usage.code_uses, usage.total_uses),
        (1, 1),
        "refused attempts gave their counts back"
    );
}

/// Declares the suite for both adapters: `campaign_conformance!(embedded_setup,
/// scylla_setup)`, each setup an async fn returning [`Stores`] (the ScyllaDB one an
/// `Option`, None without a cluster).
#[macro_export]
macro_rules! campaign_conformance {
    ($embedded:path, $scylla:path) => {
        $crate::campaign_conformance!(@bodies $embedded, $scylla;
            templates, templates_are_written_by_version;
            codes, codes_are_unique_per_tenant_and_issue_keys_answer_once;
            limits, a_redemption_counts_against_every_limit_or_writes_nothing;
            settling, settling_moves_a_redemption_once_and_gives_its_uses_back;
            lapsed_holds, lapsed_holds_are_listed_until_settled;
            lapsing_coupons, lapsing_member_coupons_page_in_order_after_the_cursor;
            change_log, the_change_log_keeps_commit_order_and_reader_positions;
            concurrency, concurrent_redemptions_of_one_code_count_once;
            sale_claims, a_claim_counts_against_its_quota_and_member_or_writes_nothing;
            sale_settling, settling_a_claim_moves_it_once_and_gives_its_unit_back;
            sale_lapsed_claims, lapsed_claims_are_listed_until_settled;
            sale_concurrency, concurrent_claims_sell_exactly_each_quota;
            plan_versions, campaigns_are_written_by_version_keeping_their_counters;
            plan_budget, a_grant_takes_its_units_once_and_never_overspends;
            plan_caps, a_member_is_capped_per_period_and_settling_gives_back;
            plan_reserved, reserved_grants_are_listed_oldest_first_until_settled;
            plan_tenants, campaigns_and_grants_are_kept_per_tenant;
            plan_no_budget, a_campaign_without_a_budget_takes_any_number_of_grants;
            plan_holdout, a_grant_held_out_takes_no_budget_and_is_never_listed_reserved;
            results_facts, a_fact_counts_once_and_after_the_fact_it_follows;
            results_racing, racing_tallies_count_each_fact_once;
            results_links, links_are_kept_per_thing_linked;
            referral_codes, a_referral_code_is_one_per_member_and_unique_per_tenant;
            referral_fingerprints, fingerprints_name_the_other_members_that_presented_them;
            referral_once, a_referral_is_one_per_referee_and_campaign;
            referral_caps, a_referrer_is_rewarded_under_its_cap_once_per_referral;
            referral_racing, racing_qualifications_never_pass_a_referrers_cap;
            check_in_days, a_member_checks_in_once_a_day_and_a_missed_day_restarts_the_streak;
            check_in_racing, racing_check_ins_of_one_day_count_once;
            mall_items, items_are_written_by_version_keeping_their_units_taken;
            mall_orders, an_order_counts_against_its_stock_and_member_or_writes_nothing;
            mall_settling, settling_an_order_moves_it_once_and_gives_its_unit_back;
            mall_due, orders_are_listed_by_when_they_are_due_until_settled;
            mall_racing, racing_orders_sell_exactly_the_stock;
            draw_entries, an_entry_wins_what_its_roll_gives_within_stock_and_limit;
            draw_voiding, voiding_an_entry_gives_its_prize_and_count_back_once;
            draw_due, drawn_entries_are_listed_by_when_they_are_due_until_settled;
            draw_racing, racing_entries_never_win_a_prize_past_its_stock;
        );
    };
    (@bodies $embedded:path, $scylla:path; $($name:ident, $body:ident;)*) => {
        $(
            ::loyalty_scylla::conformance!(
                $name,
                $crate::store::conformance::$body,
                $embedded,
                $scylla
            );
        )*
    };
}
