//! The member programme over REST: orders earning at the tier multiplier and lifting the
//! member's tier at once, activity, segments with bulk tags, profile updates, scoring and
//! erasure status, and who may do which.

use loyalty_tests::spawn_app;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_tiers_segments_and_bulk_tags_over_rest() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let rules = json!({"points_per_unit": 1, "unit_minor": 100, "expiry": {"policy": "never"},
        "hold_ttl_secs": 600, "expiring_soon_days": 30});
    let stored = app.post("/v1/tenants/acme/earning-rules", rules).await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    let policy = json!({"measure": "spend_12m", "period_months": 12, "grace_days": 30,
        "tiers": [{"code": "silver", "name": "Silver", "threshold": 500000, "earn_multiplier_bp": 12000},
                  {"code": "gold", "name": "Gold", "threshold": 1000000, "earn_multiplier_bp": 15000}]});
    let put = app
        .request("PUT", "/v1/tenants/acme/tier-policy", policy)
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let bad = app
        .request("PUT", "/v1/tenants/acme/tier-policy", json!({"tiers": []}))
        .await;
    assert_eq!((bad.status, bad.code()), (400, "INVALID_ARGUMENT"));

    for m in ["m1", "m2", "m3"] {
        let body = json!({"personal": {"phone": format!("1381234000{}", &m[1..])}});
        let created = app
            .post(&format!("/v1/tenants/acme/members/{m}/profile"), body)
            .await;
        assert_eq!(created.status, 200, "{:?}", created.body);
    }
    // A till records an order with its partner key: 6,000.00 earns 6,000 points at 1x and
    // lifts the member to silver at once; the next order earns at 1.2x.
    let till = |path: String, body: serde_json::Value| {
        app.client
            .post(format!("{}{path}", app.base))
            .header("x-api-key", &partner)
            .json(&body)
    };
    let order = json!({"order_id": "POS-1", "total": 600000, "store": "s01"});
    let first = app
        .send(till(
            "/v1/tenants/acme/members/m1/orders".into(),
            order.clone(),
        ))
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["points"], 6000);
    let replay = app
        .send(till("/v1/tenants/acme/members/m1/orders".into(), order))
        .await;
    assert_eq!(replay.body["replayed"], true);
    assert_eq!(replay.body["points"], 6000);
    let second = app
        .send(till(
            "/v1/tenants/acme/members/m1/orders".into(),
            json!({"order_id": "POS-2", "total": 10000}),
        ))
        .await;
    assert_eq!(second.body["points"], 120, "silver earns 1.2x");
    let balance = app.get("/v1/tenants/acme/members/m1/balance").await;
    assert_eq!(balance.body["points_available"], 6120);
    let conflict = app
        .send(till(
            "/v1/tenants/acme/members/m1/orders".into(),
            json!({"order_id": "POS-2", "total": 1}),
        ))
        .await;
    assert_eq!((conflict.status, conflict.code()), (409, "ORDER_CONFLICT"));

    let tier = app.get("/v1/tenants/acme/members/m1/tier").await;
    assert_eq!(tier.body["tier"], "silver");
    assert_eq!(tier.body["earn_multiplier_bp"], 12000);
    let activity = app.get("/v1/tenants/acme/members/m1/activity").await;
    assert_eq!(activity.body["spend_12m"], 610000);
    assert_eq!(activity.body["orders_12m"], 2);
    let history = app.get("/v1/tenants/acme/members/m1/orders?limit=1").await;
    assert_eq!(history.body["orders"][0]["order_id"], "POS-2");
    assert!(history.body["next"].is_string());

    let segment = json!({"name": "Silver and up", "query": {"tier": ["silver", "gold"]}});
    let put = app
        .request("PUT", "/v1/tenants/acme/segments/silver-up", segment)
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let refreshed = app
        .post("/v1/tenants/acme/segments/silver-up/refresh", json!({}))
        .await;
    assert_eq!(refreshed.body["count"], 1, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["scanned"], 3);
    let page = app.get("/v1/tenants/acme/segments/silver-up/members").await;
    assert_eq!(page.body["members"], json!(["m1"]));
    let tagged = app
        .post(
            "/v1/tenants/acme/member-tags",
            json!({"segment": "silver-up", "add": ["vip"]}),
        )
        .await;
    assert_eq!(tagged.body["changed"], 1, "{:?}", tagged.body);
    let listed = app
        .post(
            "/v1/tenants/acme/member-tags",
            json!({"members": ["m2", "m3", "nobody"], "add": ["newsletter"]}),
        )
        .await;
    assert_eq!(listed.body["changed"], 2);
    assert_eq!(listed.body["skipped"], json!(["nobody"]));
    let profile = app.get("/v1/tenants/acme/members/m1/profile").await;
    assert_eq!(profile.body["tags"], json!(["vip"]));
    assert_eq!(profile.body["tier"], "silver");

    let patched = app
        .request(
            "PATCH",
            "/v1/tenants/acme/members/m2/profile",
            json!({"personal": {"email": "m2@example.cn", "phone": null}, "attributes": {"city": "上海"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["personal"]["email"], "m***@example.cn");
    assert!(patched.body["personal"]["phone"].is_null());
    let freed = app
        .get("/v1/tenants/acme/member-lookup?phone=13812340002")
        .await;
    assert_eq!(
        freed.status, 404,
        "a cleared phone no longer finds the member"
    );
    let taken = app
        .request(
            "PATCH",
            "/v1/tenants/acme/members/m3/profile",
            json!({"personal": {"email": "M2@example.cn"}}),
        )
        .await;
    assert_eq!((taken.status, taken.code()), (409, "DUPLICATE_MEMBER"));

    let run = app.post("/v1/tenants/acme/scoring-runs", json!({})).await;
    assert_eq!(run.body["members"], 3, "{:?}", run.body);
    let scored = app.get("/v1/tenants/acme/members/m1/activity").await;
    assert_eq!(
        scored.body["lifecycle"], "active",
        "two orders: no longer new"
    );
    assert!(scored.body["rfm"]["recency"].is_number());

    let merged = app
        .post(
            "/v1/tenants/acme/members/m1/merges",
            json!({"duplicate": "m2"}),
        )
        .await;
    assert_eq!(merged.status, 200, "{:?}", merged.body);
    assert_eq!(merged.body["tags_added"], json!(["newsletter"]));
    let gone = app.get("/v1/tenants/acme/members/m2/profile").await;
    assert_eq!((gone.status, gone.code()), (409, "MEMBER_MERGED"));
    let id = merged.body["merge_id"].as_str().unwrap().to_string();
    let reversed = app
        .post(&format!("/v1/tenants/acme/merges/{id}/reversal"), json!({}))
        .await;
    assert_eq!(reversed.body["state"], "reversed", "{:?}", reversed.body);
    let back = app.get("/v1/tenants/acme/members/m2/profile").await;
    assert_eq!(back.status, 200);
    let audit = app.get("/v1/tenants/acme/audit?limit=500").await;
    let merges = audit.body.as_array().unwrap().iter().filter(|r| {
        r["event"]["action"]
            .as_str()
            .unwrap_or("")
            .contains("merge")
    });
    assert_eq!(merges.count(), 2, "the merge and its reversal are audited");

    let rotated = app
        .post("/v1/tenants/acme/member-key-rotations", json!({}))
        .await;
    assert_eq!(rotated.body["rewrapped"], 3, "{:?}", rotated.body);
    let clear = app
        .get("/v1/tenants/acme/members/m1/profile/unmasked")
        .await;
    assert_eq!(
        clear.body["personal"]["phone"], "13812340001",
        "readable after rotation"
    );

    let status = app.get("/v1/tenants/acme/members/m3/erasure").await;
    assert_eq!(status.body["state"], "none");
    app.post("/v1/tenants/acme/members/m3/erasure", json!({}))
        .await;
    let status = app.get("/v1/tenants/acme/members/m3/erasure").await;
    assert_eq!(status.body["state"], "completed");
    assert!(status.body["due_by"].as_i64() > status.body["requested_at"].as_i64());

    // A partner records orders but may not change the programme.
    let refused = app
        .send(
            app.client
                .put(format!("{}/v1/tenants/acme/segments/x", app.base))
                .header("x-api-key", &partner)
                .json(&json!({"name": "x", "query": {"tag": "vip"}})),
        )
        .await;
    assert_eq!(refused.status, 403);
    app.stop().await;
}
