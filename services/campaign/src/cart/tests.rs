use super::*;
use crate::template::{Eligibility, Validity};
use proptest::prelude::*;

fn template(id: &str, benefit: Benefit, stacking: Stacking, priority: i32) -> CouponTemplate {
    CouponTemplate {
        id: id.into(),
        name: id.into(),
        benefit,
        min_spend: 0,
        eligible: Eligibility::default(),
        validity: Validity::DaysFromIssue { days: 1 },
        per_member_limit: None,
        total_limit: None,
        uses_per_code: 1,
        stacking,
        priority,
        active: true,
    }
}

fn candidate(code: &str, template: CouponTemplate) -> Candidate {
    Candidate {
        coupon: Coupon {
            code: code.into(),
            template: template.id.clone(),
            member: None,
            issued_ms: 0,
            valid_from_ms: 0,
            valid_until_ms: 1_000,
            batch: None,
        },
        template,
        usage: Usage::default(),
    }
}

fn line(id: &str, sku: &str, category: &str, quantity: u32, unit_price: i64) -> Line {
    Line {
        id: id.into(),
        sku: sku.into(),
        category: Some(category.into()),
        quantity,
        unit_price,
    }
}

fn cart(lines: Vec<Line>) -> Cart {
    Cart {
        member: "m1".into(),
        store: "s1".into(),
        brand: Some("b1".into()),
        at_ms: 500,
        tier: Some("gold".into()),
        lines,
    }
}

fn amounts(r: &CouponResult) -> Vec<(String, i64)> {
    r.lines
        .iter()
        .map(|l| (l.line_id.clone(), l.amount))
        .collect()
}

#[test]
fn an_amount_off_is_spread_in_proportion_with_the_leftover_unit_to_the_largest_remainder() {
    let c = cart(vec![
        line("a", "A", "x", 1, 100),
        line("b", "B", "x", 1, 200),
    ]);
    let t = template(
        "T",
        Benefit::AmountOff { amount: 100 },
        Stacking::Exclusive,
        0,
    );
    let e = evaluate(&c, &[candidate("C1", t)]);
    // 100 × 100/300 = 33.3, 100 × 200/300 = 66.7: the leftover unit goes to b.
    assert_eq!(amounts(&e.coupons[0]), [("a".into(), 33), ("b".into(), 67)]);
    assert_eq!((e.subtotal, e.discount, e.total), (300, 100, 200));
}

#[test]
fn a_percentage_rounds_down_on_every_line() {
    let c = cart(vec![
        line("a", "A", "x", 1, 333),
        line("b", "B", "x", 3, 111),
    ]);
    let t = template(
        "T",
        Benefit::PercentOff {
            basis_points: 1_500,
            cap: None,
        },
        Stacking::Exclusive,
        0,
    );
    let e = evaluate(&c, &[candidate("C1", t)]);
    assert_eq!(amounts(&e.coupons[0]), [("a".into(), 49), ("b".into(), 49)]);
}

#[test]
fn a_cap_is_spread_over_the_percentage_shares() {
    let c = cart(vec![
        line("a", "A", "x", 1, 10_000),
        line("b", "B", "x", 1, 30_000),
    ]);
    let t = template(
        "T",
        Benefit::PercentOff {
            basis_points: 1_000,
            cap: Some(1_000),
        },
        Stacking::Exclusive,
        0,
    );
    let e = evaluate(&c, &[candidate("C1", t)]);
    assert_eq!(
        amounts(&e.coupons[0]),
        [("a".into(), 250), ("b".into(), 750)]
    );
}

#[test]
fn a_free_item_takes_the_cheapest_eligible_unit() {
    let c = cart(vec![
        line("a", "A", "x", 2, 500),
        line("b", "B", "x", 1, 300),
        line("c", "C", "y", 1, 100),
    ]);
    let mut t = template("T", Benefit::FreeItem { sku: None }, Stacking::Exclusive, 0);
    t.eligible.categories = vec!["x".into()];
    let e = evaluate(&c, &[candidate("C1", t)]);
    assert_eq!(amounts(&e.coupons[0]), [("b".into(), 300)]);
    let named = template(
        "N",
        Benefit::FreeItem {
            sku: Some("A".into()),
        },
        Stacking::Exclusive,
        0,
    );
    let e = evaluate(&c, &[candidate("C2", named)]);
    assert_eq!(amounts(&e.coupons[0]), [("a".into(), 500)]);
}

#[test]
fn an_exclusive_coupon_of_higher_priority_applies_alone() {
    let c = cart(vec![line("a", "A", "x", 1, 10_000)]);
    let ex = template(
        "EX",
        Benefit::AmountOff { amount: 100 },
        Stacking::Exclusive,
        9,
    );
    let g = template(
        "G",
        Benefit::AmountOff { amount: 500 },
        Stacking::Group { group: "g".into() },
        1,
    );
    let e = evaluate(&c, &[candidate("C2", g), candidate("C1", ex)]);
    assert_eq!(e.coupons[0].refusal, Some(Refusal::NotStackable));
    assert!(e.coupons[1].applies);
    assert_eq!(e.discount, 100);
}

#[test]
fn a_group_stacks_in_priority_order_each_on_what_the_one_before_left() {
    let c = cart(vec![line("a", "A", "x", 1, 10_000)]);
    let group = || Stacking::Group { group: "g".into() };
    let first = template("F", Benefit::AmountOff { amount: 1_000 }, group(), 5);
    let second = template(
        "S",
        Benefit::PercentOff {
            basis_points: 1_000,
            cap: None,
        },
        group(),
        1,
    );
    let other = template(
        "O",
        Benefit::AmountOff { amount: 1 },
        Stacking::Group { group: "h".into() },
        0,
    );
    let e = evaluate(
        &c,
        &[
            candidate("C3", second),
            candidate("C9", other),
            candidate("C1", first),
        ],
    );
    assert_eq!(e.coupons[2].discount, 1_000);
    assert_eq!(e.coupons[0].discount, 900, "10% of what the first left");
    assert_eq!(e.coupons[1].refusal, Some(Refusal::NotStackable));
    assert_eq!(e.total, 8_100);
}

#[test]
fn the_minimum_spend_counts_the_eligible_lines_before_any_discount() {
    let c = cart(vec![
        line("a", "A", "x", 1, 6_000),
        line("b", "B", "y", 1, 6_000),
    ]);
    let mut t = template(
        "T",
        Benefit::AmountOff { amount: 100 },
        Stacking::Exclusive,
        0,
    );
    t.min_spend = 10_000;
    t.eligible.categories = vec!["x".into()];
    let e = evaluate(&c, &[candidate("C1", t.clone())]);
    assert_eq!(e.coupons[0].refusal, Some(Refusal::MinSpend));
    t.eligible.categories.clear();
    assert!(evaluate(&c, &[candidate("C1", t)]).coupons[0].applies);
}

#[test]
fn every_refusal_is_given_for_its_reason() {
    let c = cart(vec![line("a", "A", "x", 1, 1_000)]);
    let base = || {
        candidate(
            "C",
            template(
                "T",
                Benefit::AmountOff { amount: 10 },
                Stacking::Exclusive,
                0,
            ),
        )
    };
    let case = |change: &dyn Fn(&mut Candidate)| {
        let mut cand = base();
        change(&mut cand);
        evaluate(&c, &[cand]).coupons[0].refusal
    };
    assert_eq!(
        case(&|c| c.template.active = false),
        Some(Refusal::Inactive)
    );
    assert_eq!(
        case(&|c| c.coupon.valid_from_ms = 501),
        Some(Refusal::NotYetValid)
    );
    assert_eq!(
        case(&|c| c.coupon.valid_until_ms = 500),
        Some(Refusal::Expired)
    );
    assert_eq!(
        case(&|c| c.coupon.member = Some("m2".into())),
        Some(Refusal::NotHolder)
    );
    assert_eq!(case(&|c| c.usage.code_uses = 1), Some(Refusal::UsedUp));
    assert_eq!(
        case(&|c| {
            c.template.per_member_limit = Some(2);
            c.usage.member_uses = 2;
        }),
        Some(Refusal::MemberLimit)
    );
    assert_eq!(
        case(&|c| {
            c.template.total_limit = Some(5);
            c.usage.total_uses = 5;
        }),
        Some(Refusal::TotalLimit)
    );
    assert_eq!(
        case(&|c| c.template.eligible.tiers = vec!["diamond".into()]),
        Some(Refusal::Tier)
    );
    assert_eq!(
        case(&|c| c.template.eligible.stores = vec!["s9".into()]),
        Some(Refusal::Store)
    );
    assert_eq!(
        case(&|c| c.template.eligible.brands = vec!["b9".into()]),
        Some(Refusal::Brand)
    );
    assert_eq!(
        case(&|c| c.template.eligible.skus = vec!["Z".into()]),
        Some(Refusal::NoEligibleLines)
    );
    assert_eq!(
        case(&|c| c.template.min_spend = 1_001),
        Some(Refusal::MinSpend)
    );
    assert_eq!(case(&|_| {}), None);
    let twice = evaluate(&c, &[base(), base()]);
    assert_eq!(twice.coupons[1].refusal, Some(Refusal::Duplicate));
}

#[test]
fn bonus_points_and_stored_value_take_nothing_off() {
    let c = cart(vec![line("a", "A", "x", 2, 5_000)]);
    let double = template(
        "P",
        Benefit::PointsMultiplier {
            multiplier_percent: 200,
            points_per_unit: 1,
        },
        Stacking::Group { group: "g".into() },
        0,
    );
    let gift = template(
        "S",
        Benefit::StoredValueBonus { amount: 500 },
        Stacking::Group { group: "g".into() },
        0,
    );
    let e = evaluate(&c, &[candidate("C1", double), candidate("C2", gift)]);
    assert_eq!(
        (e.coupons[0].bonus_points, e.coupons[0].discount),
        (100, 0),
        "100.00 at double points"
    );
    assert_eq!((e.coupons[1].stored_value, e.total), (500, 10_000));
}

#[test]
fn a_bad_cart_is_refused_naming_the_field() {
    let mut c = cart(vec![line("a", "A", "x", 0, 100)]);
    assert!(
        check_cart(&c)
            .unwrap_err()
            .starts_with("cart.lines[0].quantity")
    );
    c.lines = vec![line("a", "A", "x", 1, 100), line("a", "B", "x", 1, 100)];
    assert!(check_cart(&c).unwrap_err().contains("twice"));
    c.lines = vec![line("a", "A", "x", 1_000_000, MAX_AMOUNT)];
    assert!(check_cart(&c).is_err());
    c.lines = Vec::new();
    assert!(check_cart(&c).is_err());
}

fn any_benefit() -> impl Strategy<Value = Benefit> {
    prop_oneof![
        (1i64..2_000_000).prop_map(|amount| Benefit::AmountOff { amount }),
        (1u32..=10_000, proptest::option::of(1i64..1_000_000))
            .prop_map(|(basis_points, cap)| Benefit::PercentOff { basis_points, cap }),
        proptest::option::of(prop_oneof![Just("A".to_string()), Just("B".to_string())])
            .prop_map(|sku| Benefit::FreeItem { sku }),
        (101u32..1_000, 1u32..10).prop_map(|(multiplier_percent, points_per_unit)| {
            Benefit::PointsMultiplier {
                multiplier_percent,
                points_per_unit,
            }
        }),
        (1i64..100_000).prop_map(|amount| Benefit::StoredValueBonus { amount }),
    ]
}

fn any_candidate() -> impl Strategy<Value = Candidate> {
    (
        any_benefit(),
        prop_oneof![
            Just(Stacking::Exclusive),
            Just(Stacking::Group { group: "g".into() }),
            Just(Stacking::Group { group: "h".into() })
        ],
        -3i32..3,
        0i64..50_000,
        "[A-F]{1,2}",
        proptest::option::of(prop_oneof![Just("x".to_string()), Just("y".to_string())]),
        0u32..3,
    )
        .prop_map(
            |(benefit, stacking, priority, min_spend, code, category, uses)| {
                let mut t = template("T", benefit, stacking, priority);
                t.id = format!("T{code}");
                t.min_spend = min_spend;
                t.uses_per_code = 2;
                t.eligible.categories = category.into_iter().collect();
                let mut c = candidate(&code, t);
                c.usage.code_uses = uses;
                c
            },
        )
}

fn any_cart() -> impl Strategy<Value = Cart> {
    proptest::collection::vec(
        (
            prop_oneof![Just("A"), Just("B"), Just("C")],
            prop_oneof![Just("x"), Just("y")],
            1u32..5,
            0i64..1_000_000_000,
        ),
        1..8,
    )
    .prop_map(|lines| {
        cart(
            lines
                .into_iter()
                .enumerate()
                .map(|(i, (sku, cat, q, p))| line(&format!("l{i}"), sku, cat, q, p / i64::from(q)))
                .collect(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_line_and_no_cart_goes_below_zero_and_the_sums_agree(
        c in any_cart(),
        candidates in proptest::collection::vec(any_candidate(), 0..6),
    ) {
        let e = evaluate(&c, &candidates);
        prop_assert_eq!(e.coupons.len(), candidates.len());
        prop_assert!(e.total >= 0);
        prop_assert_eq!(e.total, e.subtotal - e.discount);
        let by_lines: i64 = e.coupons.iter().flat_map(|r| &r.lines).map(|l| l.amount).sum();
        prop_assert_eq!(by_lines, e.discount);
        for line in &c.lines {
            let taken: i64 = e.coupons.iter().flat_map(|r| &r.lines).filter(|l| l.line_id == line.id).map(|l| l.amount).sum();
            prop_assert!(taken <= line_amount(line));
        }
        for (r, cand) in e.coupons.iter().zip(&candidates) {
            prop_assert_eq!(r.discount, r.lines.iter().map(|l| l.amount).sum::<i64>());
            if !r.applies {
                prop_assert_eq!((r.discount, r.bonus_points, r.stored_value), (0, 0, 0));
            }
            if let Benefit::PercentOff { cap: Some(cap), .. } = cand.template.benefit {
                prop_assert!(r.discount <= cap);
            }
        }
        prop_assert_eq!(evaluate(&c, &candidates), e);
    }

    #[test]
    fn the_candidates_order_changes_only_the_output_order(
        c in any_cart(),
        candidates in proptest::collection::vec(any_candidate(), 0..6),
    ) {
        // Duplicates depend on which comes first; the rest must not.
        let mut seen = HashSet::new();
        let unique: Vec<Candidate> = candidates.into_iter().filter(|c| seen.insert(c.coupon.code.clone())).collect();
        let mut reversed = unique.clone();
        reversed.reverse();
        let (a, mut b) = (evaluate(&c, &unique), evaluate(&c, &reversed));
        b.coupons.reverse();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn one_percentage_alone_takes_exactly_its_rounded_down_share(
        c in any_cart(),
        bp in 1u32..=10_000,
    ) {
        let t = template("T", Benefit::PercentOff { basis_points: bp, cap: None }, Stacking::Exclusive, 0);
        let e = evaluate(&c, &[candidate("C", t)]);
        for line in &c.lines {
            let expected = i64::try_from(i128::from(line_amount(line)) * i128::from(bp) / 10_000).unwrap();
            let got = e.coupons[0].lines.iter().find(|l| l.line_id == line.id).map_or(0, |l| l.amount);
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn an_allocation_adds_up_and_no_share_passes_its_weight(
        amount in -10i64..2_000_000_000,
        weights in proptest::collection::vec(0i64..1_000_000_000, 0..10),
    ) {
        let shares = allocate(amount, &weights);
        prop_assert_eq!(shares.len(), weights.len());
        let total: i64 = weights.iter().sum();
        prop_assert_eq!(shares.iter().sum::<i64>(), amount.max(0).min(total));
        for (s, w) in shares.iter().zip(&weights) {
            prop_assert!(*s >= 0 && s <= w);
        }
    }
}
