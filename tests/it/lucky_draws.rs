//! Lucky draws through the gateway: head office creates a draw, a member's app (a partner
//! key) enters a member, whose points pay the cost and whose prize is paid into the wallet;
//! the draw shows what it awarded and keeps its seed until it has ended; errors carry their
//! codes.

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_enters_a_draw_for_points_and_is_paid_the_prize() {
    let dir = tempfile::tempdir().unwrap();
    let app = loyalty_tests::spawn_app_with(dir, |c| c.campaign.payout_interval_ms = 50).await;
    let app_key = app.acme_partner_key().await;
    app.join("m1", "13812340001").await;
    let m1 = app.wallet("m1").await;
    let given = app
        .post(
            &format!("{m1}/adjustments"),
            json!({"points": 100, "reason": "welcome"}),
        )
        .await;
    assert_eq!(given.status, 200, "{given:?}");
    let now = chrono::Utc::now().timestamp_millis();
    let draw = json!({"id": "SPRING", "name": "Spring draw", "cost_points": 30,
        "prizes": [{"id": "bonus", "kind": {"kind": "points", "points": 500},
            "odds_ppm": 1_000_000, "stock": 1}],
        "limit": {"count": 3, "period": "day"}, "starts_ms": now - 1_000,
        "time_zone": "Asia/Shanghai"});
    let mut bad = draw.clone();
    bad["prizes"][0]["odds_ppm"] = json!(2_000_000);
    let refused = app.post("/v1/tenants/acme/lucky-draws", bad).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    let created = app.post("/v1/tenants/acme/lucky-draws", draw).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["seed"], json!(null), "secret while it runs");
    assert_eq!(created.body["seed_sha256"].as_str().unwrap().len(), 64);

    let entries = "/v1/tenants/acme/lucky-draws/SPRING/entries";
    let body = json!({"member_id": "m1"});
    let entered = app
        .post_as(&app_key, entries, "entry-1", body.clone())
        .await;
    assert_eq!(entered.status, 200, "{:?}", entered.body);
    assert_eq!(entered.body["state"], "paid");
    assert_eq!(entered.body["outcome"]["prize"], "bonus");
    assert!(entered.body["roll"].as_u64().unwrap() < 1_000_000);
    let again = app
        .post_as(&app_key, entries, "entry-1", body.clone())
        .await;
    assert_eq!(
        again.body, entered.body,
        "the same key answers with the entry"
    );
    let second = app.post_as(&app_key, entries, "entry-2", body).await;
    assert_eq!(
        second.body["outcome"]["reason"], "out of stock",
        "{:?}",
        second.body
    );

    let balance = format!("{m1}/balance");
    for _ in 0..100 {
        if app.get(&balance).await.body["points_available"] == 100 - 60 + 500 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.get(&balance).await.body["points_available"], 540);
    let shown = app.get("/v1/tenants/acme/lucky-draws/SPRING").await;
    assert_eq!(shown.body["awarded"]["bonus"], 1, "{:?}", shown.body);
    let entry = app.get(&format!("{entries}/entry-2")).await;
    assert_eq!(entry.body["outcome"]["drawn"], "bonus");
    let poor = app
        .post_as(&app_key, entries, "entry-3", json!({"member_id": "m1"}))
        .await;
    assert_eq!(poor.status, 200, "{:?}", poor.body);
    let limit = app
        .post_as(&app_key, entries, "entry-4", json!({"member_id": "m1"}))
        .await;
    assert_eq!(limit.status, 409, "{:?}", limit.body);
    assert_eq!(limit.body["code"], "DRAW_LIMIT_REACHED");
    app.stop().await;
}
