use super::*;
use loyalty_common::ErrorCode;

const DAY_MS: i64 = 86_400_000;

/// A valid template with `benefit`; the tests change one field at a time.
fn template(benefit: Benefit) -> CouponTemplate {
    CouponTemplate {
        id: "WELCOME10".into(),
        name: "Welcome".into(),
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

fn percent_off() -> CouponTemplate {
    template(Benefit::PercentOff {
        basis_points: 1_000,
        cap: Some(2_000),
    })
}

fn every_benefit() -> Vec<Benefit> {
    vec![
        Benefit::AmountOff { amount: 500 },
        Benefit::PercentOff {
            basis_points: 1_500,
            cap: None,
        },
        Benefit::PercentOff {
            basis_points: 1_000,
            cap: Some(2_000),
        },
        Benefit::FreeItem { sku: None },
        Benefit::FreeItem {
            sku: Some("SKU-COFFEE".into()),
        },
        Benefit::PointsMultiplier {
            multiplier_percent: 200,
            points_per_unit: 1,
        },
        Benefit::StoredValueBonus { amount: 1_000 },
    ]
}

/// Asserts that `t` validates.
#[track_caller]
fn accepted(t: &CouponTemplate) {
    if let Err(err) = t.validate() {
        panic!("{t:?} refused: {err:?}");
    }
}

/// Asserts that `t` is refused as an invalid argument with a message that starts with `field`.
#[track_caller]
fn refused(t: CouponTemplate, field: &str) {
    let err = t.validate().unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument, "{err:?}");
    assert!(
        err.message.starts_with(&format!("{field}: ")),
        "expected {field:?} named: {}",
        err.message
    );
}

/// `percent_off()` changed by `f`.
fn with(f: impl FnOnce(&mut CouponTemplate)) -> CouponTemplate {
    let mut t = percent_off();
    f(&mut t);
    t
}

fn with_benefit(benefit: Benefit) -> CouponTemplate {
    with(|t| t.benefit = benefit)
}

#[test]
fn a_good_template_of_each_benefit_kind_validates() {
    for benefit in every_benefit() {
        accepted(&template(benefit));
    }
}

#[test]
fn a_template_using_every_option_validates() {
    let t = CouponTemplate {
        min_spend: 10_000,
        eligible: Eligibility {
            skus: vec!["SKU-1".into(), "SKU-2".into()],
            categories: vec!["drinks".into()],
            stores: vec!["store-7".into()],
            brands: vec!["Acme".into()],
            tiers: vec!["gold".into()],
        },
        validity: Validity::Window {
            from_ms: 1_700_000_000_000,
            until_ms: 1_700_000_000_000 + 7 * DAY_MS,
        },
        per_member_limit: Some(1),
        total_limit: Some(10_000),
        uses_per_code: 500,
        stacking: Stacking::Group {
            group: "weekend".into(),
        },
        priority: -5,
        active: false,
        ..percent_off()
    };
    accepted(&t);
}

#[test]
fn the_limits_of_each_field_are_accepted() {
    let at_limits = [
        with(|t| t.id = "x".repeat(64)),
        with(|t| t.id = "a.b-c_D9".into()),
        with(|t| t.name = "名".repeat(42)), // 126 bytes
        with(|t| t.name = "n".repeat(128)),
        with_benefit(Benefit::AmountOff { amount: 1 }),
        with_benefit(Benefit::AmountOff { amount: MAX_AMOUNT }),
        with_benefit(Benefit::PercentOff {
            basis_points: 1,
            cap: Some(1),
        }),
        with_benefit(Benefit::PercentOff {
            basis_points: FULL_BASIS_POINTS,
            cap: Some(MAX_AMOUNT),
        }),
        with_benefit(Benefit::PointsMultiplier {
            multiplier_percent: 101,
            points_per_unit: 10_000,
        }),
        with_benefit(Benefit::PointsMultiplier {
            multiplier_percent: 10_000,
            points_per_unit: 1,
        }),
        with(|t| t.min_spend = MAX_AMOUNT),
        with(|t| t.eligible.skus = vec!["s".into(); 1_000]),
        with(|t| t.validity = Validity::DaysFromIssue { days: 1 }),
        with(|t| t.validity = Validity::DaysFromIssue { days: 3_650 }),
        with(|t| {
            t.validity = Validity::Window {
                from_ms: 0,
                until_ms: 1,
            }
        }),
        with(|t| t.uses_per_code = u32::MAX),
    ];
    for t in at_limits {
        accepted(&t);
    }
}

#[test]
fn a_bad_id_or_name_is_refused_by_name() {
    refused(with(|t| t.id = String::new()), "id");
    refused(with(|t| t.id = "x".repeat(65)), "id");
    refused(with(|t| t.id = "welcome 10".into()), "id");
    refused(with(|t| t.id = "welcome/10".into()), "id");
    refused(with(|t| t.name = String::new()), "name");
    refused(with(|t| t.name = "n".repeat(129)), "name");
    refused(with(|t| t.name = "Welcome\n".into()), "name");
}

#[test]
fn a_bad_benefit_is_refused_by_name() {
    for amount in [0, -1, MAX_AMOUNT + 1] {
        refused(
            with_benefit(Benefit::AmountOff { amount }),
            "benefit.amount",
        );
        refused(
            with_benefit(Benefit::StoredValueBonus { amount }),
            "benefit.amount",
        );
        refused(
            with_benefit(Benefit::PercentOff {
                basis_points: 1_000,
                cap: Some(amount),
            }),
            "benefit.cap",
        );
    }
    for basis_points in [0, FULL_BASIS_POINTS + 1] {
        refused(
            with_benefit(Benefit::PercentOff {
                basis_points,
                cap: None,
            }),
            "benefit.basis_points",
        );
    }
    for sku in [String::new(), "s".repeat(129), "SKU\t1".into()] {
        refused(
            with_benefit(Benefit::FreeItem { sku: Some(sku) }),
            "benefit.sku",
        );
    }
    for multiplier_percent in [0, 100, 10_001] {
        refused(
            with_benefit(Benefit::PointsMultiplier {
                multiplier_percent,
                points_per_unit: 1,
            }),
            "benefit.multiplier_percent",
        );
    }
    for points_per_unit in [0, 10_001] {
        refused(
            with_benefit(Benefit::PointsMultiplier {
                multiplier_percent: 200,
                points_per_unit,
            }),
            "benefit.points_per_unit",
        );
    }
}

#[test]
fn a_bad_min_spend_or_eligibility_is_refused_by_name() {
    refused(with(|t| t.min_spend = -1), "min_spend");
    refused(with(|t| t.min_spend = MAX_AMOUNT + 1), "min_spend");

    type List = fn(&mut Eligibility) -> &mut Vec<String>;
    let lists: [(&str, List); 5] = [
        ("eligible.skus", |e| &mut e.skus),
        ("eligible.categories", |e| &mut e.categories),
        ("eligible.stores", |e| &mut e.stores),
        ("eligible.brands", |e| &mut e.brands),
        ("eligible.tiers", |e| &mut e.tiers),
    ];
    for (field, list) in lists {
        refused(
            with(|t| *list(&mut t.eligible) = vec![String::new()]),
            field,
        );
        refused(
            with(|t| *list(&mut t.eligible) = vec!["ok".into(), "bad\u{7}".into()]),
            field,
        );
        refused(
            with(|t| *list(&mut t.eligible) = vec!["x".into(); 1_001]),
            field,
        );
    }
}

#[test]
fn a_bad_validity_is_refused_by_name() {
    for (from_ms, until_ms) in [(1_000, 1_000), (2_000, 1_000), (-1, 1_000)] {
        refused(
            with(|t| t.validity = Validity::Window { from_ms, until_ms }),
            "validity.window",
        );
    }
    for days in [0, 3_651] {
        refused(
            with(|t| t.validity = Validity::DaysFromIssue { days }),
            "validity.days_from_issue.days",
        );
    }
}

#[test]
fn bad_limits_and_stacking_are_refused_by_name() {
    refused(with(|t| t.per_member_limit = Some(0)), "per_member_limit");
    refused(with(|t| t.total_limit = Some(0)), "total_limit");
    refused(with(|t| t.uses_per_code = 0), "uses_per_code");
    for group in [String::new(), "g".repeat(129), "a\u{0}b".into()] {
        refused(
            with(|t| t.stacking = Stacking::Group { group }),
            "stacking.group",
        );
    }
}

#[test]
fn the_documented_json_parses_with_defaults_and_round_trips() {
    let json = r#"{"id":"WELCOME10","name":"Welcome","benefit":{"type":"percent_off","basis_points":1000,"cap":2000},"validity":{"days_from_issue":{"days":30}},"stacking":{"mode":"exclusive"}}"#;
    let t: CouponTemplate = serde_json::from_str(json).unwrap();
    assert_eq!(t, percent_off());
    assert_eq!(t.uses_per_code, 1);
    assert!(t.active);
    assert_eq!(t.min_spend, 0);
    assert_eq!(t.priority, 0);
    assert_eq!(t.eligible, Eligibility::default());
    assert_eq!((t.per_member_limit, t.total_limit), (None, None));
    accepted(&t);

    let back: CouponTemplate = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn every_shape_serializes_as_documented_and_round_trips() {
    let t = CouponTemplate {
        eligible: Eligibility {
            tiers: vec!["gold".into()],
            ..Eligibility::default()
        },
        validity: Validity::Window {
            from_ms: 1,
            until_ms: 2,
        },
        per_member_limit: Some(2),
        stacking: Stacking::Group { group: "g".into() },
        ..template(Benefit::FreeItem {
            sku: Some("SKU-1".into()),
        })
    };
    let value = serde_json::to_value(&t).unwrap();
    assert_eq!(
        value["benefit"],
        serde_json::json!({"type": "free_item", "sku": "SKU-1"})
    );
    assert_eq!(
        value["validity"],
        serde_json::json!({"window": {"from_ms": 1, "until_ms": 2}})
    );
    assert_eq!(
        value["stacking"],
        serde_json::json!({"mode": "group", "group": "g"})
    );
    assert_eq!(value["per_member_limit"], 2);
    // Absent options are left out rather than written as null.
    assert!(value.get("total_limit").is_none());
    assert_eq!(serde_json::from_value::<CouponTemplate>(value).unwrap(), t);

    for benefit in every_benefit() {
        let t = template(benefit);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            serde_json::from_str::<CouponTemplate>(&json).unwrap(),
            t,
            "{json}"
        );
    }
}

#[test]
fn benefit_defaults_apply_when_absent() {
    let b: Benefit =
        serde_json::from_str(r#"{"type":"points_multiplier","multiplier_percent":200}"#).unwrap();
    assert_eq!(
        b,
        Benefit::PointsMultiplier {
            multiplier_percent: 200,
            points_per_unit: 1
        }
    );
    let b: Benefit = serde_json::from_str(r#"{"type":"free_item"}"#).unwrap();
    assert_eq!(b, Benefit::FreeItem { sku: None });
    let b: Benefit = serde_json::from_str(r#"{"type":"percent_off","basis_points":500}"#).unwrap();
    assert_eq!(
        b,
        Benefit::PercentOff {
            basis_points: 500,
            cap: None
        }
    );
}

#[test]
fn unknown_fields_and_kinds_do_not_deserialize() {
    let good = serde_json::json!({
        "id": "WELCOME10",
        "name": "Welcome",
        "benefit": {"type": "percent_off", "basis_points": 1000, "cap": 2000},
        "validity": {"days_from_issue": {"days": 30}},
        "stacking": {"mode": "exclusive"},
    });
    assert!(serde_json::from_value::<CouponTemplate>(good.clone()).is_ok());

    type Change = fn(&mut serde_json::Value);
    let variants: [(&str, Change); 10] = [
        ("unknown top-level field", |v| v["colour"] = "red".into()),
        ("misspelt field", |v| {
            v["uses_per_coupon"] = 2.into();
        }),
        ("unknown benefit type", |v| {
            v["benefit"] = serde_json::json!({"type": "buy_one_get_one", "amount": 1});
        }),
        ("unknown benefit field", |v| {
            v["benefit"]["limit"] = 1.into()
        }),
        ("benefit without a type", |v| {
            v["benefit"] = serde_json::json!({"amount": 100});
        }),
        ("unknown eligibility field", |v| {
            v["eligible"] = serde_json::json!({"regions": ["north"]});
        }),
        ("unknown validity kind", |v| {
            v["validity"] = serde_json::json!({"forever": {}});
        }),
        ("unknown validity field", |v| {
            v["validity"]["days_from_issue"]["hours"] = 1.into();
        }),
        ("unknown stacking mode", |v| {
            v["stacking"] = serde_json::json!({"mode": "any"});
        }),
        ("missing benefit", |v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("benefit");
            }
        }),
    ];
    for (what, change) in variants {
        let mut v = good.clone();
        change(&mut v);
        assert!(
            serde_json::from_value::<CouponTemplate>(v.clone()).is_err(),
            "{what} was accepted: {v}"
        );
        // The same from text, as the API receives it.
        assert!(
            serde_json::from_str::<CouponTemplate>(&v.to_string()).is_err(),
            "{what} was accepted: {v}"
        );
    }
}

#[test]
fn days_from_issue_starts_at_issue() {
    let issued = 1_700_000_000_000;
    assert_eq!(
        Validity::DaysFromIssue { days: 30 }.window(issued),
        (issued, issued + 30 * DAY_MS)
    );
    assert_eq!(
        Validity::DaysFromIssue { days: 3_650 }.window(issued),
        (issued, issued + 3_650 * DAY_MS)
    );
    // A fixed window ignores the issue time.
    let window = Validity::Window {
        from_ms: 10,
        until_ms: 20,
    };
    assert_eq!(window.window(issued), (10, 20));
}

#[test]
fn only_money_off_benefits_discount_the_cart() {
    let discounting: Vec<bool> = every_benefit()
        .into_iter()
        .map(|b| template(b).discounts())
        .collect();
    assert_eq!(discounting, [true, true, true, true, true, false, false]);
}
