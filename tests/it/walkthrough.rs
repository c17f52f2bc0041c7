use loyalty_tests::{TestApp, spawn_app};
use serde_json::json;

#[tokio::test]
async fn earn_redeem_reverse_and_balance_over_rest() {
    let app = spawn_app().await;
    earn_redeem_reverse_and_balance(&app).await;
    app.stop().await;
}

/// The README's walk-through: earn, hold and capture, reverse, balance, history pages.
pub(crate) async fn earn_redeem_reverse_and_balance(app: &TestApp) {
    let m = app.wallet("walk-1").await;
    let earned = app
        .post(&format!("{m}/earnings"), json!({"order_id": "A1", "order_total": 25000, "lines": [
            {"sku": "tea", "category": "food", "amount": 5000}, {"sku": "serum", "category": "beauty", "amount": 20000}]}))
        .await;
    assert_eq!(earned.status, 200, "{earned:?}");
    assert_eq!(earned.body["balance"]["points_available"], 250);
    assert_eq!(earned.body["entries"][0]["rules_version"], 0);
    let earn_id = earned.body["entries"][0]["entry_id"]
        .as_str()
        .unwrap()
        .to_string();

    let held = app
        .post(
            &format!("{m}/redemptions"),
            json!({"points": 100, "reference": "till-7"}),
        )
        .await;
    assert_eq!(held.body["balance"]["points_held"], 100, "{held:?}");
    let hold = held.body["hold"]["hold_id"].as_str().unwrap();
    let captured = app
        .post(&format!("{m}/redemptions/{hold}/capture"), json!(null))
        .await;
    assert_eq!(captured.status, 200, "{captured:?}");
    assert_eq!(captured.body["balance"]["points_held"], 0);

    let reversed = app
        .post(
            &format!("{m}/reversals"),
            json!({"entry_id": earn_id, "points": 50, "reason": "one item returned"}),
        )
        .await;
    assert_eq!(reversed.status, 200, "{reversed:?}");
    let balance = app.get(&format!("{m}/balance")).await;
    assert_eq!(balance.body["points_available"], 100);

    let page = app.get(&format!("{m}/history?limit=2")).await;
    assert_eq!(page.body["entries"][0]["kind"], "reversed");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("{m}/history?limit=50&cursor={cursor}"))
        .await;
    let kinds: Vec<_> = rest.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("held"), json!("earned"), json!("opened")]);
}

#[tokio::test]
async fn a_redemption_taken_at_once_over_rest() {
    let app = spawn_app().await;
    let m = app.wallet("walk-2").await;
    let earned = app
        .post(
            &format!("{m}/earnings"),
            json!({"order_id": "A2", "order_total": 25000}),
        )
        .await;
    assert_eq!(
        earned.body["balance"]["points_available"], 250,
        "{earned:?}"
    );
    let taken = app
        .post(
            &format!("{m}/redemptions"),
            json!({"points": 100, "reference": "till-7", "capture": true}),
        )
        .await;
    assert_eq!(taken.status, 200, "{taken:?}");
    assert_eq!(taken.body["balance"]["points_available"], 150);
    assert_eq!(taken.body["balance"]["points_held"], 0);
    let kinds: Vec<_> = taken.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("held"), json!("captured")]);
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_post_returns_the_first_result_and_another_body_conflicts() {
    let app = spawn_app().await;
    replay_and_conflict(&app).await;
    app.stop().await;
}

/// The same idempotency key and body replays the first result; another body conflicts.
pub(crate) async fn replay_and_conflict(app: &TestApp) {
    let m = app.wallet("idem-1").await;
    let body = json!({"order_id": "B1", "order_total": 1000});
    let first = app
        .post_with_key(&format!("{m}/earnings"), "till-3-0001", body.clone())
        .await;
    let again = app
        .post_with_key(&format!("{m}/earnings"), "till-3-0001", body)
        .await;
    assert_eq!(first.body["entries"], again.body["entries"]);
    assert_eq!(
        (
            first.body["replayed"].clone(),
            again.body["replayed"].clone()
        ),
        (json!(false), json!(true))
    );
    let other = app
        .post_with_key(
            &format!("{m}/earnings"),
            "till-3-0001",
            json!({"order_id": "B2", "order_total": 1000}),
        )
        .await;
    assert_eq!((other.status, other.code()), (409, "IDEMPOTENCY_CONFLICT"));
    assert_eq!(
        app.get(&format!("{m}/balance")).await.body["points_available"],
        10
    );
}

#[tokio::test]
async fn rules_transfers_and_stored_value_over_rest() {
    let app = spawn_app().await;
    rules_transfers_and_stored_value(&app).await;
    app.stop().await;
}

/// Earning rules by version, a transfer between two wallets, stored value with a bonus.
pub(crate) async fn rules_transfers_and_stored_value(app: &TestApp) {
    let rules = json!({"points_per_unit": 2, "unit_minor": 100, "expiry": {"policy": "rolling_months", "months": 12},
        "hold_ttl_secs": 600, "expiring_soon_days": 30, "top_up_bonuses": [{"min_paid": 100000, "bonus": 10000}]});
    let stored = app.post("/v1/tenants/acme/earning-rules", rules).await;
    assert_eq!(
        (stored.status, stored.body["version"].clone()),
        (200, json!(1)),
        "{stored:?}"
    );
    assert_eq!(
        app.get("/v1/tenants/acme/earning-rules").await.body["points_per_unit"],
        2
    );

    let a = app.wallet("xfer-a").await;
    app.wallet("xfer-b").await;
    let earned = app
        .post(
            &format!("{a}/earnings"),
            json!({"order_id": "C1", "order_total": 5000}),
        )
        .await;
    assert_eq!(earned.body["entries"][0]["rules_version"], 1);
    let moved = app
        .post(
            "/v1/tenants/acme/transfers",
            json!({"from_member_id": "xfer-a", "to_member_id": "xfer-b", "points": 60}),
        )
        .await;
    assert_eq!(moved.body["state"], "completed", "{moved:?}");
    assert_eq!(
        app.get("/v1/tenants/acme/members/xfer-b/balance")
            .await
            .body["points_available"],
        60
    );

    let topped = app
        .post(
            &format!("{a}/stored-value/top-ups"),
            json!({"amount": 100000}),
        )
        .await;
    assert_eq!(topped.body["balance"]["bonus_value"], 10000, "{topped:?}");
    let spent = app
        .post(
            &format!("{a}/stored-value/spends"),
            json!({"amount": 30000}),
        )
        .await;
    let spend_id = spent.body["entries"][0]["entry_id"].as_str().unwrap();
    let refunded = app
        .post(
            &format!("{a}/stored-value/refunds"),
            json!({"spend_entry_id": spend_id}),
        )
        .await;
    assert_eq!(
        refunded.body["balance"]["stored_value"], 100000,
        "{refunded:?}"
    );
}

#[tokio::test]
async fn openapi_and_docs_are_public() {
    let app = spawn_app().await;
    let spec = app
        .send(app.client.get(format!("{}/v1/openapi.json", app.base)))
        .await;
    assert_eq!(spec.status, 200);
    let paths = spec.body["paths"].as_object().unwrap();
    for path in [
        "/v1/tenants/{tenant}/members/{member}/earnings",
        "/v1/tenants/{tenant}/transfers",
        "/v1/tenants/{tenant}/earning-rules",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let docs = app
        .client
        .get(format!("{}/v1/docs", app.base))
        .send()
        .await
        .unwrap();
    assert!(docs.text().await.unwrap().contains("/v1/openapi.json"));
    for ops in ["/healthz", "/readyz", "/metrics"] {
        let reply = app
            .client
            .get(format!("{}{ops}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{ops}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_writes_and_store_batches() {
    let app = spawn_app().await;
    app.wallet("metered").await;
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("ledger_writes_total{"), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "{text}"
    );
    // Batch sizes are counted in powers of two, not in the duration buckets.
    assert!(
        text.contains("ledger_store_batch_size_bucket{le=\"64\"}"),
        "{text}"
    );
    app.stop().await;
}
