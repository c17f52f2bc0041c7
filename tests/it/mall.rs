//! The points mall through the gateway: head office saves a gift with stock at a store, a
//! till (a partner key) orders it for a member, whose points are held, then taken on
//! confirmation; the store makes it ready and hands it over against the one-time code;
//! the order's events say where to deliver without copying the address; errors carry
//! their codes. A member's tier, read from the member service, sets the price and who may
//! order.

use loyalty_tests::spawn_app;
use serde_json::{Value, json};

fn gift() -> Value {
    json!({"id": "TEA", "kind": {"kind": "gift", "sku": "TEA-1"},
        "name": {"zh": "茶具", "en": "Tea set"}, "category": "home",
        "price": {"points": 300}, "stock": {"s01": 1, "*": 5},
        "limit": {"count": 1, "period": "month"}, "fulfilment": ["pickup", "delivery"],
        "time_zone": "Asia/Shanghai"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_orders_a_gift_for_points_and_picks_it_up_with_the_code() {
    let app = spawn_app().await;
    let till = app.acme_partner_key().await;
    app.join("m1", "13812340001").await;
    let m1 = app.wallet("m1").await;
    let given = app
        .post(
            &format!("{m1}/adjustments"),
            json!({"points": 1_000, "reason": "welcome"}),
        )
        .await;
    assert_eq!(given.status, 200, "{given:?}");

    let mut bad = gift();
    bad["price"]["points"] = json!(0);
    let refused = app
        .request("PUT", "/v1/tenants/acme/mall/items/TEA", bad)
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "INVALID_ARGUMENT");
    let saved = app
        .request("PUT", "/v1/tenants/acme/mall/items/TEA", gift())
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(saved.body["version"], 1);
    assert_eq!(saved.body["left"]["s01"], 1);

    let orders = "/v1/tenants/acme/mall/items/TEA/orders";
    let body = json!({"member_id": "m1", "store_id": "s01", "fulfilment": "pickup"});
    let placed = app.post_as(&till, orders, "order-1", body.clone()).await;
    assert_eq!(placed.status, 200, "{:?}", placed.body);
    assert_eq!(placed.body["state"], "placed");
    assert_eq!(placed.body["stock"], "s01");
    assert!(placed.body.get("pickup_code_sha256").is_none());
    let again = app.post_as(&till, orders, "order-1", body).await;
    assert_eq!(
        again.body, placed.body,
        "the same key answers with the order"
    );
    let balance = app.get(&format!("{m1}/balance")).await;
    assert_eq!(
        (
            balance.body["points_available"].as_i64(),
            balance.body["points_held"].as_i64()
        ),
        (Some(700), Some(300))
    );
    let limit = app
        .post_as(
            &till,
            orders,
            "order-2",
            json!({"member_id": "m1", "fulfilment": "delivery"}),
        )
        .await;
    assert_eq!(limit.status, 409, "{:?}", limit.body);
    assert_eq!(limit.body["code"], "MALL_LIMIT_REACHED");

    let order = format!("{orders}/order-1");
    let step = |name: &str| format!("{order}/{name}");
    let confirmed = app.post_as(&till, &step("confirm"), "c1", json!({})).await;
    assert_eq!(confirmed.body["state"], "confirmed", "{:?}", confirmed.body);
    let ready = app.post_as(&till, &step("ready"), "r1", json!({})).await;
    assert_eq!(ready.body["state"], "ready", "{:?}", ready.body);
    let code = ready.body["pickup_code"].as_str().unwrap().to_string();
    let wrong = app
        .post_as(&till, &step("fulfil"), "f0", json!({"pickup_code": "12"}))
        .await;
    assert_eq!(wrong.status, 422, "{:?}", wrong.body);
    assert_eq!(wrong.body["code"], "PICKUP_CODE_MISMATCH");
    let fulfilled = app
        .post_as(&till, &step("fulfil"), "f1", json!({"pickup_code": code}))
        .await;
    assert_eq!(fulfilled.body["state"], "fulfilled", "{:?}", fulfilled.body);
    let unknown = app.post_as(&till, &step("teleport"), "t1", json!({})).await;
    assert_eq!(unknown.status, 400);

    let item = app.get("/v1/tenants/acme/mall/items/TEA").await;
    assert_eq!(item.body["left"]["s01"], 0, "{:?}", item.body);
    let listed = app.get("/v1/tenants/acme/mall/items").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let balance = app.get(&format!("{m1}/balance")).await;
    assert_eq!(balance.body["points_available"], 700);
    assert_eq!(balance.body["points_held"], 0);
    app.stop().await;
}

/// The member's tier is the member service's, read at the order: silver pays the silver
/// price of an item for silver and up, and a member without a tier is refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_pays_its_price_and_an_item_for_silver_and_up_refuses_the_rest() {
    let app = spawn_app().await;
    let till = app.acme_partner_key().await;
    let rules = json!({"points_per_unit": 1, "unit_minor": 100, "expiry": {"policy": "never"},
        "hold_ttl_secs": 600, "expiring_soon_days": 30});
    let stored = app.post("/v1/tenants/acme/earning-rules", rules).await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    let policy = json!({"measure": "spend_12m", "period_months": 12, "grace_days": 30,
        "tiers": [{"code": "silver", "name": "Silver", "threshold": 500000, "earn_multiplier_bp": 10000},
                  {"code": "gold", "name": "Gold", "threshold": 1000000, "earn_multiplier_bp": 10000}]});
    let put = app
        .request("PUT", "/v1/tenants/acme/tier-policy", policy)
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    app.join("m1", "13812340001").await;
    app.join("m2", "13812340002").await;
    // 6,000.00 spent lifts m1 to silver (and earns 6,000 points); m2 has spent nothing.
    let order = json!({"order_id": "POS-1", "total": 600000, "store": "s01"});
    let earned = app
        .post_as(&till, "/v1/tenants/acme/members/m1/orders", "pos-1", order)
        .await;
    assert_eq!(earned.status, 200, "{:?}", earned.body);
    let m2 = app.wallet("m2").await;
    let given = app
        .post(
            &format!("{m2}/adjustments"),
            json!({"points": 6_000, "reason": "welcome"}),
        )
        .await;
    assert_eq!(given.status, 200, "{given:?}");

    let mut vip = gift();
    vip["id"] = json!("VIP");
    vip["tiers"] = json!(["silver", "gold"]);
    vip["tier_prices"] = json!({"silver": {"points": 200}});
    let saved = app
        .request("PUT", "/v1/tenants/acme/mall/items/VIP", vip)
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let orders = "/v1/tenants/acme/mall/items/VIP/orders";
    let delivery = |m: &str| json!({"member_id": m, "fulfilment": "delivery"});
    let refused = app.post_as(&till, orders, "vip-m2", delivery("m2")).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "MALL_NOT_ELIGIBLE");
    let placed = app.post_as(&till, orders, "vip-m1", delivery("m1")).await;
    assert_eq!(placed.status, 200, "{:?}", placed.body);
    assert_eq!(placed.body["price"]["points"], 200, "the silver price");
    let m1 = app.wallet("m1").await;
    let balance = app.get(&format!("{m1}/balance")).await;
    assert_eq!(balance.body["points_held"], 200, "{:?}", balance.body);
    let item = app.get("/v1/tenants/acme/mall/items/VIP").await;
    assert_eq!(
        item.body["taken"]["*"], 1,
        "only the eligible order took a unit"
    );
}
