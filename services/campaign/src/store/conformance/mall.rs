//! The points mall in the campaign store's port: items written by version keeping the units
//! taken; an order counted against its stock and its member's limit in its period, or
//! nothing written; a change of an order's state made once, giving its unit back when it
//! stops counting; pending and placed orders listed by when they are due; and racing orders
//! selling exactly the stock.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, event, tenant};
use crate::mall::order::{Order, OrderState};
use crate::mall::{CENTRAL, Fulfilment, ItemKind, Localized, MallItem, MemberLimit, Period, Price};
use crate::store::{ItemWritten, MallRepository, OrderSettled, Placed};
use loyalty_common::ids::TenantId;
use std::sync::Arc;

fn item(id: &str, stock: &[(&str, u64)], per_member: Option<u32>) -> MallItem {
    MallItem {
        id: id.into(),
        kind: ItemKind::Gift {
            sku: "TEA-1".into(),
        },
        name: Localized {
            zh: "茶具".into(),
            en: "Tea set".into(),
        },
        description: Localized::default(),
        category: "home".into(),
        image: None,
        price: Price {
            points: 500,
            cash: 0,
        },
        tier_prices: Default::default(),
        tiers: Vec::new(),
        brands: Vec::new(),
        stores: Vec::new(),
        available_from_ms: None,
        available_until_ms: None,
        stock: stock.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
        limit: per_member.map(|count| MemberLimit {
            count,
            period: Period::Month,
        }),
        fulfilment: vec![Fulfilment::Pickup],
        time_zone: "UTC".into(),
    }
}

fn order(t: &TenantId, item: &str, id: &str, member: &str, stock: &str) -> Order {
    Order {
        id: id.into(),
        tenant: t.to_string(),
        item: item.into(),
        member: member.into(),
        stock: stock.into(),
        store: None,
        period: "2026-12".into(),
        price: Price {
            points: 500,
            cash: 0,
        },
        fulfilment: Some(Fulfilment::Pickup),
        state: OrderState::Pending,
        hold_id: None,
        paid_entry: None,
        pickup_code_sha256: None,
        coupon: None,
        credit: None,
        created_ms: 1_000,
        updated_ms: 1_000,
        due_ms: Some(5_000),
    }
}

async fn place_retrying(store: &dyn MallRepository, o: &Order) -> Placed {
    for _ in 0..20 {
        if let Ok(done) = store.place(o, Vec::new()).await {
            return done;
        }
    }
    panic!("order {} never answered", o.id);
}

pub async fn items_are_written_by_version_keeping_their_units_taken(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    let mut i = item("TEA", &[(CENTRAL, 5)], None);
    let put = |i: MallItem, expected: u64| {
        let (store, t) = (Arc::clone(&store), t.clone());
        async move {
            store
                .put_item(&t, &i, expected, vec![event(&t, "item")])
                .await
                .unwrap()
        }
    };
    assert_eq!(put(i.clone(), 1).await, ItemWritten::Conflict(None));
    assert_eq!(put(i.clone(), 0).await, ItemWritten::Yes(1));
    assert_eq!(put(i.clone(), 0).await, ItemWritten::Conflict(Some(1)));
    let o = order(&t, "TEA", "o1", "m1", CENTRAL);
    assert_eq!(store.place(&o, Vec::new()).await.unwrap(), Placed::Yes);
    i.price.points = 400;
    assert_eq!(put(i.clone(), 1).await, ItemWritten::Yes(2));
    let stored = store.item(&t, "TEA").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.item.price.points), (2, 400));
    assert_eq!(stored.taken(CENTRAL), 1, "the units taken stay");
    put(item("CUP", &[(CENTRAL, 1)], None), 0).await;
    let listed: Vec<String> = store
        .items(&t, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.item.id)
        .collect();
    assert_eq!(listed, ["CUP", "TEA"]);
    let after: Vec<String> = store
        .items(&t, Some("CUP"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.item.id)
        .collect();
    assert_eq!(after, ["TEA"]);
    assert!(
        store.items(&tenant(), None, 10).await.unwrap().is_empty(),
        "per tenant"
    );
}

pub async fn an_order_counts_against_its_stock_and_member_or_writes_nothing(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    let i = item("TEA", &[("s01", 1), (CENTRAL, 2)], Some(1));
    store.put_item(&t, &i, 0, Vec::new()).await.unwrap();
    let first = order(&t, "TEA", "o1", "m1", "s01");
    assert_eq!(store.place(&first, Vec::new()).await.unwrap(), Placed::Yes);
    assert_eq!(
        store.place(&first, Vec::new()).await.unwrap(),
        Placed::Exists(Box::new(first.clone()))
    );
    let sold_out = order(&t, "TEA", "o2", "m2", "s01");
    assert_eq!(
        store.place(&sold_out, Vec::new()).await.unwrap(),
        Placed::SoldOut
    );
    let again = order(&t, "TEA", "o3", "m1", CENTRAL);
    assert_eq!(
        store.place(&again, Vec::new()).await.unwrap(),
        Placed::MemberLimit,
        "one a month"
    );
    let next_month = Order {
        period: "2027-01".into(),
        ..again
    };
    assert_eq!(
        store.place(&next_month, Vec::new()).await.unwrap(),
        Placed::Yes
    );
    let none = order(&t, "NONE", "o4", "m1", CENTRAL);
    assert_eq!(
        store.place(&none, Vec::new()).await.unwrap(),
        Placed::NoItem
    );
    let state = store.item(&t, "TEA").await.unwrap().unwrap();
    assert_eq!((state.taken("s01"), state.taken(CENTRAL)), (1, 1));
    assert!(
        store.order_of(&t, "TEA", "o2").await.unwrap().is_none(),
        "nothing written"
    );
}

pub async fn settling_an_order_moves_it_once_and_gives_its_unit_back(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    store
        .put_item(&t, &item("TEA", &[(CENTRAL, 1)], Some(1)), 0, Vec::new())
        .await
        .unwrap();
    let o = order(&t, "TEA", "o1", "m1", CENTRAL);
    store.place(&o, Vec::new()).await.unwrap();
    let mut placed = o.moved(OrderState::Placed, 2_000, Some(9_000));
    placed.hold_id = Some("h1".into());
    let settled = store
        .settle_order(&t, OrderState::Pending, &placed, vec![event(&t, "placed")])
        .await
        .unwrap();
    assert_eq!(settled, OrderSettled::Yes(Box::new(placed.clone())));
    assert_eq!(
        store
            .settle_order(&t, OrderState::Pending, &placed, Vec::new())
            .await
            .unwrap(),
        OrderSettled::NotFrom(Box::new(placed.clone())),
        "once"
    );
    assert_eq!(
        store.item(&t, "TEA").await.unwrap().unwrap().taken(CENTRAL),
        1
    );
    let cancelled = placed.moved(OrderState::Cancelled, 3_000, None);
    store
        .settle_order(&t, OrderState::Placed, &cancelled, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        store.item(&t, "TEA").await.unwrap().unwrap().taken(CENTRAL),
        0,
        "the unit is back"
    );
    let stored = store.order_of(&t, "TEA", "o1").await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.hold_id.as_deref()),
        (OrderState::Cancelled, Some("h1"))
    );
    let again = order(&t, "TEA", "o2", "m1", CENTRAL);
    assert_eq!(
        store.place(&again, Vec::new()).await.unwrap(),
        Placed::Yes,
        "the member's count is back too"
    );
    let ghost = order(&t, "TEA", "o9", "m1", CENTRAL);
    assert_eq!(
        store
            .settle_order(&t, OrderState::Pending, &ghost, Vec::new())
            .await
            .unwrap(),
        OrderSettled::Missing
    );
}

pub async fn orders_are_listed_by_when_they_are_due_until_settled(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    store
        .put_item(&t, &item("TEA", &[(CENTRAL, 5)], None), 0, Vec::new())
        .await
        .unwrap();
    let early = order(&t, "TEA", "early", "m1", CENTRAL);
    let late = Order {
        due_ms: Some(8_000),
        ..order(&t, "TEA", "late", "m2", CENTRAL)
    };
    store.place(&early, Vec::new()).await.unwrap();
    store.place(&late, Vec::new()).await.unwrap();
    let mine = |orders: Vec<Order>| -> Vec<String> {
        orders
            .into_iter()
            .filter(|o| o.tenant == t.as_str())
            .map(|o| o.id)
            .collect()
    };
    assert_eq!(
        mine(store.due_orders(6_000, 100_000).await.unwrap()),
        ["early"]
    );
    let placed = early.moved(OrderState::Placed, 2_000, Some(20_000));
    store
        .settle_order(&t, OrderState::Pending, &placed, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        mine(store.due_orders(10_000, 100_000).await.unwrap()),
        ["late"],
        "due again later"
    );
    let confirmed = placed.moved(OrderState::Confirmed, 3_000, None);
    store
        .settle_order(&t, OrderState::Placed, &confirmed, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        mine(store.due_orders(30_000, 100_000).await.unwrap()),
        ["late"]
    );
}

/// 500 members order at once from an item with 100 units: exactly 100 orders are written.
pub async fn racing_orders_sell_exactly_the_stock(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .put_item(&t, &item("HOT", &[(CENTRAL, 100)], Some(1)), 0, Vec::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..500)
        .map(|n| {
            let (store, t) = (Arc::clone(&store), t.clone());
            let o = order(&t, "HOT", &format!("o{n}"), &format!("m{n}"), CENTRAL);
            tokio::spawn(async move { place_retrying(store.as_ref(), &o).await })
        })
        .collect();
    let mut placed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Placed::Yes => placed += 1,
            Placed::SoldOut => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(placed, 100);
    assert_eq!(
        store.item(&t, "HOT").await.unwrap().unwrap().taken(CENTRAL),
        100
    );
}
