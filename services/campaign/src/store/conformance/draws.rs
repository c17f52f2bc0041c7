//! Lucky draws in the campaign store's port: an entry wins what its roll gives while the
//! prize has stock, within the member's limit per period, or nothing is written; voiding an
//! entry gives its prize and the member's count back, once; drawn entries are listed by when
//! they are due; and racing entries never win a prize past its stock.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, event, tenant};
use crate::draw::entry::{Entry, EntryState};
use crate::draw::{DrawState, LuckyDraw, Outcome, Prize, PrizeKind};
use crate::mall::{MemberLimit, Period};
use crate::store::{DrawRepository, Entered, EntrySettled};
use loyalty_common::ids::TenantId;
use std::sync::Arc;

fn draw(stock: u64, per_member: Option<u32>) -> DrawState {
    DrawState::new(LuckyDraw {
        id: "SPRING".into(),
        name: "Spring draw".into(),
        cost_points: 50,
        prizes: vec![Prize {
            id: "phone".into(),
            kind: PrizeKind::Gift {
                sku: "PHONE-1".into(),
            },
            odds_ppm: 500_000,
            stock: Some(stock),
        }],
        limit: per_member.map(|count| MemberLimit {
            count,
            period: Period::Month,
        }),
        budget_points: None,
        starts_ms: 0,
        ends_ms: None,
        time_zone: "UTC".into(),
    })
}

fn entry(t: &TenantId, id: &str, member: &str, roll: u32) -> Entry {
    Entry {
        id: id.into(),
        tenant: t.to_string(),
        draw: "SPRING".into(),
        member: member.into(),
        period: "2026-12".into(),
        roll,
        outcome: Outcome {
            drawn: None,
            prize: None,
            reason: None,
        },
        cost_points: 50,
        state: EntryState::Drawn,
        hold_id: None,
        coupon: None,
        created_ms: 1_000,
        updated_ms: 1_000,
        due_ms: Some(5_000),
    }
}

fn events() -> crate::store::draws::EntryEvents {
    Arc::new(|e: &Entry| {
        vec![event(
            &TenantId::parse(e.tenant.as_str()).unwrap(),
            "entered",
        )]
    })
}

async fn won(store: &dyn DrawRepository, t: &TenantId) -> u64 {
    let state = store.draw(t, "SPRING").await.unwrap().unwrap();
    state.awarded.get("phone").copied().unwrap_or(0)
}

pub async fn an_entry_wins_what_its_roll_gives_within_stock_and_limit(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    let d = draw(2, Some(4));
    assert_eq!(
        store
            .create_draw(&t, &d, vec![event(&t, "created")])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .create_draw(&t, &draw(9, None), Vec::new())
            .await
            .unwrap(),
        Some(d.clone()),
        "the stored one answers"
    );
    let enter = |id: &str, member: &str, roll: u32| {
        let (store, e) = (Arc::clone(&store), entry(&t, id, member, roll));
        async move { store.enter(&e, events()).await.unwrap() }
    };
    let Entered::Yes(first) = enter("e1", "m1", 0).await else {
        panic!("not entered")
    };
    assert_eq!(first.outcome.prize.as_deref(), Some("phone"));
    assert_eq!(enter("e1", "m1", 0).await, Entered::Exists(first));
    enter("e2", "m1", 499_999).await;
    let Entered::Yes(third) = enter("e3", "m1", 7).await else {
        panic!("not entered")
    };
    assert_eq!(
        (
            third.outcome.drawn.as_deref(),
            third.outcome.prize.as_deref(),
            third.outcome.reason.as_deref()
        ),
        (Some("phone"), None, Some("out of stock"))
    );
    let Entered::Yes(blank) = enter("e4", "m1", 600_000).await else {
        panic!("not entered")
    };
    assert_eq!(blank.outcome.drawn, None);
    assert_eq!(
        enter("e5", "m1", 0).await,
        Entered::MemberLimit,
        "four a month"
    );
    assert!(store.entry_of(&t, "SPRING", "e5").await.unwrap().is_none());
    assert!(
        matches!(enter("e6", "m2", 0).await, Entered::Yes(_)),
        "per member"
    );
    let ghost = Entry {
        draw: "NONE".into(),
        ..entry(&t, "e7", "m1", 0)
    };
    assert_eq!(
        store.enter(&ghost, events()).await.unwrap(),
        Entered::NoDraw
    );
    assert_eq!(won(store.as_ref(), &t).await, 2);
}

pub async fn voiding_an_entry_gives_its_prize_and_count_back_once(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    store
        .create_draw(&t, &draw(1, Some(1)), Vec::new())
        .await
        .unwrap();
    let Entered::Yes(e) = store
        .enter(&entry(&t, "e1", "m1", 0), events())
        .await
        .unwrap()
    else {
        panic!("not entered")
    };
    let voided = Entry {
        state: EntryState::Voided,
        due_ms: None,
        ..(*e).clone()
    };
    let settled = store
        .settle_entry(&t, EntryState::Drawn, &voided, Vec::new())
        .await
        .unwrap();
    assert_eq!(settled, EntrySettled::Yes(Box::new(voided.clone())));
    assert_eq!(
        store
            .settle_entry(&t, EntryState::Drawn, &voided, Vec::new())
            .await
            .unwrap(),
        EntrySettled::NotFrom(Box::new(voided)),
        "once"
    );
    assert_eq!(won(store.as_ref(), &t).await, 0, "the prize is back");
    let again = store
        .enter(&entry(&t, "e2", "m1", 0), events())
        .await
        .unwrap();
    assert!(
        matches!(again, Entered::Yes(e) if e.outcome.prize.is_some()),
        "and the count"
    );
    let ghost = entry(&t, "e9", "m1", 0);
    assert_eq!(
        store
            .settle_entry(&t, EntryState::Drawn, &ghost, Vec::new())
            .await
            .unwrap(),
        EntrySettled::Missing
    );
}

pub async fn drawn_entries_are_listed_by_when_they_are_due_until_settled(stores: Stores) {
    let (store, t) = (stores.store, tenant());
    store
        .create_draw(&t, &draw(10, None), Vec::new())
        .await
        .unwrap();
    let late = Entry {
        due_ms: Some(8_000),
        ..entry(&t, "late", "m2", 0)
    };
    store
        .enter(&entry(&t, "early", "m1", 0), events())
        .await
        .unwrap();
    store.enter(&late, events()).await.unwrap();
    let mine = |entries: Vec<Entry>| -> Vec<String> {
        entries
            .into_iter()
            .filter(|e| e.tenant == t.as_str())
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(
        mine(store.due_entries(6_000, 100_000).await.unwrap()),
        ["early"]
    );
    let early = store
        .entry_of(&t, "SPRING", "early")
        .await
        .unwrap()
        .unwrap();
    let paid = Entry {
        state: EntryState::Paid,
        due_ms: None,
        ..early
    };
    store
        .settle_entry(&t, EntryState::Drawn, &paid, Vec::new())
        .await
        .unwrap();
    assert!(mine(store.due_entries(6_000, 100_000).await.unwrap()).is_empty());
    assert_eq!(
        mine(store.due_entries(9_000, 100_000).await.unwrap()),
        ["late"]
    );
}

/// 300 entries race, every one rolling the phone, which has 50 units: exactly 50 win it.
pub async fn racing_entries_never_win_a_prize_past_its_stock(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .create_draw(&t, &draw(50, None), Vec::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let (store, e) = (
                Arc::clone(&store),
                entry(&t, &format!("e{n}"), &format!("m{n}"), 0),
            );
            tokio::spawn(async move {
                for _ in 0..20 {
                    if let Ok(done) = store.enter(&e, events()).await {
                        return done;
                    }
                }
                panic!("entry {} never answered", e.id);
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Entered::Yes(e) => winners += u64::from(e.outcome.prize.is_some()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(winners, 50);
    assert_eq!(won(store.as_ref(), &t).await, 50);
}
