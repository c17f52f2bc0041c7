use super::*;

fn item() -> MallItem {
    MallItem {
        id: "TEA-SET".into(),
        kind: ItemKind::Gift {
            sku: "TEA-1".into(),
        },
        name: Localized {
            zh: "茶具套装".into(),
            en: "Tea set".into(),
        },
        description: Localized::default(),
        category: "home".into(),
        image: Some("media/tea-set.jpg".into()),
        price: Price {
            points: 5_000,
            cash: 0,
        },
        tier_prices: [(
            "diamond".to_string(),
            Price {
                points: 4_000,
                cash: 0,
            },
        )]
        .into(),
        tiers: vec!["gold".into(), "diamond".into()],
        brands: vec![],
        stores: vec!["s01".into(), "s02".into()],
        available_from_ms: Some(1_000),
        available_until_ms: Some(2_000),
        stock: [("s01".to_string(), 3), (CENTRAL.to_string(), 10)].into(),
        limit: Some(MemberLimit {
            count: 1,
            period: Period::Month,
        }),
        fulfilment: vec![Fulfilment::Pickup, Fulfilment::Delivery],
        time_zone: "Asia/Shanghai".into(),
    }
}

#[test]
fn an_item_that_cannot_be_offered_is_refused_naming_the_field() {
    assert!(item().validate().is_ok());
    let refused = |f: fn(&mut MallItem), field: &str| {
        let mut i = item();
        f(&mut i);
        let e = i.validate().unwrap_err();
        assert!(e.message.starts_with(field), "{field}: {}", e.message);
    };
    refused(|i| i.name.zh.clear(), "name.zh");
    refused(|i| i.price.points = 0, "price.points");
    refused(|i| i.price.cash = -1, "price.cash");
    refused(
        |i| {
            i.tier_prices.get_mut("diamond").unwrap().points = -5;
        },
        "tier_prices.diamond.points",
    );
    refused(|i| i.stock.clear(), "stock");
    refused(|i| i.available_until_ms = Some(1_000), "available_until");
    refused(|i| i.fulfilment.clear(), "fulfilment");
    refused(
        |i| {
            i.limit = Some(MemberLimit {
                count: 0,
                period: Period::Day,
            })
        },
        "limit.count",
    );
    refused(|i| i.time_zone = "Mars/Olympus".into(), "time_zone");
    refused(
        |i| i.kind = ItemKind::StoredValue { amount: 0 },
        "kind.amount",
    );
}

#[test]
fn a_member_pays_the_tier_price_and_orders_only_when_eligible_offered_and_available() {
    let i = item();
    assert_eq!(i.price_for(Some("diamond")).points, 4_000);
    assert_eq!(i.price_for(Some("gold")).points, 5_000);
    assert_eq!(i.price_for(None).points, 5_000);
    assert!(i.eligible(Some("gold")) && !i.eligible(Some("silver")) && !i.eligible(None));
    assert!(i.offered_at("s01", None) && !i.offered_at("s09", None));
    assert!(!i.available_at(999) && i.available_at(1_000) && !i.available_at(2_000));
    assert_eq!(i.stock_for(Some("s01")), Some(("s01", 3)));
    assert_eq!(
        i.stock_for(Some("s02")),
        Some((CENTRAL, 10)),
        "no stock of its own"
    );
    assert_eq!(i.stock_for(None), Some((CENTRAL, 10)));
    assert_eq!(i.total_stock(), 13);
}

#[test]
fn stock_counts_in_and_out_never_below_zero() {
    let mut s = ItemState::new(item());
    assert_eq!(s.left("s01"), 3);
    s.count("s01", true);
    s.count("s01", true);
    assert_eq!(s.left("s01"), 1);
    s.count("s01", false);
    s.count("s01", false);
    s.count("s01", false);
    assert_eq!((s.taken("s01"), s.left("s01")), (0, 3));
    assert_eq!(s.left("s09"), 0, "no such stock");
}
