//! Crash safety of points-mall orders: orders from many clients, half of them confirmed in
//! the same call, `kill -9` while some are between their unit reserved and their points held
//! or taken, a restart on the same data directory, and the sweep undoing what was cut short.
//! Then every order holds or took both its unit and its points, or neither: the units taken
//! are the orders placed or fulfilled, the points held in the ledger are the placed orders'
//! price, the points taken the fulfilled orders', and every order acknowledged is still as
//! acknowledged.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_proto::campaign::v1 as pb;
use loyalty_proto::ledger::v1 as ledger_pb;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Addrs, Campaign, http_post_with, http_put_with, start_with};

mod support;

const TENANT: &str = "mallcrash";
const ITEM: &str = "WASH";
const PRICE: i64 = 10;
/// The points each member has to spend.
const GIVEN: i64 = 10_000_000;
const MEMBERS: usize = 20;
const WRITERS: usize = 32;
/// Orders acknowledged before the kill: the load is well under way, far from its end.
const BURST: usize = 200;
/// Orders each writer may try; the process dies long before.
const TRIES: usize = 2_000;
/// A short grace, so the sweep undoes sagas cut short within the test, and a sweep every
/// second.
const ENV: &[(&str, &str)] = &[
    ("MEMBERD_CAMPAIGN__SAGA_GRACE_SECS", "2"),
    ("MEMBERD_CAMPAIGN__SWEEP_INTERVAL_SECS", "1"),
    ("MEMBERD_CAMPAIGN__PAYOUT_INTERVAL_MS", "100"),
];

fn order_id(w: usize, n: usize) -> String {
    format!("w{w}-n{n}")
}

fn member(m: usize) -> String {
    format!("m{m}")
}

/// The tenant, its members with points to spend, and an item with stock and a limit that no
/// load here reaches.
async fn set_up(addrs: &Addrs) {
    let token = addrs.token().await;
    let headers =
        |key: &str| format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let tenant = format!(r#"{{"id":"{TENANT}","name":"{TENANT}"}}"#);
    let (status, reply) = http_post_with(&addrs.http, "/v1/tenants", &headers("t"), &tenant).await;
    assert_eq!(status, 200, "{reply}");
    let mut ledger = addrs.ledger().await;
    for m in 0..MEMBERS {
        let profile = format!(r#"{{"personal":{{"phone":"139000{m:05}"}}}}"#);
        let path = format!("/v1/tenants/{TENANT}/members/{}/profile", member(m));
        let (status, reply) =
            http_post_with(&addrs.http, &path, &headers(&m.to_string()), &profile).await;
        assert_eq!(status, 200, "{reply}");
        let wallet = wallet(m);
        let open = ledger_pb::OpenWalletRequest {
            wallet: Some(wallet.clone()),
            idempotency_key: format!("open-{m}"),
        };
        ledger.open_wallet(open).await.unwrap();
        let give = ledger_pb::AdjustRequest {
            wallet: Some(wallet),
            idempotency_key: format!("give-{m}"),
            points: GIVEN,
            reason: "points to spend".into(),
        };
        ledger.adjust(give).await.unwrap();
    }
    let item = serde_json::json!({"id": ITEM, "kind": {"kind": "service", "sku": "WASH-1"},
        "name": {"zh": "洗车", "en": "Car wash"}, "category": "services",
        "price": {"points": PRICE}, "stock": {"*": 1_000_000},
        "limit": {"count": 100_000, "period": "month"}});
    let path = format!("/v1/tenants/{TENANT}/mall/items/{ITEM}");
    let (status, reply) = http_put_with(&addrs.http, &path, &headers("i"), &item.to_string()).await;
    assert_eq!(status, 200, "{reply}");
}

fn wallet(m: usize) -> ledger_pb::WalletRef {
    ledger_pb::WalletRef {
        tenant_id: TENANT.into(),
        member_id: member(m),
    }
}

fn order_ref(id: String) -> pb::MallOrderRef {
    pb::MallOrderRef {
        tenant_id: TENANT.into(),
        item_id: ITEM.into(),
        order_id: id,
    }
}

/// The state of order `id`, or None when it was never written.
async fn state_of(campaign: &mut Campaign, id: &str) -> Option<String> {
    match campaign.get_mall_order(order_ref(id.to_string())).await {
        Ok(doc) => {
            let order: serde_json::Value = serde_json::from_str(&doc.into_inner().json).unwrap();
            Some(order["state"].as_str().unwrap().to_string())
        }
        Err(e) => {
            assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_order_holds_its_unit_and_points_or_neither() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addrs) = start_with(dir.path(), ENV).await;
    set_up(&addrs).await;

    // Each order acknowledged, with the state it was acknowledged in.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let acked = acked.clone();
        let mut campaign = addrs.campaign().await;
        writers.push(tokio::spawn(async move {
            for n in 0..TRIES {
                let place = pb::PlaceMallOrderRequest {
                    tenant_id: TENANT.into(),
                    item_id: ITEM.into(),
                    order_id: order_id(w, n),
                    member_id: member((w + n) % MEMBERS),
                    // The service is fulfilled as soon as it is confirmed.
                    confirm: w % 2 == 1,
                    ..Default::default()
                };
                let Ok(doc) = campaign.place_mall_order(place).await else {
                    return n;
                };
                let order: serde_json::Value =
                    serde_json::from_str(&doc.into_inner().json).unwrap();
                let state = order["state"].as_str().unwrap_or_default();
                if matches!(state, "placed" | "fulfilled") {
                    acked
                        .lock()
                        .unwrap()
                        .push((order_id(w, n), state.to_string()));
                }
            }
            TRIES
        }));
    }
    let running = || acked.lock().unwrap().len() >= BURST;
    support::wait_until("the orders are running", Duration::from_secs(60), running).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    let mut tried = Vec::new();
    for writer in writers {
        let stopped_at = tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("writers stop")
            .unwrap();
        // The order in flight when memberd died may have been written, held, or neither.
        tried.push((stopped_at + 1).min(TRIES));
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() >= BURST,
        "the load was running when memberd died"
    );

    let (_child, addrs) = start_with(dir.path(), ENV).await;
    let mut campaign = addrs.campaign().await;
    let ids: Vec<String> = tried
        .iter()
        .enumerate()
        .flat_map(|(w, &tried)| (0..tried).map(move |n| order_id(w, n)))
        .collect();
    // The sweep undoes every saga cut short once it is past the grace.
    let mut cut_short = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let states = loop {
        let mut states = Vec::new();
        for id in &ids {
            states.push(state_of(&mut campaign, id).await);
        }
        let pending = states
            .iter()
            .filter(|s| s.as_deref() == Some("pending"))
            .count();
        cut_short = cut_short.max(pending);
        if pending == 0 {
            break states;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} orders still pending after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let count = |state: &str| {
        states
            .iter()
            .filter(|s| s.as_deref() == Some(state))
            .count()
    };
    let (placed, fulfilled, failed) = (count("placed"), count("fulfilled"), count("failed"));
    assert_eq!(
        placed + fulfilled + failed,
        states.iter().flatten().count(),
        "an order is placed, fulfilled, or failed and given back: {states:?}"
    );
    for (id, state) in &acked {
        assert_eq!(
            state_of(&mut campaign, id).await.as_deref(),
            Some(state.as_str()),
            "order {id}"
        );
    }

    // The unit: taken by the placed orders alone.
    let item = campaign
        .get_mall_item(pb::MallItemRef {
            tenant_id: TENANT.into(),
            item_id: ITEM.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let item: serde_json::Value = serde_json::from_str(&item.json).unwrap();
    assert_eq!(
        item["taken"]["*"],
        (placed + fulfilled) as u64,
        "units taken are the orders placed or fulfilled"
    );

    // The points: held for the placed orders alone and taken for the fulfilled ones, once
    // the failed ones' holds are voided and their captures reversed (by the outbox's reader,
    // within a payout round or a few).
    let mut ledger = addrs.ledger().await;
    let expected = (
        PRICE * placed as i64,
        GIVEN * MEMBERS as i64 - PRICE * fulfilled as i64,
    );
    let mut points = (0, 0);
    for _ in 0..100 {
        points = (0, 0);
        for m in 0..MEMBERS {
            let balance = ledger.get_balance(wallet(m)).await.unwrap().into_inner();
            points.0 += balance.points_held;
            points.1 += balance.points_available + balance.points_held;
        }
        if points == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        points, expected,
        "points held are the placed orders' price, points taken the fulfilled orders'"
    );
    eprintln!(
        "mall crash test: {} orders acknowledged before kill -9; {} written, {placed} placed, \
         {fulfilled} fulfilled, {failed} failed; {cut_short} cut short and undone by the sweep",
        acked.len(),
        states.iter().flatten().count()
    );
}
