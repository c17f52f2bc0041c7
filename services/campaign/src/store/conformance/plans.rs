//! Campaigns in the campaign store's port: records written by version with the counters
//! kept, grants that never overspend a budget or pass a member's cap under concurrency,
//! settled once, listed while reserved, and kept apart per tenant.

#![allow(clippy::unwrap_used)] // A panic is a failed assertion with its location.

use super::{Stores, event, names, tenant};
use crate::campaign::grant::{Grant, GrantState};
use crate::campaign::{
    Actions, Audience, Budget, BudgetUnit, Campaign, CampaignRecord, Reward, Schedule, Step,
    Variant,
};
use crate::store::{GrantSettled, Granted, PlanRepository};
use loyalty_common::ids::TenantId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn record(id: &str, budget: Option<u64>) -> CampaignRecord {
    let campaign = Campaign {
        id: id.into(),
        name: "Double points week".into(),
        audience: Audience::Everyone,
        variants: vec![Variant {
            id: "a".into(),
            weight: 1,
            reward: Reward::Points { points: 10 },
        }],
        holdout_percent: 0,
        schedule: Schedule {
            starts: "2026-12-24".into(),
            ends: Some("2026-12-31".into()),
            time_zone: "Asia/Shanghai".into(),
        },
        budget: budget.map(|limit| Budget {
            unit: BudgetUnit::Points,
            limit,
        }),
        frequency_cap: None,
        trigger: None,
        actions: Actions::default(),
        attribution_days: None,
    };
    CampaignRecord::draft(campaign, "maker", 1_000)
}

fn grant(t: &TenantId, campaign: &str, key: &str, member: &str, units: u64) -> Grant {
    Grant {
        tenant: t.to_string(),
        campaign: campaign.into(),
        key: key.into(),
        member: member.into(),
        variant: "a".into(),
        units,
        period: "all".into(),
        state: GrantState::Reserved,
        created_ms: 1_000,
        updated_ms: 1_000,
        paid_with: None,
    }
}

/// A grant told to retry (contention) is tried again with its key, as a caller would.
async fn grant_retrying(store: &dyn PlanRepository, g: &Grant, cap: Option<u32>) -> Granted {
    for _ in 0..20 {
        if let Ok(done) = store.grant(g, cap, Vec::new()).await {
            return done;
        }
    }
    panic!("grant {} never answered", g.key);
}

/// A settle at 2,000 without events, tried again when told to retry, as a caller would.
async fn settle(
    store: &dyn PlanRepository,
    t: &TenantId,
    (campaign, member, key): (&str, &str, &str),
    to: GrantState,
    paid_with: Option<&str>,
) -> GrantSettled {
    for _ in 0..20 {
        let paid_with = paid_with.map(str::to_string);
        let settled =
            store.settle_grant(t, campaign, member, key, to, 2_000, paid_with, Vec::new());
        if let Ok(done) = settled.await {
            return done;
        }
    }
    panic!("settle of {key} never answered");
}

async fn counters(store: &dyn PlanRepository, t: &TenantId, campaign: &str) -> (u64, u64) {
    let r = store.campaign(t, campaign).await.unwrap().unwrap();
    (r.reserved, r.spent)
}

pub async fn campaigns_are_written_by_version_keeping_their_counters(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    let v1 = record("C1", Some(100));
    assert!(
        store
            .put_campaign(&t, &v1, vec![event(&t, "campaign_written")])
            .await
            .unwrap()
    );
    assert!(
        !store.put_campaign(&t, &v1, Vec::new()).await.unwrap(),
        "version 1 exists"
    );
    assert_eq!(store.campaign(&t, "C1").await.unwrap(), Some(v1.clone()));
    let g = grant(&t, "C1", "k1", "m1", 5);
    assert_eq!(
        store
            .grant(&g, None, vec![event(&t, "granted")])
            .await
            .unwrap(),
        Granted::Yes
    );
    // The maker's copy still says 0 reserved: the grant's 5 stay.
    let mut v2 = v1.clone();
    v2.take(Step::Submit, "maker", 2_000, None).unwrap();
    assert!(
        store
            .put_campaign(&t, &v2, vec![event(&t, "campaign_submitted")])
            .await
            .unwrap()
    );
    let stored = store.campaign(&t, "C1").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.reserved, stored.spent), (2, 5, 0));
    assert_eq!(stored.history, v2.history);
    for stale in [&v1, &v2] {
        assert!(!store.put_campaign(&t, stale, Vec::new()).await.unwrap());
    }
    let mut skipping = v2.clone();
    skipping.version = 4;
    assert!(!store.put_campaign(&t, &skipping, Vec::new()).await.unwrap());
    assert!(
        store
            .put_campaign(&t, &record("C0", None), Vec::new())
            .await
            .unwrap()
    );
    let listed: Vec<(String, u64, u64)> = store
        .campaigns(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.campaign.id, r.version, r.reserved))
        .collect();
    assert_eq!(listed, [("C0".into(), 1, 0), ("C1".into(), 2, 5)]);
    assert!(store.campaign(&t, "nope").await.unwrap().is_none());
    assert_eq!(
        names(store.as_ref(), &t, 3).await,
        ["campaign_written", "granted", "campaign_submitted"]
    );
}

pub async fn a_grant_takes_its_units_once_and_never_overspends(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .put_campaign(&t, &record("C1", Some(10)), Vec::new())
        .await
        .unwrap();
    let k1 = grant(&t, "C1", "k1", "m1", 8);
    assert_eq!(
        store.grant(&k1, None, Vec::new()).await.unwrap(),
        Granted::Yes
    );
    assert_eq!(
        store.grant(&k1, None, Vec::new()).await.unwrap(),
        Granted::Exists(Box::new(k1.clone()))
    );
    assert_eq!(
        store.grant_of(&t, "C1", "m1", "k1").await.unwrap(),
        Some(k1)
    );
    let k2 = grant(&t, "C1", "k2", "m2", 3);
    assert_eq!(
        store.grant(&k2, None, Vec::new()).await.unwrap(),
        Granted::BudgetExhausted
    );
    assert!(
        store
            .grant_of(&t, "C1", "m2", "k2")
            .await
            .unwrap()
            .is_none(),
        "refused: not stored"
    );
    let k3 = grant(&t, "C1", "k3", "m2", 2);
    assert_eq!(
        store.grant(&k3, None, Vec::new()).await.unwrap(),
        Granted::Yes
    );
    assert_eq!(counters(store.as_ref(), &t, "C1").await, (10, 0));
    let nowhere = grant(&t, "C9", "k4", "m1", 1);
    assert_eq!(
        store.grant(&nowhere, None, Vec::new()).await.unwrap(),
        Granted::NoCampaign
    );

    // 1,000 members at once on a budget of 100; every other winner confirms at once.
    store
        .put_campaign(&t, &record("HOT", Some(100)), Vec::new())
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (store, t, done) = (Arc::clone(&store), t.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let (reserved, spent) = counters(store.as_ref(), &t, "HOT").await;
                assert!(reserved + spent <= 100, "{reserved} + {spent} over 100");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..1_000)
        .map(|n| {
            let (store, t) = (Arc::clone(&store), t.clone());
            let g = grant(&t, "HOT", &format!("k{n}"), &format!("m{n}"), 1);
            tokio::spawn(async move {
                let granted = grant_retrying(store.as_ref(), &g, None).await;
                let confirmed = granted == Granted::Yes && n % 2 == 0;
                if confirmed {
                    let key = ("HOT", g.member.as_str(), g.key.as_str());
                    let settled = settle(store.as_ref(), &t, key, GrantState::Confirmed, None);
                    assert!(matches!(settled.await, GrantSettled::Yes(_)));
                }
                (granted, confirmed)
            })
        })
        .collect();
    let (mut granted, mut confirmed) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (Granted::Yes, c) => (granted, confirmed) = (granted + 1, confirmed + u64::from(c)),
            (Granted::BudgetExhausted, _) => {}
            (other, _) => panic!("{other:?}"),
        }
    }
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    assert_eq!(granted, 100, "exactly the budget");
    assert_eq!(
        counters(store.as_ref(), &t, "HOT").await,
        (100 - confirmed, confirmed)
    );
}

pub async fn a_member_is_capped_per_period_and_settling_gives_back(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .put_campaign(&t, &record("C1", Some(100)), Vec::new())
        .await
        .unwrap();
    let in_period = |key: &str, member: &str, period: &str| {
        let mut g = grant(&t, "C1", key, member, 10);
        g.period = period.into();
        g
    };
    let cap = Some(2);
    for (key, member, period, want) in [
        ("k1", "m1", "2026-12-24", Granted::Yes),
        ("k2", "m1", "2026-12-24", Granted::Yes),
        ("k3", "m1", "2026-12-24", Granted::CapReached),
        ("k4", "m1", "2026-12-25", Granted::Yes),
        ("k5", "m2", "2026-12-24", Granted::Yes),
        // Keys are the caller's per member: m2's k1 is a grant of its own.
        ("k1", "m2", "2026-12-25", Granted::Yes),
    ] {
        let g = in_period(key, member, period);
        assert_eq!(
            store.grant(&g, cap, Vec::new()).await.unwrap(),
            want,
            "{key}"
        );
    }
    assert!(
        store
            .grant_of(&t, "C1", "m1", "k3")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(counters(store.as_ref(), &t, "C1").await, (50, 0));

    let released = store
        .settle_grant(
            &t,
            "C1",
            "m1",
            "k1",
            GrantState::Released,
            2_000,
            None,
            vec![event(&t, "grant_released")],
        )
        .await
        .unwrap();
    let GrantSettled::Yes(released) = released else {
        panic!("{released:?}")
    };
    assert_eq!(
        (released.state, released.updated_ms),
        (GrantState::Released, 2_000)
    );
    assert_eq!(
        store.grant_of(&t, "C1", "m1", "k1").await.unwrap(),
        Some(*released)
    );
    assert_eq!(counters(store.as_ref(), &t, "C1").await, (40, 0));
    // The place under the cap came back with the units.
    let again = in_period("k3", "m1", "2026-12-24");
    assert_eq!(
        store.grant(&again, cap, Vec::new()).await.unwrap(),
        Granted::Yes
    );

    let confirmed = settle(
        store.as_ref(),
        &t,
        ("C1", "m1", "k2"),
        GrantState::Confirmed,
        Some("E1"),
    )
    .await;
    let GrantSettled::Yes(confirmed) = confirmed else {
        panic!("{confirmed:?}")
    };
    assert_eq!(
        (confirmed.state, confirmed.paid_with.as_deref()),
        (GrantState::Confirmed, Some("E1"))
    );
    assert_eq!(
        counters(store.as_ref(), &t, "C1").await,
        (40, 10),
        "reserved to spent"
    );
    // A confirmed grant keeps its place: the cap is still reached.
    let fourth = in_period("k6", "m1", "2026-12-24");
    assert_eq!(
        store.grant(&fourth, cap, Vec::new()).await.unwrap(),
        Granted::CapReached
    );

    for (key, to) in [
        ("k2", GrantState::Released),
        ("k1", GrantState::Confirmed),
        ("k4", GrantState::Reserved),
    ] {
        let stored = store.grant_of(&t, "C1", "m1", key).await.unwrap().unwrap();
        let twice = settle(store.as_ref(), &t, ("C1", "m1", key), to, None).await;
        assert_eq!(twice, GrantSettled::NotFrom(Box::new(stored)), "{key}");
    }
    for grant in [("C1", "m1", "nope"), ("C1", "m3", "k1"), ("C9", "m1", "k1")] {
        let missing = settle(store.as_ref(), &t, grant, GrantState::Confirmed, None);
        assert_eq!(missing.await, GrantSettled::Missing);
    }
    assert_eq!(
        counters(store.as_ref(), &t, "C1").await,
        (40, 10),
        "refusals moved nothing"
    );

    // A budget's last unit, given back, is granted again.
    store
        .put_campaign(&t, &record("ONE", Some(1)), Vec::new())
        .await
        .unwrap();
    let (a, b) = (
        grant(&t, "ONE", "a", "m1", 1),
        grant(&t, "ONE", "b", "m2", 1),
    );
    assert_eq!(
        store.grant(&a, None, Vec::new()).await.unwrap(),
        Granted::Yes
    );
    assert_eq!(
        store.grant(&b, None, Vec::new()).await.unwrap(),
        Granted::BudgetExhausted
    );
    settle(
        store.as_ref(),
        &t,
        ("ONE", "m1", "a"),
        GrantState::Released,
        None,
    )
    .await;
    assert_eq!(
        store.grant(&b, None, Vec::new()).await.unwrap(),
        Granted::Yes
    );
    assert_eq!(names(store.as_ref(), &t, 1).await, ["grant_released"]);
}

pub async fn reserved_grants_are_listed_oldest_first_until_settled(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .put_campaign(&t, &record("C1", None), Vec::new())
        .await
        .unwrap();
    for (key, at) in [
        ("late", 3_000),
        ("early", 1_000),
        ("mid", 2_000),
        ("after", 9_000),
    ] {
        let mut g = grant(&t, "C1", key, key, 1);
        (g.created_ms, g.updated_ms) = (at, at);
        assert_eq!(
            store.grant(&g, None, Vec::new()).await.unwrap(),
            Granted::Yes
        );
    }
    let mine = async |before: i64| -> Vec<String> {
        store
            .reserved_grants(before, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|g| g.tenant == t.as_str())
            .map(|g| g.key)
            .collect()
    };
    assert_eq!(mine(5_000).await, ["early", "mid", "late"]);
    settle(
        store.as_ref(),
        &t,
        ("C1", "mid", "mid"),
        GrantState::Confirmed,
        None,
    )
    .await;
    assert_eq!(mine(5_000).await, ["early", "late"]);
    settle(
        store.as_ref(),
        &t,
        ("C1", "early", "early"),
        GrantState::Released,
        None,
    )
    .await;
    assert_eq!(mine(10_000).await, ["late", "after"]);
    let g = store.reserved_grants(10_000, 100_000).await.unwrap();
    let late = g.iter().find(|g| g.tenant == t.as_str()).unwrap();
    assert_eq!(late, &{
        let mut g = grant(&t, "C1", "late", "late", 1);
        (g.created_ms, g.updated_ms) = (3_000, 3_000);
        g
    });
}

pub async fn campaigns_and_grants_are_kept_per_tenant(stores: Stores) {
    let store = stores.store;
    let (t1, t2) = (tenant(), tenant());
    store
        .put_campaign(&t1, &record("C1", Some(1)), Vec::new())
        .await
        .unwrap();
    let mut other = record("C1", Some(5));
    other.campaign.name = "Another chain's".into();
    store.put_campaign(&t2, &other, Vec::new()).await.unwrap();
    for t in [&t1, &t2] {
        let g = grant(t, "C1", "k1", "m1", 1);
        assert_eq!(
            store.grant(&g, Some(1), Vec::new()).await.unwrap(),
            Granted::Yes
        );
    }
    let only_t1 = grant(&t1, "C1", "k2", "m2", 1);
    assert_eq!(
        store.grant(&only_t1, None, Vec::new()).await.unwrap(),
        Granted::BudgetExhausted
    );
    let only_t2 = grant(&t2, "C1", "k2", "m2", 1);
    assert_eq!(
        store.grant(&only_t2, None, Vec::new()).await.unwrap(),
        Granted::Yes
    );
    assert_eq!(counters(store.as_ref(), &t1, "C1").await, (1, 0));
    assert_eq!(counters(store.as_ref(), &t2, "C1").await, (2, 0));
    // The sweeps find both tenants (the store may hold others' from other bodies).
    let tenants = store.campaign_tenants().await.unwrap();
    for t in [&t1, &t2] {
        assert!(
            tenants.iter().any(|x| x == t.as_str()),
            "{t} in {tenants:?}"
        );
    }
    assert!(
        store
            .grant_of(&t1, "C1", "m2", "k2")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .campaign(&t2, "C1")
            .await
            .unwrap()
            .unwrap()
            .campaign
            .name,
        "Another chain's"
    );
    let listed = |t: &TenantId| {
        let (store, t) = (Arc::clone(&store), t.clone());
        async move {
            let all = store.campaigns(&t).await.unwrap();
            all.into_iter()
                .map(|r| r.campaign.budget.unwrap().limit)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!((listed(&t1).await, listed(&t2).await), (vec![1], vec![5]));
    settle(
        store.as_ref(),
        &t2,
        ("C1", "m1", "k1"),
        GrantState::Released,
        None,
    )
    .await;
    assert_eq!(
        store
            .grant_of(&t1, "C1", "m1", "k1")
            .await
            .unwrap()
            .unwrap()
            .state,
        GrantState::Reserved,
        "t2's settle left t1's grant"
    );
    let unknown = TenantId::parse(loyalty_scylla::conformance::unique("t")).unwrap();
    assert!(store.campaigns(&unknown).await.unwrap().is_empty());
}

pub async fn a_campaign_without_a_budget_takes_any_number_of_grants(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .put_campaign(&t, &record("OPEN", None), Vec::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let store = Arc::clone(&store);
            let g = grant(&t, "OPEN", &format!("k{n}"), &format!("m{n}"), 1_000_000);
            tokio::spawn(async move { grant_retrying(store.as_ref(), &g, None).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Granted::Yes);
    }
    let r = store.campaign(&t, "OPEN").await.unwrap().unwrap();
    assert_eq!((r.reserved, r.budget_left()), (100_000_000, None));
}

pub async fn a_grant_held_out_takes_no_budget_and_is_never_listed_reserved(stores: Stores) {
    let store = stores.store;
    let t = tenant();
    store
        .put_campaign(&t, &record("HOLD", Some(10)), Vec::new())
        .await
        .unwrap();
    let mut held = grant(&t, "HOLD", "k1", "m1", 0);
    held.variant = "holdout".into();
    held.state = GrantState::HeldOut;
    assert_eq!(
        store
            .grant(&held, Some(1), vec![event(&t, "campaign_held_out")])
            .await
            .unwrap(),
        Granted::Yes
    );
    assert_eq!(
        store.grant(&held, Some(1), Vec::new()).await.unwrap(),
        Granted::Exists(Box::new(held.clone()))
    );
    let r = store.campaign(&t, "HOLD").await.unwrap().unwrap();
    assert_eq!((r.reserved, r.spent), (0, 0));
    // The member's place under the cap is not taken: a reward under another key fits.
    let paid = grant(&t, "HOLD", "k2", "m1", 10);
    assert_eq!(
        store.grant(&paid, Some(1), Vec::new()).await.unwrap(),
        Granted::Yes
    );
    let reserved = store.reserved_grants(i64::MAX, 10_000).await.unwrap();
    let mine: Vec<&str> = reserved
        .iter()
        .filter(|g| g.tenant == t.as_str())
        .map(|g| g.key.as_str())
        .collect();
    assert_eq!(mine, ["k2"]);
    assert_eq!(
        store
            .settle_grant(
                &t,
                "HOLD",
                "m1",
                "k1",
                GrantState::Confirmed,
                2_000,
                None,
                Vec::new()
            )
            .await
            .unwrap(),
        GrantSettled::NotFrom(Box::new(held)),
        "a held-out grant is never paid"
    );
}
