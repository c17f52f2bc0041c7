use super::*;
use loyalty_common::error::ErrorCode;
use proptest::prelude::*;

/// Noon UTC on a date: the controlled clock of these tests.
fn at(date: &str) -> Timestamp {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    Timestamp::from_datetime(d.and_hms_opt(12, 0, 0).unwrap().and_utc())
}

fn registered(date: &str) -> MemberFacts {
    MemberFacts::new("m1", at(date))
}

/// A member registered long ago with one order of `amount` at `when`.
fn bought_once(when: Timestamp, amount: i64) -> MemberFacts {
    let mut facts = registered("2020-01-01");
    facts.add_order(when, amount);
    facts
}

fn rfm(facts: &MemberFacts, now: Timestamp) -> RfmScore {
    score(&ScoringPolicy::default(), facts, now).rfm.unwrap()
}

#[test]
fn the_defaults_are_valid() {
    assert!(ScoringPolicy::default().validate().is_ok());
}

#[test]
fn recency_bands_at_each_edge() {
    // Default cut points 30, 90, 180, 365 days.
    let last = at("2026-01-01");
    let facts = bought_once(last, 1_000);
    let cases = [
        (0, 5),
        (30, 5),
        (31, 4),
        (90, 4),
        (91, 3),
        (180, 3),
        (181, 2),
        (365, 2),
        (366, 1),
        (2000, 1),
    ];
    for (days, expected) in cases {
        let now = last.plus_days(days);
        assert_eq!(rfm(&facts, now).recency, expected, "{days} days");
    }
    // Whole days: 30 days and 23 hours is still 30 days.
    let almost = last.plus_days(31).plus_secs(-60);
    assert_eq!(rfm(&facts, almost).recency, 5);
    // An order stamped in the future (a clock ahead) counts as today.
    assert_eq!(rfm(&facts, last.plus_days(-2)).recency, 5);
}

#[test]
fn frequency_bands_at_each_edge() {
    // Default cut points 2, 4, 8, 12 orders in the last 12 months.
    let now = at("2026-12-31");
    let cases = [
        (1, 1),
        (2, 2),
        (3, 2),
        (4, 3),
        (7, 3),
        (8, 4),
        (11, 4),
        (12, 5),
        (40, 5),
    ];
    for (orders, expected) in cases {
        let mut facts = registered("2020-01-01");
        for i in 0..orders {
            facts.add_order(at("2026-06-01").plus_days(i), 100);
        }
        assert_eq!(rfm(&facts, now).frequency, expected, "{orders} orders");
    }
    // Orders before the 12-month window do not count; refunds never count.
    let mut facts = registered("2020-01-01");
    for i in 0..12 {
        facts.add_order(at("2025-11-01").plus_days(i), 100);
    }
    facts.add_order(at("2026-06-01"), 100);
    facts.add_order(at("2026-06-02"), -100);
    assert_eq!(rfm(&facts, now).frequency, 1);
    assert_eq!(rfm(&facts, at("2026-10-31")).frequency, 5);
}

#[test]
fn monetary_bands_at_each_edge() {
    // Default cut points 20,000 / 100,000 / 300,000 / 1,000,000 minor units.
    let now = at("2026-12-31");
    let cases = [
        (0, 1),
        (19_999, 1),
        (20_000, 2),
        (99_999, 2),
        (100_000, 3),
        (299_999, 3),
        (300_000, 4),
        (999_999, 4),
        (1_000_000, 5),
        (i64::MAX, 5),
    ];
    for (spend, expected) in cases {
        let facts = bought_once(at("2026-06-01"), spend);
        assert_eq!(rfm(&facts, now).monetary, expected, "spend {spend}");
    }
    // Refunds lower it; a net negative 12 months scores 1.
    let mut facts = bought_once(at("2026-06-01"), 100_000);
    facts.add_order(at("2026-06-02"), -50_000);
    assert_eq!(rfm(&facts, now).monetary, 2);
    facts.add_order(at("2026-06-03"), -80_000);
    assert_eq!(rfm(&facts, now).monetary, 1);
}

#[test]
fn a_tenants_own_bands_apply() {
    let policy = ScoringPolicy {
        recency_days: [7, 14, 21, 28],
        frequency_orders: [1, 2, 3, 4],
        monetary_minor: [1, 2, 3, 4],
        ..ScoringPolicy::default()
    };
    assert!(policy.validate().is_ok());
    let facts = bought_once(at("2026-06-01"), 3);
    let scores = score(&policy, &facts, at("2026-06-15"));
    assert_eq!(
        scores.rfm,
        Some(RfmScore {
            recency: 4,
            frequency: 2,
            monetary: 4
        })
    );
}

#[test]
fn a_member_who_never_ordered_has_no_rfm_score() {
    let facts = registered("2026-01-01");
    let scores = score(&ScoringPolicy::default(), &facts, at("2026-03-01"));
    assert_eq!(scores.rfm, None);
    assert!(!scores.churn_risk);
}

#[test]
fn a_weekly_buyer_is_at_risk_after_the_floor_of_thirty_days() {
    // Four orders a week apart: usual gap 7 days, three times that is 21, under the 30-day
    // floor.
    let mut facts = registered("2025-01-01");
    let last = at("2026-01-22");
    for i in 0..4 {
        facts.add_order(at("2026-01-01").plus_days(7 * i), 5_000);
    }
    let policy = ScoringPolicy::default();
    assert!(!score(&policy, &facts, last.plus_days(29)).churn_risk);
    assert!(score(&policy, &facts, last.plus_days(30)).churn_risk);
    // Its lifecycle stage still says Active: the flag sees the change of habit sooner.
    assert_eq!(
        score(&policy, &facts, last.plus_days(30)).lifecycle,
        Lifecycle::Active
    );
}

#[test]
fn a_buyer_is_at_risk_after_three_times_its_usual_gap() {
    // Three orders 45 days apart: usual gap 45 days, at risk from 135 days of quiet.
    let mut facts = registered("2025-01-01");
    facts.add_order(at("2026-01-01"), 5_000);
    facts.add_order(at("2026-02-15"), 5_000);
    let last = at("2026-04-01");
    facts.add_order(last, 5_000);
    let policy = ScoringPolicy::default();
    assert!(!score(&policy, &facts, last.plus_days(134)).churn_risk);
    assert!(score(&policy, &facts, last.plus_days(135)).churn_risk);
    // Buying again clears it.
    facts.add_order(last.plus_days(140), 5_000);
    assert!(!score(&policy, &facts, last.plus_days(141)).churn_risk);
    // A tenant asking for twice the gap flags it sooner.
    let mut eager = ScoringPolicy::default();
    eager.churn.gap_percent = 200;
    let mut facts = registered("2025-01-01");
    facts.add_order(at("2026-01-01"), 5_000);
    facts.add_order(at("2026-02-15"), 5_000);
    assert!(!score(&eager, &facts, at("2026-02-15").plus_days(89)).churn_risk);
    assert!(score(&eager, &facts, at("2026-02-15").plus_days(90)).churn_risk);
}

#[test]
fn a_member_with_fewer_orders_than_the_rule_asks_is_never_at_risk() {
    let policy = ScoringPolicy::default();
    let facts = bought_once(at("2026-01-01"), 5_000);
    assert!(!score(&policy, &facts, at("2030-01-01")).churn_risk);
    let mut strict = ScoringPolicy::default();
    strict.churn.min_orders = 3;
    let mut facts = registered("2025-01-01");
    facts.add_order(at("2026-01-01"), 5_000);
    facts.add_order(at("2026-01-02"), 5_000);
    assert!(score(&policy, &facts, at("2026-06-01")).churn_risk);
    assert!(!score(&strict, &facts, at("2026-06-01")).churn_risk);
}

#[test]
fn lifecycle_stages_at_each_edge() {
    let rule = LifecycleRule::default(); // new 30, active 90, dormant 365
    let signup = at("2026-01-01");

    // New: within 30 days, with no order or one.
    let fresh = MemberFacts::new("m1", signup);
    assert_eq!(
        lifecycle(&rule, &fresh, signup.plus_days(30)),
        Lifecycle::New
    );
    let mut one = fresh.clone();
    one.add_order(signup.plus_days(1), 100);
    assert_eq!(lifecycle(&rule, &one, signup.plus_days(30)), Lifecycle::New);
    // A second order makes a new member Active at once.
    let mut two = one.clone();
    two.add_order(signup.plus_days(2), 100);
    assert_eq!(
        lifecycle(&rule, &two, signup.plus_days(3)),
        Lifecycle::Active
    );
    // Past new_days, a one-order member is judged by its order.
    assert_eq!(
        lifecycle(&rule, &one, signup.plus_days(31)),
        Lifecycle::Active
    );

    // Active up to 90 days after the last order, AtRisk to 365, Dormant after.
    let last = signup.plus_days(2);
    assert_eq!(
        lifecycle(&rule, &two, last.plus_days(90)),
        Lifecycle::Active
    );
    assert_eq!(
        lifecycle(&rule, &two, last.plus_days(91)),
        Lifecycle::AtRisk
    );
    assert_eq!(
        lifecycle(&rule, &two, last.plus_days(365)),
        Lifecycle::AtRisk
    );
    assert_eq!(
        lifecycle(&rule, &two, last.plus_days(366)),
        Lifecycle::Dormant
    );

    // Never ordered: New, then AtRisk from day 31 (never Active), Dormant after day 365.
    assert_eq!(
        lifecycle(&rule, &fresh, signup.plus_days(31)),
        Lifecycle::AtRisk
    );
    assert_eq!(
        lifecycle(&rule, &fresh, signup.plus_days(365)),
        Lifecycle::AtRisk
    );
    assert_eq!(
        lifecycle(&rule, &fresh, signup.plus_days(366)),
        Lifecycle::Dormant
    );
}

/// Runs the daily job from `from` for `days` days, the member placing `orders` (day,
/// amount) as they come; the stages it announced (apply said "changed" and the stage moved)
/// with the day they happened.
fn daily_stages(
    facts: &mut MemberFacts,
    from: Timestamp,
    days: i64,
    orders: &[(i64, i64)],
) -> Vec<(i64, Lifecycle)> {
    let policy = ScoringPolicy::default();
    let mut seen = vec![(0, facts.lifecycle)];
    for day in 0..=days {
        let now = from.plus_days(day);
        for (_, amount) in orders.iter().filter(|(d, _)| *d == day) {
            facts.add_order(now, *amount);
        }
        let before = facts.lifecycle;
        let changed = apply(facts, score(&policy, facts, now));
        if facts.lifecycle != before {
            assert!(changed);
            seen.push((day, facts.lifecycle));
        }
    }
    seen
}

#[test]
fn a_member_who_never_buys_goes_from_new_to_at_risk_to_dormant() {
    let signup = at("2026-01-01");
    let mut facts = MemberFacts::new("m1", signup);
    let stages = daily_stages(&mut facts, signup, 800, &[]);
    assert_eq!(
        stages,
        vec![
            (0, Lifecycle::New),
            (31, Lifecycle::AtRisk),
            (366, Lifecycle::Dormant)
        ]
    );
    assert_eq!(facts.rfm, None);
    assert!(!facts.churn_risk);
}

#[test]
fn a_member_who_stops_buying_goes_from_new_to_active_to_at_risk_to_dormant() {
    let signup = at("2026-01-01");
    let mut facts = MemberFacts::new("m1", signup);
    // One order keeps a member New; the second (day 10) makes it Active. Then nothing.
    let stages = daily_stages(&mut facts, signup, 800, &[(3, 30_000), (10, 30_000)]);
    assert_eq!(
        stages,
        vec![
            (0, Lifecycle::New),
            (10, Lifecycle::Active),
            (101, Lifecycle::AtRisk),
            (376, Lifecycle::Dormant)
        ]
    );
    // Long lapsed: lowest scores, flagged.
    assert_eq!(
        facts.rfm,
        Some(RfmScore {
            recency: 1,
            frequency: 1,
            monetary: 1
        })
    );
    assert!(facts.churn_risk);
}

#[test]
fn the_churn_flag_rises_on_schedule_as_time_passes() {
    // Orders on days 3 and 10: usual gap 7 days, so the 30-day floor decides: day 40.
    let signup = at("2026-01-01");
    let policy = ScoringPolicy::default();
    let mut facts = MemberFacts::new("m1", signup);
    facts.add_order(signup.plus_days(3), 30_000);
    facts.add_order(signup.plus_days(10), 30_000);
    let first_flagged =
        (10..100).find(|day| score(&policy, &facts, signup.plus_days(*day)).churn_risk);
    assert_eq!(first_flagged, Some(40));
}

fn rescore(policy: &ScoringPolicy, facts: &mut MemberFacts, now: Timestamp) -> bool {
    let scores = score(policy, facts, now);
    apply(facts, scores)
}

#[test]
fn apply_reports_only_real_changes() {
    let policy = ScoringPolicy::default();
    let mut facts = bought_once(at("2026-01-01"), 50_000);
    let now = at("2026-01-05");
    assert!(rescore(&policy, &mut facts, now));
    assert_eq!(facts.lifecycle, Lifecycle::Active);
    assert!(facts.rfm.is_some());
    // The same day, or the next with the same bands: nothing to store.
    assert!(!rescore(&policy, &mut facts, now));
    assert!(!rescore(&policy, &mut facts, at("2026-01-06")));
    // Recency drops a band on day 31.
    assert!(rescore(&policy, &mut facts, at("2026-02-01")));
    assert_eq!(facts.rfm.map(|r| r.recency), Some(4));
}

#[test]
fn validation_names_the_problem() {
    type Mutate = fn(&mut ScoringPolicy);
    let cases: Vec<(Mutate, &str)> = vec![
        (|p| p.recency_days = [30, 30, 180, 365], "recency_days"),
        (|p| p.recency_days = [90, 30, 180, 365], "recency_days"),
        (|p| p.recency_days = [30, 90, 180, 3651], "recency_days"),
        (|p| p.frequency_orders = [0, 4, 8, 12], "frequency_orders"),
        (|p| p.frequency_orders = [2, 4, 4, 12], "frequency_orders"),
        (|p| p.monetary_minor = [0, 1, 2, 3], "monetary_minor"),
        (|p| p.monetary_minor = [3, 2, 1, 0], "monetary_minor"),
        (|p| p.churn.min_orders = 1, "churn.min_orders"),
        (|p| p.churn.gap_percent = 99, "churn.gap_percent"),
        (|p| p.churn.gap_percent = 10_001, "churn.gap_percent"),
        (|p| p.churn.min_days = 0, "churn.min_days"),
        (|p| p.lifecycle.active_days = 0, "active_days"),
        (
            |p| p.lifecycle.dormant_days = 90,
            "dormant_days must be above",
        ),
        (|p| p.lifecycle.dormant_days = 3651, "dormant_days"),
        (|p| p.lifecycle.new_days = 365, "new_days must be below"),
    ];
    for (mutate, expected) in cases {
        let mut policy = ScoringPolicy::default();
        mutate(&mut policy);
        let err = policy.validate().unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(
            err.message.contains(expected),
            "{:?} should mention {expected:?}",
            err.message
        );
    }
    // Edges that are fine.
    let policy = ScoringPolicy {
        recency_days: [0, 1, 2, 3],
        lifecycle: LifecycleRule {
            new_days: 0,
            active_days: 1,
            dormant_days: 2,
        },
        churn: ChurnRule {
            gap_percent: 100,
            ..ChurnRule::default()
        },
        ..ScoringPolicy::default()
    };
    assert!(policy.validate().is_ok());
}

#[test]
fn policies_round_trip() {
    let policy = ScoringPolicy::default();
    let bytes = postcard::to_stdvec(&policy).unwrap();
    assert_eq!(
        postcard::from_bytes::<ScoringPolicy>(&bytes).unwrap(),
        policy
    );
}

proptest! {
    #[test]
    fn scoring_never_panics_and_scores_stay_within_one_to_five(
        recency in prop::array::uniform4(any::<u32>()),
        frequency in prop::array::uniform4(any::<u32>()),
        monetary in prop::array::uniform4(any::<i64>()),
        churn in (any::<u32>(), any::<u32>(), any::<u32>()),
        stages in (any::<u32>(), any::<u32>(), any::<u32>()),
        orders in prop::collection::vec((0i64..4000, -1_000_000i64..1_000_000), 0..20),
        created in -1000i64..4000,
        now in -1000i64..6000,
    ) {
        let policy = ScoringPolicy {
            recency_days: recency,
            frequency_orders: frequency,
            monetary_minor: monetary,
            churn: ChurnRule { min_orders: churn.0, gap_percent: churn.1, min_days: churn.2 },
            lifecycle: LifecycleRule {
                new_days: stages.0,
                active_days: stages.1,
                dormant_days: stages.2,
            },
        };
        let _ = policy.validate();
        let origin = at("2020-01-01");
        let mut facts = MemberFacts::new("m1", origin.plus_days(created));
        for (day, amount) in orders {
            facts.add_order(origin.plus_days(day), amount);
        }
        let scores = score(&policy, &facts, origin.plus_days(now));
        if let Some(r) = scores.rfm {
            for s in [r.recency, r.frequency, r.monetary] {
                prop_assert!((1..=5).contains(&s));
            }
        }
        prop_assert_eq!(scores.rfm.is_some(), facts.last_order_at.is_some());
        let mut copy = facts.clone();
        apply(&mut copy, scores);
        prop_assert!(!apply(&mut copy, scores));
    }
}
