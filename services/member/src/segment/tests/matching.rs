//! Each kind of query matches the members it should: tags, tiers, attributes, spend and
//! orders, RFM, flags, dates, and all/any/not.

use super::*;

#[test]
fn tag() {
    let mut f = member();
    assert!(!matches(json!({"tag": "vip"}), &f));
    f.tags.insert("vip".into());
    assert!(matches(json!({"tag": "vip"}), &f));
    assert!(!matches(json!({"tag": "vip2"}), &f));
}

#[test]
fn tier_with_null_for_no_tier() {
    let mut f = member();
    let gold_or_diamond = json!({"tier": ["gold", "diamond"]});
    assert!(!matches(gold_or_diamond.clone(), &f));
    assert!(matches(json!({"tier": [null]}), &f));
    assert!(matches(json!({"tier": ["silver", null]}), &f));
    f.tier = Some("diamond".into());
    assert!(matches(gold_or_diamond, &f));
    assert!(!matches(json!({"tier": [null]}), &f));
    assert!(matches(json!({"not": {"tier": [null]}}), &f));
}

#[test]
fn attribute_text_tests() {
    let mut f = member();
    let eq = json!({"attribute": {"name": "city", "eq": "Shanghai"}});
    let ne = json!({"attribute": {"name": "city", "ne": "Shanghai"}});
    let among = json!({"attribute": {"name": "city", "in": ["Beijing", "Shanghai"]}});
    let exists = json!({"attribute": {"name": "city", "exists": true}});
    let absent = json!({"attribute": {"name": "city", "exists": false}});
    // Absent: only `exists: false` matches; `ne` wants the attribute present.
    for q in [&eq, &ne, &among, &exists] {
        assert!(!matches(q.clone(), &f), "{q}");
    }
    assert!(matches(absent.clone(), &f));
    assert!(matches(json!({"not": eq.clone()}), &f));

    f.attributes.insert("city".into(), "Shanghai".into());
    assert!(matches(eq.clone(), &f));
    assert!(!matches(ne.clone(), &f));
    assert!(matches(among.clone(), &f));
    assert!(matches(exists.clone(), &f));
    assert!(!matches(absent.clone(), &f));

    f.attributes.insert("city".into(), "Hangzhou".into());
    assert!(!matches(eq, &f));
    assert!(matches(ne, &f));
    assert!(!matches(among, &f));
    // Case matters: values are compared as written.
    f.attributes.insert("city".into(), "shanghai".into());
    assert!(!matches(
        json!({"attribute": {"name": "city", "eq": "Shanghai"}}),
        &f
    ));
}

#[test]
fn attribute_in_a_long_list_uses_the_sorted_search() {
    let cities: Vec<String> = (0..50).map(|i| format!("city-{i:02}")).collect();
    let q = json!({"attribute": {"name": "city", "in": cities}});
    let mut f = member();
    for (value, want) in [
        ("city-00", true),
        ("city-49", true),
        ("city-50", false),
        ("", false),
    ] {
        f.attributes.insert("city".into(), value.into());
        assert_eq!(matches(q.clone(), &f), want, "{value}");
    }
}

#[test]
fn attribute_numeric_bounds() {
    let mut f = member();
    let adult = json!({"attribute": {"name": "age", "gte": 18}});
    let band = json!({"attribute": {"name": "age", "gt": 18, "lt": 30.5}});
    let cases = [
        ("18", true, false),
        ("17", false, false),
        ("19", true, true),
        ("30", true, true),
        ("30.5", true, false),
        ("30.49", true, true),
        ("1e1", false, false),
        ("2.5e1", true, true),
        ("-0", false, false),
        ("+20", true, true),
        ("eighteen", false, false),
        (" 20", false, false),
        ("inf", false, false),
        ("NaN", false, false),
        ("", false, false),
    ];
    for (value, want_adult, want_band) in cases {
        f.attributes.insert("age".into(), value.into());
        assert_eq!(matches(adult.clone(), &f), want_adult, "{value} adult");
        assert_eq!(matches(band.clone(), &f), want_band, "{value} band");
    }
    f.attributes.clear();
    assert!(!matches(adult, &f));
}

#[test]
fn attribute_integers_compare_exactly_beyond_f64_precision() {
    let mut f = member();
    // 2^53 + 1 is not an f64; as f64 it would equal 2^53 and fail `gt`.
    f.attributes
        .insert("points".into(), "9007199254740993".into());
    assert!(matches(
        json!({"attribute": {"name": "points", "gt": 9007199254740992_i64}}),
        &f
    ));
    assert!(!matches(
        json!({"attribute": {"name": "points", "lte": 9007199254740992_i64}}),
        &f
    ));
    assert_eq!(cmp_int_float(i64::MAX, 9.3e18), Ordering::Less);
    assert_eq!(cmp_int_float(i64::MIN, -9.3e18), Ordering::Greater);
    assert_eq!(cmp_int_float(-3, -2.5), Ordering::Less);
    assert_eq!(cmp_int_float(-2, -2.5), Ordering::Greater);
    assert_eq!(cmp_int_float(2, 2.0), Ordering::Equal);
}

fn with_orders(orders: &[(&str, i64)]) -> MemberFacts {
    let mut f = member();
    for (date, amount) in orders {
        f.add_order(at(date), *amount);
    }
    f
}

#[test]
fn spend_and_orders_over_12_months_and_lifetime() {
    // 2025-06 is the 13th month back from 2026-06: outside the window; 2025-07 is inside.
    let f = with_orders(&[
        ("2025-06-30T23:59:59Z", 1_000_000),
        ("2025-07-01", 60_000),
        ("2026-06-01", 50_000),
        ("2026-06-02", -10_000),
    ]);
    assert_eq!(f.spend_12m(now()), 100_000);
    assert_eq!(MonthWindow::twelve_months_to(now()).spend(&f), 100_000);
    assert_eq!(MonthWindow::twelve_months_to(now()).orders(&f), 2);
    assert!(matches(json!({"spend_12m": {"gte": 100000}}), &f));
    assert!(!matches(json!({"spend_12m": {"gt": 100000}}), &f));
    assert!(matches(
        json!({"spend_12m": {"gte": 100000, "lt": 100001}}),
        &f
    ));
    assert!(!matches(json!({"spend_12m": {"lt": 100000}}), &f));
    assert!(matches(json!({"spend_12m": {"lte": 100000}}), &f));
    assert!(matches(json!({"orders_12m": {"gte": 2, "lte": 2}}), &f));
    assert!(!matches(json!({"orders_12m": {"gte": 3}}), &f));
    assert!(matches(json!({"lifetime_spend": {"gte": 1100000}}), &f));
    assert!(!matches(json!({"lifetime_spend": {"gt": 1100000}}), &f));
    assert!(matches(json!({"lifetime_orders": {"gte": 3}}), &f));
    assert!(!matches(json!({"lifetime_orders": {"gte": 4}}), &f));
    // A member without orders has spent 0.
    assert!(matches(json!({"spend_12m": {"lte": 0}}), &member()));
    assert!(matches(json!({"lifetime_orders": {"lt": 1}}), &member()));
}

#[test]
fn rfm_scores() {
    let q = json!({"rfm": {"recency": {"gte": 4}, "monetary": {"lte": 2}}});
    let mut f = member();
    assert!(!matches(q.clone(), &f), "not yet scored");
    assert!(
        !matches(json!({"rfm": {"recency": {"gte": 1}}}), &f),
        "not yet scored, even with a range that takes every score"
    );
    f.rfm = Some(RfmScore {
        recency: 4,
        frequency: 1,
        monetary: 2,
    });
    assert!(matches(q.clone(), &f));
    f.rfm = Some(RfmScore {
        recency: 3,
        frequency: 5,
        monetary: 2,
    });
    assert!(!matches(q.clone(), &f));
    f.rfm = Some(RfmScore {
        recency: 5,
        frequency: 5,
        monetary: 3,
    });
    assert!(!matches(q, &f));
    assert!(matches(json!({"rfm": {"frequency": {"gt": 4}}}), &f));
}

#[test]
fn flags_lifecycle_consent_channel_store() {
    let mut f = member();
    assert!(matches(json!({"churn_risk": false}), &f));
    assert!(!matches(json!({"churn_risk": true}), &f));
    f.churn_risk = true;
    assert!(matches(json!({"churn_risk": true}), &f));

    let lapsing = json!({"lifecycle": ["at_risk", "dormant"]});
    assert!(!matches(lapsing.clone(), &f), "new");
    f.lifecycle = Lifecycle::Dormant;
    assert!(matches(lapsing.clone(), &f));
    f.lifecycle = Lifecycle::AtRisk;
    assert!(matches(lapsing.clone(), &f));
    f.lifecycle = Lifecycle::Active;
    assert!(!matches(lapsing, &f));
    assert!(matches(json!({"lifecycle": ["active"]}), &f));

    for channel in ["sms", "email", "app"] {
        assert!(!matches(json!({"consent": channel}), &f));
    }
    f.consents.email = true;
    assert!(matches(json!({"consent": "email"}), &f));
    assert!(!matches(json!({"consent": "sms"}), &f));
    f.consents.sms = true;
    f.consents.app = true;
    assert!(matches(json!({"consent": "sms"}), &f));
    assert!(matches(json!({"consent": "app"}), &f));

    assert!(matches(json!({"channel": [null]}), &f));
    assert!(!matches(json!({"channel": ["wechat"]}), &f));
    f.channel = Some("wechat".into());
    assert!(matches(json!({"channel": ["app", "wechat"]}), &f));
    assert!(!matches(json!({"channel": [null, "app"]}), &f));

    assert!(matches(json!({"store": ["SH001", null]}), &f));
    f.store = Some("SH001".into());
    assert!(matches(json!({"store": ["SH001", null]}), &f));
    assert!(!matches(json!({"store": ["SH002"]}), &f));
}

#[test]
fn registered_absolute_dates() {
    let f = MemberFacts::new("m1", at("2026-01-31T23:59:59.999Z"));
    let january = json!({"registered": {"after": "2026-01-01", "before": "2026-02-01"}});
    assert!(matches(january.clone(), &f));
    let february = json!({"registered": {"after": "2026-02-01", "before": "2026-03-01"}});
    assert!(!matches(february.clone(), &f));
    // `after` is inclusive, `before` exclusive: midnight February 1 is February's.
    let midnight = MemberFacts::new("m2", at("2026-02-01"));
    assert!(!matches(january, &midnight));
    assert!(matches(february, &midnight));
    // RFC 3339 with an offset: 08:00 in Shanghai is midnight UTC.
    assert!(matches(
        json!({"registered": {"after": "2026-02-01T08:00:00+08:00"}}),
        &midnight
    ));
    assert!(!matches(
        json!({"registered": {"after": "2026-02-01T08:00:00.001+08:00"}}),
        &midnight
    ));
    assert!(matches(
        json!({"registered": {"before": "2026-02-01T00:00:00.001Z"}}),
        &midnight
    ));
}

#[test]
fn relative_dates_are_resolved_against_now() {
    let mut f = member();
    let recent = json!({"last_order": {"within_days": 30}});
    let lapsed = json!({"last_order": {"not_within_days": 90}});
    // Never ordered: neither; `not` of a date condition takes them in.
    assert!(!matches(recent.clone(), &f));
    assert!(!matches(lapsed.clone(), &f));
    assert!(matches(json!({"not": recent.clone()}), &f));

    f.last_order_at = Some(days_ago(30));
    assert!(matches(recent.clone(), &f), "30 days ago is within 30 days");
    f.last_order_at = Some(Timestamp(days_ago(30).0 - 1));
    assert!(!matches(recent.clone(), &f));
    f.last_order_at = Some(days_ago(90));
    assert!(!matches(lapsed.clone(), &f), "exactly 90 days is within 90");
    f.last_order_at = Some(Timestamp(days_ago(90).0 - 1));
    assert!(matches(lapsed.clone(), &f));

    // Between 30 and 90 days ago.
    let between = json!({"last_order": {"within_days": 90, "not_within_days": 30}});
    f.last_order_at = Some(days_ago(60));
    assert!(matches(between.clone(), &f));
    f.last_order_at = Some(days_ago(10));
    assert!(!matches(between, &f));

    // The same query compiled a month later sees the order as older.
    let q = query(recent);
    f.last_order_at = Some(days_ago(10));
    assert!(q.compile(now()).unwrap().matches(&f));
    assert!(!q.compile(now().plus_days(30)).unwrap().matches(&f));
    assert!(q.compile(now().plus_days(20)).unwrap().matches(&f));
}

#[test]
fn first_order_and_mixed_absolute_relative_windows() {
    let mut f = member();
    let first_this_year = json!({"first_order": {"after": "2026-01-01"}});
    assert!(!matches(first_this_year.clone(), &f), "no orders");
    f.first_order_at = Some(at("2026-03-01"));
    f.last_order_at = Some(at("2026-06-01"));
    assert!(matches(first_this_year, &f));
    assert!(matches(
        json!({"first_order": {"not_within_days": 100}}),
        &f
    ));
    assert!(!matches(json!({"first_order": {"within_days": 100}}), &f));
    // Absolute and relative bounds that exclude each other at `now` match no one (a saved
    // segment does not start failing as time passes).
    let stale = json!({"last_order": {"before": "2026-01-01", "within_days": 30}});
    assert!(!matches(stale, &f));
}

#[test]
fn all_any_not() {
    let mut f = member();
    f.tags.insert("vip".into());
    f.tier = Some("gold".into());
    let vip = json!({"tag": "vip"});
    let gold = json!({"tier": ["gold"]});
    let churn = json!({"churn_risk": true});
    assert!(matches(json!({"all": [vip, gold]}), &f));
    assert!(!matches(json!({"all": [vip, churn]}), &f));
    assert!(matches(json!({"any": [churn, gold]}), &f));
    assert!(!matches(json!({"any": [churn, {"tag": "x"}]}), &f));
    assert!(matches(json!({"not": churn}), &f));
    assert!(!matches(json!({"not": vip}), &f));
    assert!(matches(json!({"not": {"not": vip}}), &f));
    assert!(matches(json!({"all": [vip]}), &f));
    assert!(matches(json!({"any": [vip]}), &f));
    // De Morgan, nested groups of the same kind (flattened when compiled).
    let a = json!({"all": [{"all": [vip, gold]}, {"any": [churn, {"any": [gold]}]}]});
    assert!(matches(a.clone(), &f));
    assert!(!matches(json!({"not": a}), &f));
    assert!(matches(json!({"not": {"any": [churn, {"tag": "x"}]}}), &f));
    assert!(matches(
        json!({"all": [{"not": churn}, {"not": {"tag": "x"}}]}),
        &f
    ));
    f.churn_risk = true;
    assert!(!matches(json!({"all": [{"not": churn}, vip]}), &f));
}

#[test]
fn erased_members_match_nothing_not_even_not() {
    let mut f = member();
    f.tags.insert("vip".into());
    f.erased = true;
    for q in [
        json!({"tag": "vip"}),
        json!({"not": {"tag": "vip"}}),
        json!({"not": {"tag": "other"}}),
        json!({"tier": [null]}),
        json!({"not": {"not": {"tag": "vip"}}}),
        json!({"any": [{"tag": "vip"}, {"not": {"tag": "vip"}}]}),
    ] {
        assert!(!matches(q.clone(), &f), "{q}");
    }
    f.erased = false;
    assert!(matches(
        json!({"any": [{"tag": "vip"}, {"not": {"tag": "vip"}}]}),
        &f
    ));
}
