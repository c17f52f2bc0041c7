//! Coupons end to end through memberd: head office saves a template and issues coupons over
//! REST, a till (a partner key) evaluates a cart and redeems, holds, confirms and undoes,
//! the same over `campaign.v1`, and each caller may do only what its roles grant.

use loyalty_proto::campaign::v1 as pb;
use loyalty_proto::campaign::v1::campaign_service_client::CampaignServiceClient;
use loyalty_tests::spawn_app;
use serde_json::{Value, json};

fn template() -> Value {
    json!({"id": "TEN", "name": "10% off food, at most 5.00",
        "benefit": {"type": "percent_off", "basis_points": 1000, "cap": 500},
        "eligible": {"categories": ["food"]},
        "validity": {"days_from_issue": {"days": 30}},
        "per_member_limit": 2,
        "stacking": {"mode": "exclusive"}})
}

fn cart(member: &str) -> Value {
    json!({"member_id": member, "store_id": "s01", "lines": [
        {"line_id": "1", "sku": "RICE", "category": "food", "quantity": 2, "unit_price": 1500},
        {"line_id": "2", "sku": "SOAP", "category": "home", "quantity": 1, "unit_price": 800}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_issues_and_the_till_evaluates_redeems_holds_and_undoes() {
    let app = spawn_app().await;
    let till = app.acme_partner_key().await;

    let mut bad = template();
    bad["benefit"]["basis_points"] = json!(20_000);
    let refused = app
        .request("PUT", "/v1/tenants/acme/coupon-templates/TEN", bad)
        .await;
    assert_eq!((refused.status, refused.code()), (400, "INVALID_ARGUMENT"));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("benefit.basis_points"),
        "{:?}",
        refused.body
    );
    let saved = app
        .request("PUT", "/v1/tenants/acme/coupon-templates/TEN", template())
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(saved.body["version"], 1);
    let by_till = app
        .send(
            app.client
                .put(format!("{}/v1/tenants/acme/coupon-templates/TEN", app.base))
                .header("x-api-key", &till)
                .json(&template()),
        )
        .await;
    assert_eq!(by_till.status, 403, "a till does not write templates");

    let unknown = app
        .post_with_key(
            "/v1/tenants/acme/coupon-templates/TEN/coupons",
            "welcome-m1",
            json!({"member_id": "m1"}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "MEMBER_NOT_FOUND"));
    app.join("m1", "13812340001").await;
    let issued = app
        .post_with_key(
            "/v1/tenants/acme/coupon-templates/TEN/coupons",
            "welcome-m1",
            json!({"member_id": "m1"}),
        )
        .await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let again = app
        .post_with_key(
            "/v1/tenants/acme/coupon-templates/TEN/coupons",
            "welcome-m1",
            json!({"member_id": "m1"}),
        )
        .await;
    assert_eq!(
        again.body["code"], issued.body["code"],
        "the same key, the same coupon"
    );
    let code = issued.body["code"].as_str().unwrap().to_string();
    let mine = app.get("/v1/tenants/acme/members/m1/coupons").await;
    assert_eq!(mine.body[0]["code"], code.as_str());

    let batch = app
        .post(
            "/v1/tenants/acme/coupon-templates/TEN/batches",
            json!({"batch": "flyer-1", "count": 3, "prefix": "SPR"}),
        )
        .await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    let flyer = batch.body["codes"][0].as_str().unwrap().to_string();
    assert!(flyer.starts_with("SPR"));

    // The till: the member's own coupon and a presented flyer code, typed in lower case.
    let typed = flyer.to_lowercase();
    let evaluated = app
        .post_as(
            &till,
            "/v1/tenants/acme/carts/evaluations",
            "e1",
            json!({"cart": cart("m1"), "codes": [typed, "NOPE1234"]}),
        )
        .await;
    assert_eq!(evaluated.status, 200, "{:?}", evaluated.body);
    assert_eq!(evaluated.body["subtotal"], 3_800);
    assert_eq!(evaluated.body["unknown_codes"], json!(["NOPE1234"]));
    let verdicts = evaluated.body["coupons"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    let applied: Vec<&Value> = verdicts.iter().filter(|v| v["applies"] == true).collect();
    assert_eq!(applied.len(), 1, "exclusive: one applies");
    assert_eq!(applied[0]["discount"], 300, "10% of the food line only");
    assert_eq!(
        applied[0]["lines"],
        json!([{"line_id": "1", "amount": 300}])
    );
    let other = verdicts.iter().find(|v| v["applies"] == false).unwrap();
    assert_eq!(other["reason"], "not_stackable");

    // Held at checkout, confirmed, then undone on a return, once.
    let held = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions",
            "pos-77",
            json!({"cart": cart("m1"), "codes": [code], "order_id": "POS-77", "hold_secs": 300}),
        )
        .await;
    assert_eq!(held.status, 200, "{:?}", held.body);
    assert_eq!(
        (held.body["state"].as_str(), held.body["discount"].as_i64()),
        (Some("held"), Some(300))
    );
    let taken = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions",
            "pos-78",
            json!({"cart": cart("m1"), "codes": [code], "order_id": "POS-78"}),
        )
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (409, "COUPON_LIMIT_REACHED"),
        "{:?}",
        taken.body
    );
    let confirmed = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions/pos-77/confirm",
            "c1",
            json!({}),
        )
        .await;
    assert_eq!(confirmed.body["state"], "redeemed", "{:?}", confirmed.body);
    let undone = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions/pos-77/undo",
            "u1",
            json!({}),
        )
        .await;
    assert_eq!(
        (
            undone.body["state"].as_str(),
            undone.body["replayed"].as_bool()
        ),
        (Some("undone"), Some(false))
    );
    let twice = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions/pos-77/undo",
            "u2",
            json!({}),
        )
        .await;
    assert_eq!(twice.body["replayed"], true);
    let wrong_member = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions",
            "pos-79",
            json!({"cart": cart("m2"), "codes": [code], "order_id": "POS-79"}),
        )
        .await;
    assert_eq!(
        (wrong_member.status, wrong_member.code()),
        (422, "COUPON_NOT_APPLICABLE")
    );
    let garbage = app.post_as( &till, "/v1/tenants/acme/carts/evaluations", "e2", json!({"cart": {"member_id": "m1", "store_id": "s01", "lines": [{"line_id": "1", "sku": "X", "quantity": 0, "unit_price": -5}]}})).await;
    assert_eq!((garbage.status, garbage.code()), (400, "INVALID_ARGUMENT"));

    let spec = app.get("/v1/openapi.json").await;
    for path in [
        "/v1/tenants/{tenant}/coupon-redemptions",
        "/v1/tenants/{tenant}/carts/evaluations",
    ] {
        assert!(spec.body["paths"][path].is_object(), "{path} is documented");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_port_checks_its_callers_and_redeems_as_rest_does() {
    let app = spawn_app().await;
    let till = app.acme_partner_key().await;
    let saved = app
        .request("PUT", "/v1/tenants/acme/coupon-templates/TEN", template())
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let batch = app
        .post(
            "/v1/tenants/acme/coupon-templates/TEN/batches",
            json!({"batch": "b", "count": 1}),
        )
        .await;
    let code = batch.body["codes"][0].as_str().unwrap().to_string();
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CampaignServiceClient::new(channel);
    let request = |key: Option<&str>| {
        let mut r = tonic::Request::new(pb::RedeemRequest {
            tenant_id: "acme".into(),
            cart: Some(pb::Cart {
                member_id: "m9".into(),
                store_id: "s01".into(),
                lines: vec![pb::Line {
                    line_id: "1".into(),
                    sku: "RICE".into(),
                    category: "food".into(),
                    quantity: 1,
                    unit_price: 2_000,
                }],
                ..Default::default()
            }),
            codes: vec![code.clone()],
            redemption_id: "grpc-1".into(),
            order_id: "POS-1".into(),
            hold_secs: 0,
        });
        if let Some(key) = key {
            r.metadata_mut().insert("x-api-key", key.parse().unwrap());
        }
        r
    };
    let anonymous = client.redeem(request(None)).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let redeemed = client
        .redeem(request(Some(&till)))
        .await
        .unwrap()
        .into_inner();
    let r = redeemed.redemption.unwrap();
    assert_eq!((r.state.as_str(), r.discount), ("redeemed", 200));
    let replay = client
        .redeem(request(Some(&till)))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.replayed);
    let audit = app.get("/v1/tenants/acme/audit?limit=500").await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"]["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"campaign.v1.CampaignService/Redeem"),
        "{actions:?}"
    );
    app.stop().await;
}

/// Polls the member's balance until it shows `points` (the payout runs every 50 ms here).
async fn wait_for_points(app: &loyalty_tests::TestApp, member: &str, points: i64) {
    let path = format!("/v1/tenants/acme/members/{member}/balance");
    for _ in 0..100 {
        let balance = app.get(&path).await.body;
        if balance["points_available"] == points {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let balance = app.get(&path).await.body;
    panic!("{member} never had {points} points: {balance:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_points_coupon_pays_its_bonus_into_the_wallet_and_a_return_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = loyalty_tests::spawn_app_with(dir, |c| c.campaign.payout_interval_ms = 50).await;
    let till = app.acme_partner_key().await;
    app.join("m1", "13812340001").await;
    let double = json!({"id": "DOUBLE", "name": "Double points on food",
        "benefit": {"type": "points_multiplier", "multiplier_percent": 200},
        "eligible": {"categories": ["food"]},
        "validity": {"days_from_issue": {"days": 30}},
        "stacking": {"mode": "exclusive"}});
    let saved = app
        .request("PUT", "/v1/tenants/acme/coupon-templates/DOUBLE", double)
        .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let issued = app
        .post_with_key(
            "/v1/tenants/acme/coupon-templates/DOUBLE/coupons",
            "double-m1",
            json!({"member_id": "m1"}),
        )
        .await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let code = issued.body["code"].as_str().unwrap().to_string();
    let redeemed = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions",
            "pos-1",
            json!({"cart": cart("m1"), "codes": [code], "order_id": "POS-1"}),
        )
        .await;
    assert_eq!(redeemed.status, 200, "{:?}", redeemed.body);
    // 30.00 of food at 1 point per 1.00, doubled: 30 bonus points; the soap earns none.
    assert_eq!(redeemed.body["coupons"][0]["bonus_points"], 30);
    wait_for_points(&app, "m1", 30).await;
    let undone = app
        .post_as(
            &till,
            "/v1/tenants/acme/coupon-redemptions/pos-1/undo",
            "u1",
            json!({}),
        )
        .await;
    assert_eq!(undone.body["state"], "undone", "{:?}", undone.body);
    wait_for_points(&app, "m1", 0).await;
    let history = app.get("/v1/tenants/acme/members/m1/history").await.body;
    let adjusted: Vec<i64> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "adjusted")
        .map(|e| e["deltas"]["points_available"].as_i64().unwrap())
        .collect();
    assert_eq!(adjusted.len(), 2, "paid once, taken back once: {history:?}");
    assert_eq!(adjusted.iter().sum::<i64>(), 0);
}
