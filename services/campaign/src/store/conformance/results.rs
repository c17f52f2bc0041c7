//! Campaign results in the campaign store's port: a fact counts once however often it is
//! tallied (also within one tally, and under racing tallies), a fact that comes after
//! another counts only once that one has, and links are kept per thing linked, per tenant.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, tenant};
use crate::campaign::results::{Counts, Fact, Link, Tally, member_link};
use std::sync::Arc;

fn fact(key: &str, arm: &str, after: Option<&str>, add: Counts) -> Fact {
    Fact {
        key: key.into(),
        arm: arm.into(),
        after: after.map(str::to_string),
        add,
    }
}

fn spend(n: i64) -> Counts {
    Counts {
        orders: n.signum(),
        spend: n,
        ..Counts::default()
    }
}

fn tally(campaign: &str, facts: Vec<Fact>) -> Tally {
    Tally {
        campaign: campaign.into(),
        facts,
        links: Vec::new(),
    }
}

pub async fn a_fact_counts_once_and_after_the_fact_it_follows(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    assert!(s.results(&t, "C").await.unwrap().is_empty());
    let refund = fact("refund/R1", "a", Some("order/P1"), spend(-300));
    assert_eq!(
        s.tally(&t, &tally("C", vec![refund.clone()]))
            .await
            .unwrap(),
        0,
        "a refund of an order not counted is not counted"
    );
    let order = fact("order/P1", "a", None, spend(1_000));
    let first = tally("C", vec![order.clone(), order.clone(), refund.clone()]);
    assert_eq!(
        s.tally(&t, &first).await.unwrap(),
        2,
        "a fact twice in one tally"
    );
    assert_eq!(s.tally(&t, &first).await.unwrap(), 0, "tallied again");
    let held = fact("order/P2", "holdout", None, spend(500));
    assert_eq!(s.tally(&t, &tally("C", vec![held])).await.unwrap(), 1);
    let results = s.results(&t, "C").await.unwrap();
    assert_eq!(results["a"].spend, 700);
    assert_eq!(
        results["a"].orders, 0,
        "an order, and a refund that counts it back"
    );
    assert_eq!(results["holdout"].spend, 500);
    assert!(s.results(&t, "OTHER").await.unwrap().is_empty());
    assert!(
        s.results(&tenant(), "C").await.unwrap().is_empty(),
        "per tenant"
    );
}

pub async fn racing_tallies_count_each_fact_once(stores: Stores) {
    let (s, t) = (Arc::clone(&stores.store), tenant());
    let mut racers = Vec::new();
    for r in 0..8 {
        let (s, t) = (Arc::clone(&s), t.clone());
        racers.push(tokio::spawn(async move {
            // Every racer tallies the same 20 orders, from another starting point.
            let facts = (0..20)
                .map(|i| (i + r * 3) % 20)
                .map(|i| fact(&format!("order/P{i}"), "a", None, spend(100)))
                .collect();
            s.tally(&t, &tally("C", facts)).await.unwrap()
        }));
    }
    let mut counted = 0;
    for r in racers {
        counted += r.await.unwrap();
    }
    assert_eq!(counted, 20, "every order counted by one racer");
    let results = s.results(&t, "C").await.unwrap();
    assert_eq!((results["a"].orders, results["a"].spend), (20, 2_000));
}

pub async fn links_are_kept_per_thing_linked(stores: Stores) {
    let (s, t) = (&stores.store, tenant());
    let link = |campaign: &str, arm: &str, at_ms: i64| Link {
        campaign: campaign.into(),
        arm: arm.into(),
        at_ms,
    };
    let mut linking = tally("C", Vec::new());
    linking.links = vec![
        (member_link("m1"), link("C", "a", 2_000)),
        (member_link("m1"), link("C", "a", 1_000)),
        (member_link("m2"), link("C", "holdout", 1_000)),
    ];
    assert_eq!(
        s.tally(&t, &linking).await.unwrap(),
        0,
        "links are not facts"
    );
    s.tally(&t, &linking).await.unwrap();
    let mut other = tally("D", Vec::new());
    other.links = vec![(member_link("m1"), link("D", "b", 500))];
    s.tally(&t, &other).await.unwrap();
    assert_eq!(
        s.links(&t, &member_link("m1")).await.unwrap(),
        vec![
            link("C", "a", 1_000),
            link("C", "a", 2_000),
            link("D", "b", 500)
        ],
        "by campaign and time, each once"
    );
    assert_eq!(
        s.links(&t, &member_link("m2")).await.unwrap(),
        vec![link("C", "holdout", 1_000)]
    );
    assert!(s.links(&t, &member_link("m3")).await.unwrap().is_empty());
    assert!(
        s.links(&tenant(), &member_link("m1"))
            .await
            .unwrap()
            .is_empty()
    );
}
