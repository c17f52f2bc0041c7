//! Sagas cut short at each step, on the CQL cluster `SCYLLA_NODES` names: the recovery
//! undoes a pending one and finishes a settling one, moving every counter exactly once.

use super::*;
use crate::coupon::{Coupon, RedeemedCoupon};
use crate::store::{CampaignRepository, NewCoupon};
use loyalty_common::ids::TenantId;

/// When the second test's saga started: in a day of its own.
const LATER: i64 = 100 * 86_400_000;
/// When the resumed sagas started: after the others, out of their sweeps' reach.
const RESUMED_AT: i64 = 2 * LATER;

async fn store() -> Option<ScyllaCampaignStore> {
    let (cluster, keyspace) =
        loyalty_scylla::conformance::scylla("campaign", crate::schema::MIGRATIONS).await?;
    Some(
        ScyllaCampaignStore::prepare(cluster, &keyspace)
            .await
            .unwrap(),
    )
}

fn redemption(tenant: &str, id: &str, state: RedemptionState) -> Redemption {
    Redemption {
        id: id.into(),
        tenant: tenant.into(),
        member: "m1".into(),
        order_id: "o1".into(),
        store: "s1".into(),
        coupons: vec![RedeemedCoupon {
            code: "SAGA1".into(),
            template: "T1".into(),
            discount: 100,
            bonus_points: 0,
            stored_value: 0,
        }],
        state,
        created_ms: 1_000,
        hold_until_ms: None,
        updated_ms: 1_000,
        request_digest: "d".into(),
    }
}

fn limits() -> Vec<Limit> {
    vec![Limit {
        code: "SAGA1".into(),
        template: "T1".into(),
        uses_per_code: 1,
        per_member_limit: None,
        total_limit: None,
    }]
}

async fn counts(store: &ScyllaCampaignStore, t: &str) -> [u64; 3] {
    let mut all = [0; 3];
    for (n, key) in usage_keys("T1", "SAGA1", "m1").iter().enumerate() {
        all[n] = store.count(t, key).await.unwrap();
    }
    all
}

#[tokio::test]
#[cfg_attr(
    not(cql_cluster),
    ignore = "runs on a CQL cluster: set SCYLLA_NODES (tests/run.sh does) and rebuild"
)]
async fn a_redemption_cut_short_while_counting_is_undone_and_can_be_made_again() {
    let Some(store) = store().await else { return };
    let t = loyalty_scylla::conformance::unique("t");
    let tenant = TenantId::parse(t.as_str()).unwrap();
    let coupon = Coupon {
        code: "SAGA1".into(),
        template: "T1".into(),
        member: None,
        issued_ms: 0,
        valid_from_ms: 0,
        valid_until_ms: i64::MAX,
        batch: None,
    };
    let new = NewCoupon {
        coupon,
        issue_key: None,
        events: Vec::new(),
    };
    store
        .add_coupons(&tenant, vec![new], Vec::new())
        .await
        .unwrap();
    // The claim and two of the three counters, then the process died.
    let r = redemption(&t, "cut", RedemptionState::Redeemed);
    store.due_add(SAGAS, r.created_ms, &t, &r.id).await.unwrap();
    assert!(
        store
            .create(
                &t,
                &redemption_key("cut"),
                encode(&Saga::Pending(r.clone())).unwrap(),
                &[]
            )
            .await
            .unwrap()
    );
    let keys = usage_keys("T1", "SAGA1", "m1");
    for key in &keys[..2] {
        assert!(store.count_up(&t, key, "cut", Some(1)).await.unwrap());
    }
    assert_eq!(counts(&store, &t).await, [1, 1, 0]);
    assert_eq!(
        store.redemption(&tenant, "cut").await.unwrap(),
        None,
        "not a redemption yet"
    );
    assert_eq!(
        store.pending_redemption(&tenant, "cut").await.unwrap(),
        Some(r.clone()),
        "but being recorded: a retry's evaluation, finding the code used up, finishes it"
    );
    assert_eq!(
        store.redeem(&r, &limits(), Vec::new()).await.unwrap(),
        Redeemed::Pending(Box::new(r.clone())),
        "a new attempt at the id meanwhile is handed the pending one, to finish"
    );

    store.recover_sagas(2_000, &|_| true).await.unwrap();
    assert_eq!(
        counts(&store, &t).await,
        [0, 0, 0],
        "every count undone once"
    );
    assert!(
        store.recover_sagas(2_000, &|_| true).await.is_ok(),
        "recovering again is harmless"
    );
    assert_eq!(counts(&store, &t).await, [0, 0, 0]);
    assert_eq!(
        store.pending_redemption(&tenant, "cut").await.unwrap(),
        None
    );
    assert_eq!(
        store.redeem(&r, &limits(), Vec::new()).await.unwrap(),
        Redeemed::Yes
    );
    assert_eq!(counts(&store, &t).await, [1, 1, 1]);
    assert_eq!(
        store.pending_redemption(&tenant, "cut").await.unwrap(),
        None,
        "recorded: visible, no longer pending"
    );
}

#[tokio::test]
#[cfg_attr(
    not(cql_cluster),
    ignore = "runs on a CQL cluster: set SCYLLA_NODES (tests/run.sh does) and rebuild"
)]
async fn a_redemption_cut_short_while_counting_is_finished_by_its_retry_once() {
    let Some(store) = store().await else { return };
    let t = loyalty_scylla::conformance::unique("t");
    let tenant = TenantId::parse(t.as_str()).unwrap();
    // The claim and one of the three counters, then the attempt was cut off.
    let mut r = redemption(&t, "resumed", RedemptionState::Redeemed);
    r.created_ms = RESUMED_AT;
    store.due_add(SAGAS, r.created_ms, &t, &r.id).await.unwrap();
    let pending = encode(&Saga::Pending(r.clone())).unwrap();
    let key = redemption_key("resumed");
    assert!(store.create(&t, &key, pending, &[]).await.unwrap());
    let keys = usage_keys("T1", "SAGA1", "m1");
    assert!(
        store
            .count_up(&t, &keys[0], "resumed", Some(1))
            .await
            .unwrap()
    );

    let found = store.pending_redemption(&tenant, "resumed").await.unwrap();
    assert_eq!(found.as_ref(), Some(&r));
    let finished = store.resume_redemption(&r, &limits(), Vec::new()).await;
    assert_eq!(finished.unwrap(), Redeemed::Yes);
    assert_eq!(counts(&store, &t).await, [1, 1, 1], "each use counted once");
    assert_eq!(
        store.redemption(&tenant, "resumed").await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(
        store.pending_redemption(&tenant, "resumed").await.unwrap(),
        None
    );
    let again = store.resume_redemption(&r, &limits(), Vec::new()).await;
    assert_eq!(
        again.unwrap(),
        Redeemed::Exists(Box::new(r.clone())),
        "a second retry finds it done"
    );
    assert_eq!(counts(&store, &t).await, [1, 1, 1]);

    // Undone under its retry (the first attempt reached a limit, or the sweep): the retry
    // claims it again and counts every use again.
    let mut u = redemption(&t, "undone", RedemptionState::Redeemed);
    u.created_ms = RESUMED_AT;
    let u = Redemption {
        coupons: vec![RedeemedCoupon {
            code: "SAGA2".into(),
            ..u.coupons[0].clone()
        }],
        ..u
    };
    let more = vec![Limit {
        code: "SAGA2".into(),
        ..limits()[0].clone()
    }];
    let resumed = store.resume_redemption(&u, &more, Vec::new()).await;
    assert_eq!(resumed.unwrap(), Redeemed::Yes);
    assert_eq!(store.redemption(&tenant, "undone").await.unwrap(), Some(u));
}

#[tokio::test]
#[cfg_attr(
    not(cql_cluster),
    ignore = "runs on a CQL cluster: set SCYLLA_NODES (tests/run.sh does) and rebuild"
)]
async fn an_undo_cut_short_while_giving_back_is_finished_once() {
    let Some(store) = store().await else { return };
    let t = loyalty_scylla::conformance::unique("t");
    let tenant = TenantId::parse(t.as_str()).unwrap();
    let mut r = redemption(&t, "undo", RedemptionState::Redeemed);
    r.created_ms = LATER;
    assert_eq!(
        store.redeem(&r, &limits(), Vec::new()).await.unwrap(),
        Redeemed::Yes
    );
    assert_eq!(counts(&store, &t).await, [1, 1, 1]);
    // Decided (settling), one counter given back, then the process died.
    let (version, _) = store.saga(&t, "undo").await.unwrap().unwrap();
    let mut undone = r.clone();
    undone.state = RedemptionState::Undone;
    let settling = Saga::Settling {
        from: r.clone(),
        to: Box::new(undone.clone()),
        events: Vec::new(),
    };
    // A hundred days on from the other test's saga, so neither recovery reaches the other's.
    store.due_add(SAGAS, LATER, &t, "undo").await.unwrap();
    assert!(
        store
            .replace(
                &t,
                &redemption_key("undo"),
                version,
                encode(&settling).unwrap(),
                &[]
            )
            .await
            .unwrap()
    );
    let keys = usage_keys("T1", "SAGA1", "m1");
    store.count_down(&t, &keys[0], "undo", false).await.unwrap();
    assert_eq!(counts(&store, &t).await, [0, 1, 1]);
    assert_eq!(
        store
            .redemption(&tenant, "undo")
            .await
            .unwrap()
            .unwrap()
            .state,
        RedemptionState::Redeemed
    );

    store.recover_sagas(LATER + 1, &|_| true).await.unwrap();
    assert_eq!(
        counts(&store, &t).await,
        [0, 0, 0],
        "each counter given back once"
    );
    assert_eq!(
        store
            .redemption(&tenant, "undo")
            .await
            .unwrap()
            .unwrap()
            .state,
        RedemptionState::Undone
    );
}
