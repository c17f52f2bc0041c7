use super::*;
use crate::facts::RfmScore;
use loyalty_common::ErrorCode;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Evaluation time of the tests: 2026-06-15 12:00 UTC.
fn now() -> Timestamp {
    at("2026-06-15T12:00:00Z")
}

fn at(text: &str) -> Timestamp {
    DateBound::parse(text).unwrap().at()
}

fn days_ago(days: i64) -> Timestamp {
    now().plus_days(-days)
}

fn member() -> MemberFacts {
    MemberFacts::new("m1", at("2025-03-10"))
}

fn query(json: Value) -> Query {
    Query::parse(&json).unwrap_or_else(|e| panic!("{json} should parse: {e}"))
}

fn matches(json: Value, facts: &MemberFacts) -> bool {
    query(json).compile(now()).unwrap().matches(facts)
}

/// The message of the error the query is refused with (always INVALID_ARGUMENT).
fn refused(json: Value) -> String {
    refused_ref(&json)
}

fn refused_ref(json: &Value) -> String {
    match Query::parse(json) {
        Ok(q) => panic!("{json} should be refused, parsed as {q:?}"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            e.message
        }
    }
}

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

#[test]
fn validation_errors_name_the_problem() {
    let deep = (0..16).fold(json!({"tag": "vip"}), |q, _| json!({"not": q}));
    let many: Vec<Value> = (0..257).map(|_| json!({"tag": "vip"})).collect();
    let half: Vec<Value> = (0..129).map(|_| json!({"tag": "vip"})).collect();
    let cases = [
        (json!({"all": []}), "all is empty"),
        (json!({"any": []}), "any is empty"),
        (
            json!({"all": [{"tag": "a"}, {"not": {"any": []}}]}),
            "at all[1].not: any is empty",
        ),
        (deep, "nests deeper than 16 levels"),
        (json!({"all": many}), "more than 256 conditions"),
        (
            json!({"all": [{"any": half.clone()}, {"any": half}]}),
            "more than 256 conditions",
        ),
        (
            json!({"lifecycle": ["churned"]}),
            "unknown variant `churned`",
        ),
        (json!({"lifecycle": []}), "lifecycle: the list is empty"),
        (
            json!({"registered": {"after": "2026-13-01"}}),
            "date \"2026-13-01\" is not YYYY-MM-DD",
        ),
        (
            json!({"registered": {"after": "2026-1-1"}}),
            "date \"2026-1-1\"",
        ),
        (
            json!({"registered": {"after": "yesterday"}}),
            "date \"yesterday\"",
        ),
        (
            json!({"registered": {}}),
            "registered: give at least one of after",
        ),
        (
            json!({"registered": {"after": "2026-02-01", "before": "2026-01-01"}}),
            "registered: the window is empty",
        ),
        (
            json!({"last_order": {"within_days": 30, "not_within_days": 90}}),
            "last_order: the window is empty: within_days 30 must be more than not_within_days 90",
        ),
        (
            json!({"last_order": {"within_days": 40000}}),
            "within_days 40000 is more than 36600",
        ),
        (json!({"last_order": {"within_days": -1}}), "expected u32"),
        (
            json!({"last_order": {"since": "2026-01-01"}}),
            "unknown field `since`",
        ),
        (
            json!({"spend_12m": {"gte": 500000, "lt": 100000}}),
            "spend_12m: the range gte 500000, lt 100000 is empty",
        ),
        (
            json!({"orders_12m": {"gt": 3, "lt": 4}}),
            "orders_12m: the range gt 3, lt 4 is empty",
        ),
        (
            json!({"lifetime_spend": {}}),
            "lifetime_spend: give at least one of gte, gt, lte, lt",
        ),
        (
            json!({"lifetime_orders": {"gte": 1, "gt": 0}}),
            "gte or gt, not both",
        ),
        (json!({"spend_12m": {"gtee": 5}}), "unknown field `gtee`"),
        (json!({"spend_12m": {"gte": 1.5}}), "expected i64"),
        (
            json!({"tag": "VIP"}),
            "tag \"VIP\" is not 1 to 64 lower-case letters",
        ),
        (json!({"tag": ""}), "tag \"\" is not"),
        (json!({"tag": "a".repeat(65)}), "is not 1 to 64"),
        (json!({"tag": ["vip"]}), "expected a string"),
        (
            json!({"tags": "vip"}),
            "unknown query kind \"tags\"; the kinds are all, any",
        ),
        (json!({"tag": "vip", "tier": ["gold"]}), "also has"),
        (json!({}), "this one is empty"),
        (json!("vip"), "expected a query"),
        (json!([{"tag": "vip"}]), "expected a query"),
        (json!({"tier": []}), "tier: the list is empty"),
        (json!({"tier": [""]}), "tier: a code is empty"),
        (json!({"store": "SH001"}), "expected a sequence"),
        (json!({"consent": "fax"}), "unknown variant `fax`"),
        (
            json!({"attribute": {"name": "city"}}),
            "attribute \"city\": give exactly one test",
        ),
        (
            json!({"attribute": {"name": "city", "eq": "a", "ne": "b"}}),
            "give exactly one test",
        ),
        (
            json!({"attribute": {"name": "city", "eq": "a", "gte": 1}}),
            "give exactly one test",
        ),
        (
            json!({"attribute": {"name": "city", "equals": "a"}}),
            "unknown field `equals`",
        ),
        (json!({"attribute": {"eq": "a"}}), "missing field `name`"),
        (
            json!({"attribute": {"name": "", "eq": "a"}}),
            "attribute: the name is empty",
        ),
        (
            json!({"attribute": {"name": "city", "in": []}}),
            "attribute \"city\": the list is empty",
        ),
        (
            json!({"attribute": {"name": "age", "gte": 30, "lt": 30}}),
            "the numeric range is empty",
        ),
        (
            json!({"attribute": {"name": "age", "lte": 3, "lt": 4}}),
            "lte or lt, not both",
        ),
        (
            json!({"attribute": {"name": "age", "eq": 30}}),
            "expected a string",
        ),
        (json!({"rfm": {}}), "rfm: give at least one of recency"),
        (
            json!({"rfm": {"recency": {"gte": 6}}}),
            "rfm recency: the range gte 6 selects no score",
        ),
        (
            json!({"rfm": {"monetary": {"lt": 1}}}),
            "rfm monetary: the range lt 1 selects no score",
        ),
        (
            json!({"rfm": {"recency": {"gte": 4, "lte": 2}}}),
            "rfm recency: the range gte 4, lte 2 is empty",
        ),
        (
            json!({"rfm": {"loyalty": {"gte": 4}}}),
            "unknown field `loyalty`",
        ),
        (json!({"churn_risk": "yes"}), "expected a boolean"),
    ];
    for (json, expected) in cases {
        let message = refused(json.clone());
        assert!(
            message.contains(expected),
            "{json}: {message:?} should contain {expected:?}"
        );
        assert!(message.starts_with("segment query"), "{message}");
    }
}

#[test]
fn limits_hold_exactly_at_the_edge() {
    let sixteen = (0..15).fold(json!({"tag": "vip"}), |q, _| json!({"not": q}));
    query(sixteen);
    let most: Vec<Value> = (0..256).map(|_| json!({"tag": "vip"})).collect();
    query(json!({"all": most}));
    let split: Vec<Value> = (0..128).map(|_| json!({"tag": "vip"})).collect();
    query(json!({"any": [{"all": split.clone()}, {"all": split}]}));
}

#[test]
fn validate_catches_queries_built_in_code() {
    let deep = (0..100_000).fold(Query::Tag("vip".into()), |q, _| Query::Not(Box::new(q)));
    let e = deep.validate().unwrap_err();
    assert!(e.message.contains("deeper than 16"), "{}", e.message);
    assert!(deep.compile(now()).is_err());
    // Drop iteratively: a derived drop of 100,000 levels would need a deep stack.
    let mut q = deep;
    while let Query::Not(inner) = q {
        q = *inner;
    }

    let bad_tag = Query::All(vec![Query::Tag("ok".into()), Query::Tag("Not OK".into())]);
    let e = bad_tag.compile(now()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(
        e.message.contains("at all[1]: tag \"Not OK\""),
        "{}",
        e.message
    );

    let nan = Query::Attribute(AttributeQuery {
        name: "age".into(),
        test: AttributeTest::Number(NumberRange {
            gte: Some(f64::NAN),
            ..Default::default()
        }),
    });
    assert!(
        nan.validate()
            .unwrap_err()
            .message
            .contains("not a finite number")
    );

    let lifecycle = Query::Lifecycle(vec![Lifecycle::New; MAX_VALUES + 1]);
    assert!(
        lifecycle
            .validate()
            .unwrap_err()
            .message
            .contains("more than 1000 values")
    );
}

#[test]
fn hostile_nesting_is_refused_while_reading() {
    // Deeper than serde_json's own parser would build, so only our limit stops it.
    // Built by hand: json!'s interpolation would serialise the value so far, recursively.
    let wrap = |key: &str, inner: Value| {
        let mut map = serde_json::Map::new();
        map.insert(key.to_string(), inner);
        Value::Object(map)
    };
    let mut json = json!({"tag": "vip"});
    for _ in 0..2_000 {
        json = wrap("not", json);
    }
    assert!(refused_ref(&json).contains("deeper than 16"));
    let mut any = json!({"tag": "vip"});
    for _ in 0..2_000 {
        any = wrap("any", Value::Array(vec![any]));
    }
    assert!(refused_ref(&any).contains("deeper than 16"));
    // serde_json drops a Value recursively; unwind it by hand to spare the test's stack.
    for mut v in [json, any] {
        loop {
            let next = match &mut v {
                Value::Object(map) => map.values_mut().next().map(Value::take),
                Value::Array(items) => items.pop(),
                _ => None,
            };
            match next {
                Some(n) => v = n,
                None => break,
            }
        }
    }
}

#[test]
fn reads_from_text_and_round_trips() {
    let text = r#"{"all": [
        {"any": [{"tag": "vip"}, {"tier": ["gold", "diamond", null]}]},
        {"spend_12m": {"gte": 100000, "lt": 500000}},
        {"not": {"churn_risk": true}},
        {"last_order": {"within_days": 90}},
        {"registered": {"after": "2026-01-01", "before": "2026-02-01T08:00:00+08:00"}},
        {"attribute": {"name": "city", "in": ["Shanghai", "Hangzhou"]}},
        {"attribute": {"name": "age", "gte": 18.5}},
        {"rfm": {"recency": {"gte": 4}, "monetary": {"lte": 2}}},
        {"lifecycle": ["at_risk", "dormant"]},
        {"consent": "sms"},
        {"channel": ["wechat", null]},
        {"store": ["SH001"]},
        {"orders_12m": {"gt": 0}},
        {"lifetime_spend": {"lte": 9000000}},
        {"lifetime_orders": {"lt": 100}},
        {"first_order": {"not_within_days": 365}}
    ]}"#;
    let q: Query = serde_json::from_str(text).unwrap();
    q.validate().unwrap();
    let written = serde_json::to_value(&q).unwrap();
    assert_eq!(Query::parse(&written).unwrap(), q);
    // Dates are written back as their author wrote them.
    assert_eq!(
        written["all"][4],
        json!({"registered": {"after": "2026-01-01", "before": "2026-02-01T08:00:00+08:00"}})
    );
    assert_eq!(
        written["all"][5],
        json!({"attribute": {"name": "city", "in": ["Shanghai", "Hangzhou"]}})
    );
    assert!(serde_json::from_str::<Query>(r#"{"tag": "vip"} trailing"#).is_err());
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

const TAGS: &[&str] = &["vip", "newsletter", "campaign:2026-05"];
const TIERS: &[&str] = &["silver", "gold", "diamond"];
const CITIES: &[&str] = &["Shanghai", "Beijing", "Hangzhou"];
const CHANNELS: &[&str] = &["app", "wechat"];
const STORES: &[&str] = &["SH001", "BJ002"];
const STAGES: &[Lifecycle] = &[
    Lifecycle::New,
    Lifecycle::Active,
    Lifecycle::AtRisk,
    Lifecycle::Dormant,
];
const CONSENTS: &[ConsentChannel] = &[
    ConsentChannel::Sms,
    ConsentChannel::Email,
    ConsentChannel::App,
];
const DATES: &[&str] = &[
    "2024-01-01",
    "2025-06-15",
    "2026-01-01",
    "2026-03-01T08:00:00+08:00",
    "2026-06-01",
];

fn arb_facts() -> impl Strategy<Value = MemberFacts> {
    let profile = (
        prop::collection::btree_set(prop::sample::select(TAGS), 0..3),
        prop::option::of(prop::sample::select(TIERS)),
        prop::option::of(prop::sample::select(CITIES)),
        prop::option::of(prop_oneof![
            Just("n/a".to_string()),
            (-50i64..50).prop_map(|n| n.to_string()),
            (-50.0f64..50.0).prop_map(|f| format!("{f:.1}")),
        ]),
        any::<(bool, bool, bool)>(),
        prop::option::of(prop::sample::select(CHANNELS)),
        prop::option::of(prop::sample::select(STORES)),
    );
    let activity = (
        -900i64..30,
        prop::collection::vec((0u32..30, -1_000i64..80_000, 0u32..4), 0..6),
        prop::option::of((0i64..900, 0i64..900)),
        prop::option::of((1u8..=5, 1u8..=5, 1u8..=5)),
        any::<bool>(),
        0usize..4,
        prop::bool::weighted(0.1),
        (0i64..400_000, 0u32..40),
    );
    (profile, activity).prop_map(|(p, a)| {
        let (tags, tier, city, score, (sms, email, app), channel, store) = p;
        let (created, months, orders, rfm, churn, stage, erased, (spend, count)) = a;
        let mut f = MemberFacts::new("m", now().plus_days(-created));
        f.tags = tags.into_iter().map(String::from).collect();
        f.tier = tier.map(String::from);
        if let Some(city) = city {
            f.attributes.insert("city".into(), city.into());
        }
        if let Some(score) = score {
            f.attributes.insert("score".into(), score);
        }
        f.consents = crate::profile::Consents { sms, email, app };
        f.channel = channel.map(String::from);
        f.store = store.map(String::from);
        let this_month = month_of(now());
        f.months = months
            .into_iter()
            .map(|(back, spend, orders)| MonthTotals {
                month: this_month - back,
                spend,
                orders,
            })
            .collect();
        if let Some((first, last)) = orders {
            f.first_order_at = Some(days_ago(first.max(last)));
            f.last_order_at = Some(days_ago(first.min(last)));
        }
        f.rfm = rfm.map(|(recency, frequency, monetary)| RfmScore {
            recency,
            frequency,
            monetary,
        });
        f.churn_risk = churn;
        f.lifecycle = STAGES[stage];
        f.erased = erased;
        f.lifetime_spend = spend;
        f.lifetime_orders = count;
        f
    })
}

/// A non-empty range over `lo..hi` in one of the shapes users write.
fn arb_range(lo: i64, hi: i64) -> impl Strategy<Value = Range> {
    (lo..hi, 0i64..(hi - lo), 0usize..5).prop_map(|(a, width, shape)| {
        let b = a + width;
        match shape {
            0 => Range {
                gte: Some(a),
                ..Default::default()
            },
            1 => Range {
                lt: Some(a),
                ..Default::default()
            },
            2 => Range {
                gte: Some(a),
                lt: Some(b + 1),
                ..Default::default()
            },
            3 => Range {
                gt: Some(a),
                lte: Some(b + 1),
                ..Default::default()
            },
            _ => Range {
                lte: Some(b),
                ..Default::default()
            },
        }
    })
}

fn arb_codes(codes: &'static [&'static str]) -> impl Strategy<Value = Vec<Option<String>>> {
    prop::collection::vec(
        prop::option::weighted(0.8, prop::sample::select(codes).prop_map(String::from)),
        1..3,
    )
}

fn arb_dates() -> impl Strategy<Value = DateQuery> {
    let bound = || prop::option::of(prop::sample::select(DATES));
    (
        bound(),
        bound(),
        prop::option::of(0u32..1000),
        prop::option::of(0u32..1000),
    )
        .prop_map(|(after, before, within, not_within)| DateQuery {
            after: after.map(|d| DateBound::parse(d).unwrap()),
            before: before.map(|d| DateBound::parse(d).unwrap()),
            within_days: within,
            not_within_days: not_within,
        })
}

fn arb_condition() -> impl Strategy<Value = Query> {
    let text = || prop::sample::select(CITIES).prop_map(String::from);
    let attribute = prop_oneof![
        text().prop_map(AttributeTest::Eq),
        text().prop_map(AttributeTest::Ne),
        prop::collection::vec(text(), 1..3).prop_map(AttributeTest::In),
        any::<bool>().prop_map(AttributeTest::Exists),
    ];
    let number = (
        prop::option::of(-40.0f64..40.0),
        prop::option::of(-40i64..40),
    )
        .prop_map(|(gte, lt)| NumberRange {
            gte: gte.map(|v| (v * 2.0).round() / 2.0),
            lt: lt.map(|v| v as f64),
            ..Default::default()
        });
    prop_oneof![
        prop::sample::select(TAGS).prop_map(|t| Query::Tag(t.into())),
        arb_codes(TIERS).prop_map(Query::Tier),
        arb_codes(CHANNELS).prop_map(Query::Channel),
        arb_codes(STORES).prop_map(Query::Store),
        attribute.prop_map(|test| Query::Attribute(AttributeQuery {
            name: "city".into(),
            test
        })),
        number.prop_map(|r| Query::Attribute(AttributeQuery {
            name: "score".into(),
            test: AttributeTest::Number(r)
        })),
        arb_range(-1_000, 300_000).prop_map(Query::Spend12m),
        arb_range(0, 20).prop_map(Query::Orders12m),
        arb_range(0, 400_000).prop_map(Query::LifetimeSpend),
        arb_range(0, 40).prop_map(Query::LifetimeOrders),
        (
            prop::option::of(arb_range(1, 5)),
            prop::option::of(arb_range(1, 5))
        )
            .prop_map(|(recency, monetary)| Query::Rfm(RfmQuery {
                recency,
                frequency: None,
                monetary,
            })),
        any::<bool>().prop_map(Query::ChurnRisk),
        prop::collection::vec(prop::sample::select(STAGES), 1..3).prop_map(Query::Lifecycle),
        prop::sample::select(CONSENTS).prop_map(Query::Consent),
        arb_dates().prop_map(Query::Registered),
        arb_dates().prop_map(Query::FirstOrder),
        arb_dates().prop_map(Query::LastOrder),
    ]
    // Drop the generated conditions that are invalid (empty ranges, empty windows).
    .prop_filter("valid condition", |q| q.validate().is_ok())
}

fn arb_query() -> impl Strategy<Value = Query> {
    arb_condition().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Query::All),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Query::Any),
            inner.prop_map(|q| Query::Not(Box::new(q))),
        ]
    })
}

/// What a query means, written as plainly as possible, with none of the compiled form's
/// shortcuts (precomputed month window, flattening, reordering, sorted sets).
fn reference(q: &Query, f: &MemberFacts, now: Timestamp) -> bool {
    let codes = |codes: &[Option<String>], v: &Option<String>| codes.contains(v);
    let range = |r: &Range, v: i64| {
        r.gte.is_none_or(|b| v >= b)
            && r.gt.is_none_or(|b| v > b)
            && r.lte.is_none_or(|b| v <= b)
            && r.lt.is_none_or(|b| v < b)
    };
    let dates = |d: &DateQuery, t: Option<Timestamp>| {
        let Some(t) = t else { return false };
        d.after.as_ref().is_none_or(|a| t >= a.at())
            && d.before.as_ref().is_none_or(|b| t < b.at())
            && d.within_days
                .is_none_or(|n| t >= now.plus_days(-i64::from(n)))
            && d.not_within_days
                .is_none_or(|n| t < now.plus_days(-i64::from(n)))
    };
    match q {
        Query::All(list) => list.iter().all(|q| reference(q, f, now)),
        Query::Any(list) => list.iter().any(|q| reference(q, f, now)),
        Query::Not(q) => !reference(q, f, now),
        Query::Tag(t) => f.tags.contains(t),
        Query::Tier(c) => codes(c, &f.tier),
        Query::Channel(c) => codes(c, &f.channel),
        Query::Store(c) => codes(c, &f.store),
        Query::Attribute(a) => {
            let v = f.attributes.get(&a.name);
            match &a.test {
                AttributeTest::Eq(x) => v == Some(x),
                AttributeTest::Ne(x) => v.is_some_and(|v| v != x),
                AttributeTest::In(xs) => v.is_some_and(|v| xs.contains(v)),
                AttributeTest::Exists(e) => v.is_some() == *e,
                AttributeTest::Number(r) => v
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|n| n.is_finite())
                    .is_some_and(|n| {
                        r.gte.is_none_or(|b| n >= b)
                            && r.gt.is_none_or(|b| n > b)
                            && r.lte.is_none_or(|b| n <= b)
                            && r.lt.is_none_or(|b| n < b)
                    }),
            }
        }
        Query::Spend12m(r) => range(r, f.spend_12m(now)),
        Query::Orders12m(r) => range(r, i64::from(f.orders_12m(now))),
        Query::LifetimeSpend(r) => range(r, f.lifetime_spend),
        Query::LifetimeOrders(r) => range(r, i64::from(f.lifetime_orders)),
        Query::Rfm(r) => f.rfm.is_some_and(|s| {
            [
                (r.recency, s.recency),
                (r.frequency, s.frequency),
                (r.monetary, s.monetary),
            ]
            .iter()
            .all(|(r, s)| r.is_none_or(|r| range(&r, i64::from(*s))))
        }),
        Query::ChurnRisk(b) => f.churn_risk == *b,
        Query::Lifecycle(stages) => stages.contains(&f.lifecycle),
        Query::Consent(ConsentChannel::Sms) => f.consents.sms,
        Query::Consent(ConsentChannel::Email) => f.consents.email,
        Query::Consent(ConsentChannel::App) => f.consents.app,
        Query::Registered(d) => dates(d, Some(f.created_at)),
        Query::FirstOrder(d) => dates(d, f.first_order_at),
        Query::LastOrder(d) => dates(d, f.last_order_at),
    }
}

const KEYWORDS: &[&str] = &[
    "all",
    "any",
    "not",
    "tag",
    "tier",
    "attribute",
    "name",
    "eq",
    "ne",
    "in",
    "exists",
    "gte",
    "gt",
    "lte",
    "lt",
    "spend_12m",
    "orders_12m",
    "lifetime_spend",
    "lifetime_orders",
    "rfm",
    "recency",
    "frequency",
    "monetary",
    "churn_risk",
    "lifecycle",
    "consent",
    "channel",
    "store",
    "registered",
    "first_order",
    "last_order",
    "after",
    "before",
    "within_days",
    "not_within_days",
];

const WORDS: &[&str] = &[
    "vip",
    "VIP",
    "gold",
    "sms",
    "fax",
    "at_risk",
    "dormant",
    "2026-01-01",
    "2026-02-30",
    "2026-01-01T00:00:00Z",
    "Shanghai",
    "",
];

/// Any JSON, skewed towards the query vocabulary so it reaches past the first key.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-10i64..10).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        prop::sample::select(KEYWORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(8, 128, 6, |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(KEYWORDS).prop_map(String::from),
            1 => "[a-z_]{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_json_never_panics_the_parser(json in arb_json(), f in arb_facts()) {
        if let Ok(q) = Query::parse(&json) {
            // Whatever is accepted compiles, evaluates, and reads back the same.
            let matcher = q.compile(now()).unwrap();
            let _ = matcher.matches(&f);
            let written = serde_json::to_value(&q).unwrap();
            prop_assert_eq!(Query::parse(&written).unwrap(), q);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in ".{0,64}|\\{\"[a-z_]{1,12}\": .{0,40}\\}") {
        if let Ok(q) = serde_json::from_str::<Query>(&text) {
            let _ = q.validate();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn not_not_is_the_query(q in arb_query(), facts in prop::collection::vec(arb_facts(), 16)) {
        let plain = q.compile(now()).unwrap();
        let twice = Query::Not(Box::new(Query::Not(Box::new(q.clone()))));
        let twice = twice.compile(now()).unwrap();
        for f in &facts {
            prop_assert_eq!(plain.matches(f), twice.matches(f));
        }
    }

    #[test]
    fn compiled_matches_the_plain_meaning(q in arb_query(), facts in prop::collection::vec(arb_facts(), 16)) {
        let matcher = q.compile(now()).unwrap();
        for f in &facts {
            let want = !f.erased && reference(&q, f, now());
            prop_assert_eq!(matcher.matches(f), want, "{:?}", f);
        }
        let written = serde_json::to_value(&q).unwrap();
        prop_assert_eq!(Query::parse(&written).unwrap(), q);
    }

    #[test]
    fn month_window_sums_as_facts_do(f in arb_facts(), offset in -400i64..400) {
        let at = now().plus_days(offset);
        let window = MonthWindow::twelve_months_to(at);
        prop_assert_eq!(window.spend(&f), f.spend_12m(at));
        prop_assert_eq!(window.orders(&f), f.orders_12m(at));
    }
}

// ---------------------------------------------------------------------------------------
// Benchmark: cargo test --release -p loyalty-member segment_over_a_million -- --ignored --nocapture
// ---------------------------------------------------------------------------------------

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn draw(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.draw() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const BENCH_CITIES: &[&str] = &[
    "Shanghai",
    "Beijing",
    "Hangzhou",
    "Shenzhen",
    "Guangzhou",
    "Chengdu",
    "Wuhan",
    "Nanjing",
    "Suzhou",
    "Xi'an",
    "Tianjin",
    "Chongqing",
];

fn bench_member(i: usize, rng: &mut Rng, now: Timestamp) -> MemberFacts {
    let mut f = MemberFacts::new(format!("m{i:07}"), now.plus_days(-(rng.below(1500) as i64)));
    if rng.chance(10) {
        f.tags.insert("vip".into());
    }
    if rng.chance(20) {
        f.tags.insert("newsletter".into());
    }
    if rng.chance(5) {
        f.tags.insert("campaign:2026-05".into());
    }
    f.tier = match rng.below(100) {
        0..50 => None,
        50..75 => Some("silver".into()),
        75..90 => Some("gold".into()),
        90..97 => Some("diamond".into()),
        _ => Some("platinum".into()),
    };
    if rng.chance(90) {
        let city = BENCH_CITIES[rng.below(BENCH_CITIES.len() as u64) as usize];
        f.attributes.insert("city".into(), city.into());
    }
    if rng.chance(70) {
        f.attributes
            .insert("age".into(), (18 + rng.below(60)).to_string());
    }
    f.consents.sms = rng.chance(60);
    f.consents.email = rng.chance(40);
    f.consents.app = rng.chance(30);
    f.channel = Some(["app", "wechat", "store", "web"][rng.below(4) as usize].into());
    f.store = Some(format!("S{:03}", rng.below(200)));
    let this_month = month_of(now);
    let mut last_order: Option<i64> = None;
    for back in (0..24u32).rev() {
        if rng.chance(25) {
            let spend = rng.below(60_000) as i64;
            f.months.push(MonthTotals {
                month: this_month - back,
                spend,
                orders: 1 + rng.below(3) as u32,
            });
            f.lifetime_spend += spend;
            f.lifetime_orders += 1;
            last_order = Some(i64::from(back) * 30 + rng.below(30) as i64);
        }
    }
    if let Some(days) = last_order {
        f.last_order_at = Some(now.plus_days(-days));
        f.first_order_at = Some(now.plus_days(-(days + rng.below(400) as i64)));
    }
    if rng.chance(80) {
        f.rfm = Some(RfmScore {
            recency: 1 + rng.below(5) as u8,
            frequency: 1 + rng.below(5) as u8,
            monetary: 1 + rng.below(5) as u8,
        });
    }
    f.churn_risk = rng.chance(15);
    f.lifecycle = STAGES[rng.below(4) as usize];
    f.erased = rng.chance(1);
    f
}

/// Runs `count` `runs` times; the fastest and the median time in milliseconds, and the count.
fn time(runs: usize, mut count: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let start = std::time::Instant::now();
        n = std::hint::black_box(count());
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[0], times[runs / 2], n)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn segment_over_a_million_members() {
    const MEMBERS: usize = 1_000_000;
    const RUNS: usize = 7;
    let now = now();
    let start = std::time::Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let members: Vec<MemberFacts> = (0..MEMBERS)
        .map(|i| bench_member(i, &mut rng, now))
        .collect();
    println!(
        "built {MEMBERS} members in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let json = json!({"all": [
        {"any": [{"tag": "vip"}, {"tier": ["gold", "diamond"]}]},
        {"spend_12m": {"gte": 100000}},
        {"not": {"churn_risk": true}},
        {"last_order": {"within_days": 90}},
        {"attribute": {"name": "city", "in": ["Shanghai", "Beijing", "Hangzhou", "Shenzhen"]}}
    ]});
    let start = std::time::Instant::now();
    let matcher = Query::parse(&json).unwrap().compile(now).unwrap();
    let compile_us = start.elapsed().as_secs_f64() * 1e6;

    let (best, median, matched) = time(RUNS, || {
        members.iter().filter(|f| matcher.matches(f)).count()
    });

    // The same predicate written by hand, as well as one would: the month window and the
    // 90-day cutoff computed once, like the compiled matcher does.
    let last = month_of(now);
    let first = last - 11;
    let cutoff = now.plus_days(-90);
    let hand = |f: &MemberFacts| {
        !f.erased
            && (f.tags.contains("vip") || matches!(f.tier.as_deref(), Some("gold" | "diamond")))
            && f.months
                .iter()
                .filter(|m| m.month >= first && m.month <= last)
                .map(|m| m.spend)
                .sum::<i64>()
                >= 100_000
            && !f.churn_risk
            && f.last_order_at.is_some_and(|t| t >= cutoff)
            && matches!(
                f.attributes.get("city").map(String::as_str),
                Some("Shanghai" | "Beijing" | "Hangzhou" | "Shenzhen")
            )
    };
    let (hand_best, hand_median, hand_matched) =
        time(RUNS, || members.iter().filter(|f| hand(f)).count());

    // And the naive closure, calling MemberFacts::spend_12m (a calendar conversion a call).
    let naive = |f: &MemberFacts| {
        !f.erased
            && (f.tags.contains("vip") || matches!(f.tier.as_deref(), Some("gold" | "diamond")))
            && f.spend_12m(now) >= 100_000
            && !f.churn_risk
            && f.last_order_at.is_some_and(|t| t >= cutoff)
            && matches!(
                f.attributes.get("city").map(String::as_str),
                Some("Shanghai" | "Beijing" | "Hangzhou" | "Shenzhen")
            )
    };
    let (naive_best, naive_median, naive_matched) =
        time(RUNS, || members.iter().filter(|f| naive(f)).count());

    assert_eq!(matched, hand_matched);
    assert_eq!(matched, naive_matched);
    println!("query: {json}");
    println!("compile: {compile_us:.1} µs");
    println!(
        "compiled matcher: {matched} of {MEMBERS} match; best {best:.1} ms, median {median:.1} ms ({:.1} ns a member)",
        best * 1e6 / MEMBERS as f64
    );
    println!(
        "hand-written closure: best {hand_best:.1} ms, median {hand_median:.1} ms; matcher/closure = {:.2} (best), {:.2} (median)",
        best / hand_best,
        median / hand_median
    );
    println!(
        "naive closure (MemberFacts::spend_12m): best {naive_best:.1} ms, median {naive_median:.1} ms; matcher/naive = {:.2}",
        best / naive_best
    );
}
