//! memberd with `storage = "scylla"` end to end, on the CQL cluster `tests/run.sh` starts
//! (or the ScyllaDB cluster `SCYLLA_NODES` names): the README's walk-through, idempotent
//! replay and conflict, rules, transfers and stored value, the 200-redemption race, and a
//! member's profile. Each test has keyspaces of its own. Without a cluster each says it
//! was skipped and passes; the embedded twins of these tests are in `walkthrough.rs`.

use crate::{members, walkthrough};
use loyalty_tests::spawn_app_on_cql;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn the_readme_walkthrough_on_cql() {
    let Some(app) = spawn_app_on_cql("e2e_walk").await else {
        return;
    };
    walkthrough::earn_redeem_reverse_and_balance(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn replay_and_conflict_on_cql() {
    let Some(app) = spawn_app_on_cql("e2e_idem").await else {
        return;
    };
    walkthrough::replay_and_conflict(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn rules_transfers_and_stored_value_on_cql() {
    let Some(app) = spawn_app_on_cql("e2e_rules").await else {
        return;
    };
    walkthrough::rules_transfers_and_stored_value(&app).await;
    app.stop().await;
}

/// 200 redemptions of 7 points at once on a wallet of 1,000: exactly 142 holds, the rest
/// refused for want of points, and the wallet never below zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_redemptions_never_overdraw_on_cql() {
    let Some(app) = spawn_app_on_cql("e2e_race").await else {
        return;
    };
    let app = Arc::new(app);
    let m = app.wallet("hot").await;
    let funded = app
        .post(
            &format!("{m}/earnings"),
            json!({"order_id": "R0", "order_total": 100_000}),
        )
        .await;
    assert_eq!(
        funded.body["balance"]["points_available"], 1000,
        "{funded:?}"
    );

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let app = Arc::clone(&app);
            let path = format!("{m}/redemptions");
            tokio::spawn(async move {
                app.post_with_key(
                    &path,
                    &format!("race-{i}"),
                    json!({"points": 7, "reference": format!("r{i}")}),
                )
                .await
            })
        })
        .collect();
    let (mut held, mut refused) = (0, 0);
    for task in tasks {
        let reply = task.await.unwrap();
        match (reply.status, reply.code()) {
            (200, _) => held += 1,
            (422, "INSUFFICIENT_POINTS") => refused += 1,
            other => panic!("a redemption ended otherwise: {other:?} {:?}", reply.body),
        }
    }
    assert_eq!(held, 1000 / 7, "exactly as many holds as the points allow");
    assert_eq!(refused, 200 - 1000 / 7);
    let balance = app.get(&format!("{m}/balance")).await.body;
    assert_eq!(balance["points_available"], 1000 % 7);
    assert_eq!(balance["points_held"], 7 * (1000 / 7));

    // The entries sum to the balance.
    let (mut sum, mut cursor) = (0i64, String::new());
    loop {
        let page = app
            .get(&format!("{m}/history?limit=100&cursor={cursor}"))
            .await
            .body;
        for e in page["entries"].as_array().unwrap() {
            sum += e["deltas"]["points_available"].as_i64().unwrap();
        }
        match page["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_string(),
            _ => break,
        }
    }
    assert_eq!(sum, 1000 % 7);
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("every task is done"),
    }
}

/// A member's sealed profile: masked, unmasked (audited), found and de-duplicated by phone,
/// and erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_profile_on_cql() {
    let Some(app) = spawn_app_on_cql("e2e_member").await else {
        return;
    };
    members::masked_audited_deduplicated_and_erasable(&app).await;
    app.stop().await;
}
