//! Properties: a compiled matcher agrees with a plain reference evaluation on arbitrary
//! members and queries, and no input makes reading panic.

use super::*;

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
