//! The gateway in front of a member service in another process (`--target gateway` with
//! `member_endpoint`): every member, programme and segment route goes over `member.v1`, the
//! member service checks the caller the gateway forwards, and each reply is the one the
//! gateway in the member service's own process gives.

use loyalty_gateway::{AppState, GatewayConfig, limits, router};
use loyalty_ledger::client::GrpcLedgerClient;
use loyalty_member::client::GrpcMemberClient;
use loyalty_proto::transport::{DEFAULT_DEADLINE, connect};
use loyalty_tests::{Reply, TestApp, spawn_app};
use serde_json::{Value, json};
use std::sync::Arc;

/// A second gateway, in this test, that reaches `app`'s ledger and member service over the
/// network only; it shares `app`'s identity service, as replicas share the identity store.
async fn remote_gateway(app: &TestApp) -> String {
    let config = GatewayConfig::default();
    let limits = limits::rate_limits(&config.rate_limits).await.unwrap();
    let ledger = Arc::new(GrpcLedgerClient::new(
        connect(&app.grpc, DEFAULT_DEADLINE).unwrap(),
    ));
    let members = Arc::new(GrpcMemberClient::new(
        connect(&app.grpc, DEFAULT_DEADLINE).unwrap(),
    ));
    let state = AppState::new(ledger, app.identity_client(), members);
    let gateway = router(state, &config, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gateway).await });
    format!("http://{addr}")
}

/// `method path` at the gateway at `base`, as the administrator, with a fresh key.
async fn call(app: &TestApp, base: &str, method: &str, path: &str, body: Value) -> Reply {
    let method: reqwest::Method = method.parse().unwrap();
    let request = app
        .client
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(&app.token)
        .header("idempotency-key", app.key());
    let request = match method == reqwest::Method::GET {
        true => request,
        false => request.json(&body),
    };
    app.send(request).await
}

async fn ok(app: &TestApp, base: &str, method: &str, path: &str, body: Value) -> Value {
    let reply = call(app, base, method, path, body).await;
    assert_eq!(reply.status, 200, "{method} {path}: {:?}", reply.body);
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_routes_over_grpc_answer_as_in_process() {
    let app = spawn_app().await;
    app.acme_partner_key().await;
    let remote = remote_gateway(&app).await;
    let r = remote.as_str();
    let rules = json!({"points_per_unit": 1, "unit_minor": 100, "expiry": {"policy": "never"},
        "hold_ttl_secs": 600, "expiring_soon_days": 30});
    ok(&app, r, "POST", "/v1/tenants/acme/earning-rules", rules).await;
    let policy = json!({"measure": "spend_12m", "period_months": 12, "grace_days": 30,
        "tiers": [{"code": "silver", "name": "Silver", "threshold": 500000, "earn_multiplier_bp": 12000}]});
    ok(&app, r, "PUT", "/v1/tenants/acme/tier-policy", policy).await;

    for m in ["m1", "m2", "m3"] {
        let body = json!({"personal": {"name": "王小明", "phone": format!("1381234000{}", &m[1..])},
            "channel": "app", "tags": ["new"], "attributes": {"size": "m"}});
        let path = format!("/v1/tenants/acme/members/{m}/profile");
        let created = ok(&app, r, "POST", &path, body).await;
        assert_eq!(created["personal"]["name"], "王**");
    }
    let patch = json!({"personal": {"email": "a@example.cn", "name": null},
        "attributes": {"size": null, "colour": "red"}, "consents": {"sms": true}});
    ok(
        &app,
        r,
        "PATCH",
        "/v1/tenants/acme/members/m1/profile",
        patch,
    )
    .await;
    let order = json!({"order_id": "POS-1", "total": 600000, "store": "s01",
        "lines": [{"sku": "A", "category": "shoes", "amount": 600000}]});
    let first = ok(
        &app,
        r,
        "POST",
        "/v1/tenants/acme/members/m1/orders",
        order.clone(),
    )
    .await;
    assert_eq!(first["points"], 6000);
    let replay = ok(&app, r, "POST", "/v1/tenants/acme/members/m1/orders", order).await;
    assert_eq!(replay["replayed"], true);
    let second = json!({"order_id": "POS-2", "total": 10000});
    let second = ok(
        &app,
        r,
        "POST",
        "/v1/tenants/acme/members/m1/orders",
        second,
    )
    .await;
    assert_eq!(second["points"], 120, "silver earns 1.2x");
    let tags = json!({"add": ["vip"], "remove": ["new"]});
    ok(&app, r, "POST", "/v1/tenants/acme/members/m1/tags", tags).await;
    let bulk = json!({"members": ["m2", "m3", "nobody"], "add": ["promo"]});
    let bulk = ok(&app, r, "POST", "/v1/tenants/acme/member-tags", bulk).await;
    assert_eq!(bulk["changed"], 2);
    assert_eq!(bulk["skipped"], json!(["nobody"]));
    ok(&app, r, "PUT", "/v1/tenants/acme/scoring-policy", json!({})).await;
    let scored = ok(&app, r, "POST", "/v1/tenants/acme/scoring-runs", json!({})).await;
    assert_eq!(scored["members"], 3);
    ok(&app, r, "POST", "/v1/tenants/acme/tier-reviews", json!({})).await;
    ok(
        &app,
        r,
        "POST",
        "/v1/tenants/acme/members/m2/tier/reviews",
        json!({}),
    )
    .await;
    let segment = json!({"name": "VIP", "query": {"tag": "vip"}, "refresh_minutes": 60});
    ok(&app, r, "PUT", "/v1/tenants/acme/segments/vip", segment).await;
    let refreshed = ok(
        &app,
        r,
        "POST",
        "/v1/tenants/acme/segments/vip/refresh",
        json!({}),
    )
    .await;
    assert_eq!(refreshed["count"], 1);
    let by_segment = json!({"segment": "vip", "add": ["gold-club"]});
    ok(&app, r, "POST", "/v1/tenants/acme/member-tags", by_segment).await;
    let merge = json!({"duplicate": "m3"});
    let merged = ok(&app, r, "POST", "/v1/tenants/acme/members/m2/merges", merge).await;
    let merge_id = merged["merge_id"].as_str().unwrap().to_string();
    let reversal = format!("/v1/tenants/acme/merges/{merge_id}/reversal");
    let reversed = ok(&app, r, "POST", &reversal, json!({})).await;
    assert_eq!(reversed["state"], "reversed");
    let rotated = ok(
        &app,
        r,
        "POST",
        "/v1/tenants/acme/member-key-rotations",
        json!({}),
    )
    .await;
    assert_eq!(rotated["rewrapped"], 3);
    ok(
        &app,
        r,
        "POST",
        "/v1/tenants/acme/members/m3/erasure",
        json!({}),
    )
    .await;

    // Every read answers the same through either gateway.
    let reads = [
        "/v1/tenants/acme/members/m1/profile".to_string(),
        "/v1/tenants/acme/members/m1/profile/unmasked".into(),
        "/v1/tenants/acme/members/m2/profile".into(),
        "/v1/tenants/acme/members/m1/orders".into(),
        "/v1/tenants/acme/members/m1/orders?limit=1".into(),
        "/v1/tenants/acme/members/m1/orders?limit=5000".into(),
        "/v1/tenants/acme/members/m1/activity".into(),
        "/v1/tenants/acme/members/m2/activity".into(),
        "/v1/tenants/acme/members/m1/tier".into(),
        "/v1/tenants/acme/members/m3/erasure".into(),
        "/v1/tenants/acme/member-lookup?phone=%2B86%20138%201234%200002".into(),
        "/v1/tenants/acme/tier-policy".into(),
        "/v1/tenants/acme/scoring-policy".into(),
        "/v1/tenants/acme/tier-approvals?limit=900".into(),
        "/v1/tenants/acme/segments".into(),
        "/v1/tenants/acme/segments/vip".into(),
        "/v1/tenants/acme/segments/vip/members?limit=0".into(),
        format!("/v1/tenants/acme/merges/{merge_id}"),
    ];
    for path in &reads {
        let here = call(&app, &app.base, "GET", path, Value::Null).await;
        let there = call(&app, r, "GET", path, Value::Null).await;
        assert_eq!(here.status, 200, "GET {path}: {:?}", here.body);
        assert_eq!(
            (there.status, &there.body),
            (here.status, &here.body),
            "GET {path}"
        );
    }

    // Refusals carry the same code and words.
    let refusals = [
        (
            "PATCH",
            "/v1/tenants/acme/members/m1/profile",
            json!({"personal": {"nickname": "x"}}),
        ),
        ("PUT", "/v1/tenants/acme/tier-policy", json!({"tiers": []})),
        (
            "PUT",
            "/v1/tenants/acme/segments/bad",
            json!({"name": "x", "query": {"nope": 1}}),
        ),
        (
            "POST",
            "/v1/tenants/acme/member-tags",
            json!({"add": ["x"]}),
        ),
        (
            "POST",
            "/v1/tenants/acme/members/m1/tier/decisions",
            json!({"approve": true}),
        ),
        ("GET", "/v1/tenants/acme/members/ghost/profile", Value::Null),
        (
            "GET",
            "/v1/tenants/acme/member-lookup?phone=1&email=a@b.cn",
            Value::Null,
        ),
    ];
    for (method, path, body) in refusals {
        let here = call(&app, &app.base, method, path, body.clone()).await;
        let there = call(&app, r, method, path, body).await;
        assert!(here.status >= 400, "{method} {path}: {:?}", here.body);
        let words = |reply: &Reply| {
            (
                reply.status,
                reply.code().to_string(),
                reply.body["detail"].clone(),
            )
        };
        assert_eq!(words(&there), words(&here), "{method} {path}");
    }
    let deleted = ok(
        &app,
        r,
        "DELETE",
        "/v1/tenants/acme/segments/vip",
        Value::Null,
    )
    .await;
    assert_eq!(deleted, json!({"deleted": "vip"}));
    let gone = call(&app, r, "GET", "/v1/tenants/acme/segments/vip", Value::Null).await;
    assert_eq!((gone.status, gone.code()), (404, "SEGMENT_NOT_FOUND"));

    // The member service checked and recorded the forwarded caller's writes itself.
    let audit = call(
        &app,
        &app.base,
        "GET",
        "/v1/tenants/acme/audit?limit=500",
        Value::Null,
    )
    .await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|record| record["event"]["action"].as_str())
        .collect();
    for action in [
        "member.v1.MemberService/RecordOrder",
        "member.v1.MemberService/PutSegment",
        "member.v1.MemberService/RotateTenantKey",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    app.stop().await;
}
