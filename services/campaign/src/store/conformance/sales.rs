//! Flash sales in the campaign store's port: claims count against their quota and their
//! member's limit or write nothing, settle once, lapse from a listing, and never oversell
//! under concurrency.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, event, names, tenant};
use crate::sale::{Claim, ClaimState, FlashSale, SaleItem};
use crate::store::{ClaimSettled, Claimed, SaleRepository};
use loyalty_common::ids::TenantId;
use std::collections::BTreeMap;
use std::sync::Arc;

fn sale(id: &str, quotas: &[(&str, u64)], per_member: u32) -> FlashSale {
    FlashSale {
        id: id.into(),
        name: "Singles' day".into(),
        item: SaleItem::Item {
            sku: "TEA-1".into(),
        },
        quotas: quotas.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        per_member_limit: per_member,
        starts_ms: 1_000,
        ends_ms: None,
        hold_secs: 600,
        created_ms: 1_000,
    }
}

fn claim(t: &TenantId, sale: &str, id: &str, member: &str, quota: &str, until: i64) -> Claim {
    Claim {
        id: id.into(),
        tenant: t.to_string(),
        sale: sale.into(),
        member: member.into(),
        quota: quota.into(),
        state: ClaimState::Held,
        created_ms: 1_000,
        hold_until_ms: Some(until),
        updated_ms: 1_000,
        coupon: None,
    }
}

/// A claim told to retry (contention) is tried again with its id, as a caller would.
async fn claim_retrying(store: &dyn SaleRepository, c: &Claim) -> Claimed {
    for _ in 0..20 {
        if let Ok(done) = store.claim(c, Vec::new()).await {
            return done;
        }
    }
    panic!("claim {} never answered", c.id);
}

pub async fn a_claim_counts_against_its_quota_and_member_or_writes_nothing(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    let s = sale("S1", &[("gold", 2), ("*", 1)], 1);
    assert_eq!(
        store
            .create_sale(&t, &s, vec![event(&t, "created")])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.create_sale(&t, &s, Vec::new()).await.unwrap(),
        Some(s.clone()),
        "a second create answers with the stored sale"
    );
    let c1 = claim(&t, "S1", "c1", "m1", "gold", 5_000);
    assert_eq!(
        store.claim(&c1, vec![event(&t, "claimed")]).await.unwrap(),
        Claimed::Yes
    );
    assert_eq!(
        store.claim(&c1, Vec::new()).await.unwrap(),
        Claimed::Exists(Box::new(c1.clone()))
    );
    let again = claim(&t, "S1", "c2", "m1", "gold", 5_000);
    assert_eq!(
        store.claim(&again, Vec::new()).await.unwrap(),
        Claimed::MemberLimit
    );
    store
        .claim(&claim(&t, "S1", "c3", "m2", "gold", 5_000), Vec::new())
        .await
        .unwrap();
    let third = claim(&t, "S1", "c4", "m3", "gold", 5_000);
    assert_eq!(
        store.claim(&third, Vec::new()).await.unwrap(),
        Claimed::SoldOut
    );
    let any = claim(&t, "S1", "c5", "m3", "*", 5_000);
    assert_eq!(store.claim(&any, Vec::new()).await.unwrap(), Claimed::Yes);
    let nowhere = claim(&t, "S9", "c6", "m4", "*", 5_000);
    assert_eq!(
        store.claim(&nowhere, Vec::new()).await.unwrap(),
        Claimed::NoSale
    );
    let state = store.sale(&t, "S1").await.unwrap().unwrap();
    let taken: BTreeMap<String, u64> = [("*".to_string(), 1), ("gold".to_string(), 2)].into();
    assert_eq!((state.sale, state.taken), (s, taken));
    assert!(
        store.claim_of(&t, "S1", "c2").await.unwrap().is_none(),
        "refused: not stored"
    );
    assert_eq!(names(store.as_ref(), &t, 2).await, ["created", "claimed"]);
}

pub async fn settling_a_claim_moves_it_once_and_gives_its_unit_back(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .create_sale(&t, &sale("S1", &[("*", 1)], 1), Vec::new())
        .await
        .unwrap();
    let c = claim(&t, "S1", "c1", "m1", "*", 5_000);
    store.claim(&c, Vec::new()).await.unwrap();
    let held_to_released = (ClaimState::Held, ClaimState::Released);
    let released = store
        .settle_claim(
            &t,
            "S1",
            "c1",
            held_to_released,
            2_000,
            None,
            vec![event(&t, "released")],
        )
        .await
        .unwrap();
    let ClaimSettled::Yes(released) = released else {
        panic!("{released:?}")
    };
    assert_eq!(
        (released.state, released.hold_until_ms),
        (ClaimState::Released, None)
    );
    let twice = store
        .settle_claim(&t, "S1", "c1", held_to_released, 2_000, None, Vec::new())
        .await
        .unwrap();
    assert_eq!(twice, ClaimSettled::NotFrom(released));
    assert_eq!(store.sale(&t, "S1").await.unwrap().unwrap().taken["*"], 0);
    // The unit and the member's count came back: the same member claims again.
    let next = claim(&t, "S1", "c2", "m1", "*", 5_000);
    assert_eq!(store.claim(&next, Vec::new()).await.unwrap(), Claimed::Yes);
    let confirmed = store
        .settle_claim(
            &t,
            "S1",
            "c2",
            (ClaimState::Held, ClaimState::Confirmed),
            3_000,
            Some("CODE1".into()),
            Vec::new(),
        )
        .await
        .unwrap();
    let ClaimSettled::Yes(confirmed) = confirmed else {
        panic!("{confirmed:?}")
    };
    assert_eq!(
        (confirmed.state, confirmed.coupon.as_deref()),
        (ClaimState::Confirmed, Some("CODE1"))
    );
    assert_eq!(
        store.sale(&t, "S1").await.unwrap().unwrap().taken["*"],
        1,
        "sold stays taken"
    );
    let missing = store
        .settle_claim(&t, "S1", "nope", held_to_released, 3_000, None, Vec::new())
        .await
        .unwrap();
    assert_eq!(missing, ClaimSettled::Missing);
    assert_eq!(names(store.as_ref(), &t, 1).await, ["released"]);
}

pub async fn lapsed_claims_are_listed_until_settled(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .create_sale(&t, &sale("S1", &[("*", 5)], 5), Vec::new())
        .await
        .unwrap();
    for (id, until) in [("early", 2_000), ("late", 9_000)] {
        store
            .claim(&claim(&t, "S1", id, "m1", "*", until), Vec::new())
            .await
            .unwrap();
    }
    let mine = |claims: Vec<Claim>| -> Vec<String> {
        claims
            .into_iter()
            .filter(|c| c.tenant == t.as_str())
            .map(|c| c.id)
            .collect()
    };
    assert_eq!(
        mine(store.lapsed_claims(5_000, 100_000).await.unwrap()),
        ["early"]
    );
    store
        .settle_claim(
            &t,
            "S1",
            "early",
            (ClaimState::Held, ClaimState::Lapsed),
            5_000,
            None,
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(mine(store.lapsed_claims(5_000, 100_000).await.unwrap()).is_empty());
    assert_eq!(
        mine(store.lapsed_claims(10_000, 100_000).await.unwrap()),
        ["late"]
    );
}

/// 1,000 members claim at once from a sale of 100 split across tiers: each tier sells
/// exactly its quota, and nothing more.
pub async fn concurrent_claims_sell_exactly_each_quota(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    let quotas = [("diamond", 50), ("gold", 30), ("silver", 20)];
    store
        .create_sale(&t, &sale("HOT", &quotas, 1), Vec::new())
        .await
        .unwrap();
    let tiers = ["diamond", "gold", "silver"];
    let tasks: Vec<_> = (0..1_000)
        .map(|n| {
            let (store, t) = (Arc::clone(&store), t.clone());
            let c = claim(
                &t,
                "HOT",
                &format!("c{n}"),
                &format!("m{n}"),
                tiers[n % 3],
                5_000,
            );
            tokio::spawn(async move { (c.quota.clone(), claim_retrying(store.as_ref(), &c).await) })
        })
        .collect();
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let (quota, done) = task.await.unwrap();
        match done {
            Claimed::Yes => *sold.entry(quota).or_default() += 1,
            Claimed::SoldOut => {}
            other => panic!("{other:?}"),
        }
    }
    let want: BTreeMap<String, u64> = quotas.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    assert_eq!(sold, want, "exactly each tier's quota");
    assert_eq!(store.sale(&t, "HOT").await.unwrap().unwrap().taken, want);
}
