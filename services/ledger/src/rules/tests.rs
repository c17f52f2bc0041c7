use super::*;
use proptest::prelude::*;

fn at(y: i32, m: u32, d: u32) -> Timestamp {
    Timestamp::from_datetime(Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap())
}

fn order(lines: Vec<(String, i64)>, when: Timestamp) -> Order {
    let total = lines.iter().map(|l| l.1).sum();
    Order {
        order_id: "o".into(),
        total,
        lines: lines
            .into_iter()
            .map(|(category, amount)| OrderLine {
                sku: "s".into(),
                category,
                amount,
            })
            .collect(),
        occurred_at: Some(when),
        tier_multiplier_bp: None,
    }
}

fn category() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("food".to_string()),
        Just("beauty".to_string()),
        Just("other".to_string())
    ]
}

fn lines() -> impl Strategy<Value = Vec<(String, i64)>> {
    prop::collection::vec((category(), 0i64..10_000_000), 0..8)
}

fn rules_with_multipliers() -> RuleSet {
    RuleSet {
        categories: vec![
            CategoryMultiplier {
                category: "beauty".into(),
                multiplier_bp: 20_000,
            },
            CategoryMultiplier {
                category: "food".into(),
                multiplier_bp: 5_000,
            },
        ],
        ..RuleSet::default()
    }
}

proptest! {
    #[test]
    fn base_rate_matches_the_formula(lines in lines()) {
        let rules = RuleSet::default();
        let o = order(lines.clone(), at(2026, 3, 1));
        let expected: i64 = if lines.is_empty() { 0 } else { lines.iter().map(|l| l.1 / 100).sum() };
        prop_assert_eq!(rules.points_for(&o, o.occurred_at.unwrap()), expected);
    }

    #[test]
    fn points_are_never_negative_and_respect_the_order_cap(lines in lines(), cap in 1i64..5_000) {
        let rules = RuleSet { per_order_cap: cap, ..rules_with_multipliers() };
        let points = rules.points_for(&order(lines, at(2026, 3, 1)), at(2026, 3, 1));
        prop_assert!((0..=cap).contains(&points));
    }

    #[test]
    fn more_spend_never_earns_fewer_points(lines in lines(), extra in 0i64..1_000_000) {
        let rules = rules_with_multipliers();
        let base = order(lines.clone(), at(2026, 3, 1));
        let mut bigger = lines;
        bigger.push(("food".into(), extra));
        prop_assert!(rules.points_for(&order(bigger, at(2026, 3, 1)), at(2026, 3, 1)) >= rules.points_for(&base, base.occurred_at.unwrap()));
    }

    #[test]
    fn a_double_points_window_doubles_each_line_up_to_rounding(lines in lines()) {
        let start = at(2026, 5, 1);
        let promo = Promotion {
            name: "double".into(),
            starts_at: start,
            ends_at: start.plus_days(2),
            multiplier_bp: 20_000,
            categories: vec![],
        };
        let rules = RuleSet { promotions: vec![promo], ..rules_with_multipliers() };
        let inside = rules.points_for(&order(lines.clone(), start.plus_secs(60)), start.plus_secs(60));
        let outside = rules.points_for(&order(lines.clone(), start.plus_days(3)), start.plus_days(3));
        // Doubling before rounding down can add at most one point per line.
        prop_assert!(inside >= 2 * outside);
        prop_assert!(inside <= 2 * outside + lines.len().max(1) as i64);
    }

    #[test]
    fn category_multipliers_apply_per_line(amount in 0i64..10_000_000) {
        let rules = rules_with_multipliers();
        let when = at(2026, 3, 1);
        prop_assert_eq!(rules.points_for(&order(vec![("beauty".into(), amount)], when), when), amount * 2 / 100);
        prop_assert_eq!(rules.points_for(&order(vec![("food".into(), amount)], when), when), amount / 200);
    }
}

#[test]
fn rolling_expiry_ends_the_day_n_months_later() {
    let rules = RuleSet {
        expiry: ExpiryPolicy::RollingMonths { months: 12 },
        ..RuleSet::default()
    };
    assert_eq!(
        rules.expiry_for(at(2026, 1, 31)),
        Some(Timestamp::from_datetime(
            Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()
        ))
    );
}

#[test]
fn fixed_expiry_is_the_next_clearing_date() {
    let rules = RuleSet {
        expiry: ExpiryPolicy::FixedYearly { month: 12, day: 31 },
        ..RuleSet::default()
    };
    let end_2026 = Timestamp::from_datetime(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    assert_eq!(rules.expiry_for(at(2026, 6, 1)), Some(end_2026));
    assert_eq!(rules.expiry_for(at(2026, 12, 31)), Some(end_2026));
    let march = RuleSet {
        expiry: ExpiryPolicy::FixedYearly { month: 3, day: 1 },
        ..RuleSet::default()
    };
    assert_eq!(
        march.expiry_for(at(2026, 6, 1)),
        Some(Timestamp::from_datetime(
            Utc.with_ymd_and_hms(2027, 3, 2, 0, 0, 0).unwrap()
        ))
    );
}

#[test]
fn validation_rejects_nonsense() {
    assert!(RuleSet::default().validate().is_ok());
    assert!(
        RuleSet {
            unit_minor: 0,
            ..RuleSet::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        RuleSet {
            expiry: ExpiryPolicy::FixedYearly { month: 2, day: 30 },
            ..RuleSet::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        RuleSet {
            hold_ttl_secs: 0,
            ..RuleSet::default()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn largest_top_up_bonus_applies() {
    let rules = RuleSet {
        top_up_bonuses: vec![
            TopUpBonus {
                min_paid: 100_000,
                bonus: 10_000,
            },
            TopUpBonus {
                min_paid: 50_000,
                bonus: 4_000,
            },
        ],
        ..RuleSet::default()
    };
    assert_eq!(rules.top_up_bonus(100_000), 10_000);
    assert_eq!(rules.top_up_bonus(60_000), 4_000);
    assert_eq!(rules.top_up_bonus(10), 0);
}
