//! Campaigns end to end through memberd: head office writes one over REST, a second staff
//! member approves it (the maker may not), it runs in its time zone, a partner's automation
//! rewards a member once per key with the points paid into the wallet, and a segment's
//! campaign is dry-run and broadcast to the segment.

use chrono::{Datelike, NaiveDate};
use loyalty_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

const PASSWORD: &str = "campaign-passphrase-7";

fn campaign(id: &str, audience: Value) -> Value {
    json!({"id": id, "name": "Spring", "audience": audience,
        "variants": [{"id": "ten", "weight": 1, "reward": {"type": "points", "points": 10}}],
        "schedule": {"starts": "2020-01-01", "time_zone": "Asia/Shanghai"},
        "budget": {"unit": "points", "limit": 25}})
}

/// Adds a second tenant administrator, `checker`, to approve what the platform administrator
/// writes; its access token.
async fn checker(app: &TestApp) -> String {
    let body =
        json!({"username": "checker", "password": PASSWORD, "roles": [{"role": "tenant_admin"}]});
    assert_eq!(app.post("/v1/tenants/acme/staff", body).await.status, 200);
    app.login("acme", "checker", PASSWORD).await
}

/// Saves campaign `c` and submits it as the platform administrator, then has the holder of
/// `checker` approve it; the approval's reply.
async fn approved(app: &TestApp, checker: &str, c: Value) -> loyalty_tests::Reply {
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(app.post("/v1/tenants/acme/campaigns", c).await.status, 200);
    app.post(
        &format!("/v1/tenants/acme/campaigns/{id}/submit"),
        json!({}),
    )
    .await;
    let path = format!("/v1/tenants/acme/campaigns/{id}/approval");
    post_as(app, checker, &path, json!({})).await
}

/// POSTs as the holder of `token`.
async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> loyalty_tests::Reply {
    app.send(
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(token)
            .header("idempotency-key", app.key())
            .json(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_approved_by_another_and_rewards_members_within_its_budget() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let mut admins = Vec::new();
    for name in ["maker", "checker"] {
        let body =
            json!({"username": name, "password": PASSWORD, "roles": [{"role": "tenant_admin"}]});
        assert_eq!(app.post("/v1/tenants/acme/staff", body).await.status, 200);
        admins.push(app.login("acme", name, PASSWORD).await);
    }
    let (maker, checker) = (&admins[0], &admins[1]);
    for (m, phone) in [
        ("m1", "13812340001"),
        ("m2", "13812340002"),
        ("m3", "13812340003"),
    ] {
        app.join(m, phone).await;
    }

    let mut bad = campaign("SPRING", json!({"type": "everyone"}));
    bad["variants"][0]["reward"]["points"] = json!(0);
    let refused = post_as(&app, maker, "/v1/tenants/acme/campaigns", bad).await;
    assert_eq!((refused.status, refused.code()), (400, "INVALID_ARGUMENT"));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("variants[0].reward.points"),
        "{:?}",
        refused.body
    );
    let spring = campaign("SPRING", json!({"type": "everyone"}));
    let saved = post_as(&app, maker, "/v1/tenants/acme/campaigns", spring).await;
    assert_eq!(
        (saved.status, saved.body["phase"].as_str()),
        (200, Some("draft")),
        "{saved:?}"
    );
    let submitted = post_as(
        &app,
        maker,
        "/v1/tenants/acme/campaigns/SPRING/submit",
        json!({}),
    )
    .await;
    assert_eq!(submitted.body["phase"], "submitted", "{submitted:?}");
    let own = post_as(
        &app,
        maker,
        "/v1/tenants/acme/campaigns/SPRING/approval",
        json!({}),
    )
    .await;
    assert_eq!((own.status, own.code()), (403, "APPROVER_IS_MAKER"));
    let by_partner = app
        .send(
            app.client
                .post(format!(
                    "{}/v1/tenants/acme/campaigns/SPRING/approval",
                    app.base
                ))
                .header("x-api-key", &partner)
                .header("idempotency-key", app.key())
                .json(&json!({})),
        )
        .await;
    assert_eq!(by_partner.status, 403, "a partner does not approve");
    let approved = post_as(
        &app,
        checker,
        "/v1/tenants/acme/campaigns/SPRING/approval",
        json!({"note": "ok"}),
    )
    .await;
    assert_eq!(approved.body["phase"], "running", "{approved:?}");
    let history: Vec<&str> = approved.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["written", "submitted", "approved"]);

    // The partner's automation rewards members: once per key, within the budget of 25.
    let reward = |member: &'static str, key: &'static str| {
        let partner = partner.clone();
        let app = &app;
        async move {
            app.send(
                app.client
                    .post(format!(
                        "{}/v1/tenants/acme/campaigns/SPRING/rewards",
                        app.base
                    ))
                    .header("x-api-key", partner)
                    .header("idempotency-key", key)
                    .json(&json!({"member_id": member})),
            )
            .await
        }
    };
    let first = reward("m1", "spring-2027").await;
    assert_eq!(
        (first.status, first.body["state"].as_str()),
        (200, Some("confirmed")),
        "{first:?}"
    );
    let again = reward("m1", "spring-2027").await;
    assert_eq!(
        again.body, first.body,
        "the same key answers the same grant"
    );
    assert_eq!(reward("m2", "spring-2027").await.status, 200);
    let over = reward("m3", "spring-2027").await;
    assert_eq!((over.status, over.code()), (409, "BUDGET_EXHAUSTED"));
    let balance = app.get("/v1/tenants/acme/members/m1/balance").await;
    assert_eq!(balance.body["points_available"], 10, "{balance:?}");
    let view = app.get("/v1/tenants/acme/campaigns/SPRING").await;
    assert_eq!(
        (
            view.body["spent"].as_u64(),
            view.body["budget_left"].as_u64()
        ),
        (Some(20), Some(5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_campaign_is_dry_run_then_broadcast_once_per_member() {
    let app = spawn_app().await;
    app.acme_partner_key().await;
    let checker = checker(&app).await;
    for (m, phone) in [
        ("m1", "13812340001"),
        ("m2", "13812340002"),
        ("m3", "13812340003"),
    ] {
        app.join(m, phone).await;
    }
    for m in ["m1", "m2"] {
        let path = format!("/v1/tenants/acme/members/{m}/tags");
        assert_eq!(app.post(&path, json!({"add": ["vip"]})).await.status, 200);
    }
    let segment = json!({"name": "VIP", "query": {"tag": "vip"}});
    let put = app
        .request("PUT", "/v1/tenants/acme/segments/vip", segment)
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let refreshed = app
        .post("/v1/tenants/acme/segments/vip/refresh", json!({}))
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let mut c = campaign("VIP", json!({"type": "segment", "segment": "vip"}));
    c["budget"]["limit"] = json!(15);
    assert_eq!(app.post("/v1/tenants/acme/campaigns", c).await.status, 200);
    let dry = app.get("/v1/tenants/acme/campaigns/VIP/dry-run").await;
    assert_eq!(
        (
            dry.body["audience"].as_u64(),
            dry.body["units"].as_u64(),
            dry.body["within_budget"].as_u64()
        ),
        (Some(2), Some(20), Some(1)),
        "{dry:?}"
    );
    let early = app
        .post("/v1/tenants/acme/campaigns/VIP/broadcasts", json!({}))
        .await;
    assert_eq!((early.status, early.code()), (409, "CAMPAIGN_NOT_RUNNING"));
    // The platform administrator wrote and submits it; the tenant's admin approves it.
    app.post("/v1/tenants/acme/campaigns/VIP/submit", json!({}))
        .await;
    let approved = post_as(
        &app,
        &checker,
        "/v1/tenants/acme/campaigns/VIP/approval",
        json!({}),
    )
    .await;
    assert_eq!(approved.body["phase"], "running", "{approved:?}");
    let sent = app
        .post("/v1/tenants/acme/campaigns/VIP/broadcasts", json!({}))
        .await;
    assert_eq!(
        (
            sent.body["members"].as_u64(),
            sent.body["rewarded"].as_u64(),
            sent.body["over_budget"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{sent:?}"
    );
    let again = app
        .post("/v1/tenants/acme/campaigns/VIP/broadcasts", json!({}))
        .await;
    assert_eq!(
        again.body["rewarded"], 1,
        "the member rewarded before, once"
    );
    let mut paid = 0;
    for m in ["m1", "m2", "m3"] {
        let b = app
            .get(&format!("/v1/tenants/acme/members/{m}/balance"))
            .await;
        paid += b.body["points_available"].as_i64().unwrap_or(0);
    }
    assert_eq!(paid, 10, "one reward of 10 within the budget of 15");
}

/// Polls campaign `id` until it has spent `units`.
async fn wait_for_spent(app: &TestApp, id: &str, units: u64) {
    let path = format!("/v1/tenants/acme/campaigns/{id}");
    for _ in 0..100 {
        if app.get(&path).await.body["spent"].as_u64() == Some(units) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "campaign {id} never spent {units}: {:?}",
        app.get(&path).await.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_reward_new_members_and_big_orders_once_each() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let checker = checker(&app).await;
    for (id, trigger) in [
        ("WELCOME", json!({"type": "welcome"})),
        ("BIG", json!({"type": "order_at_least", "amount": 20000})),
    ] {
        let mut c = campaign(id, json!({"type": "everyone"}));
        c["trigger"] = trigger;
        c["actions"] = json!({"tag": format!("{}-rewarded", id.to_lowercase())});
        c["budget"]["limit"] = json!(1000);
        assert_eq!(app.post("/v1/tenants/acme/campaigns", c).await.status, 200);
        app.post(
            &format!("/v1/tenants/acme/campaigns/{id}/submit"),
            json!({}),
        )
        .await;
        let path = format!("/v1/tenants/acme/campaigns/{id}/approval");
        let approved = post_as(&app, &checker, &path, json!({})).await;
        assert_eq!(approved.body["phase"], "running", "{approved:?}");
    }
    app.join("m1", "13812340001").await;
    app.join("m2", "13812340002").await;
    wait_for_spent(&app, "WELCOME", 20).await;
    let profile = app.get("/v1/tenants/acme/members/m2/profile").await;
    assert!(
        profile.body["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("welcome-rewarded")),
        "{profile:?}"
    );

    let order = |id: &str, total: i64| {
        app.client
            .post(format!("{}/v1/tenants/acme/members/m1/orders", app.base))
            .header("idempotency-key", format!("order-{id}"))
            .header("x-api-key", &partner)
            .json(&json!({"order_id": id, "total": total, "store": "s01"}))
    };
    assert_eq!(app.send(order("POS-1", 19_999)).await.status, 200);
    assert_eq!(app.send(order("POS-2", 20_000)).await.status, 200);
    // POS-3 comes after POS-2's reward, so it is the big-order campaign's (below).
    wait_for_spent(&app, "BIG", 10).await;
    assert_eq!(app.send(order("POS-3", 50_000)).await.status, 200);
    wait_for_spent(&app, "BIG", 20).await;
    // Nothing more arrives later: each member welcomed once, each big order rewarded once.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.get("/v1/tenants/acme/campaigns/WELCOME").await.body["spent"],
        20
    );
    assert_eq!(
        app.get("/v1/tenants/acme/campaigns/BIG").await.body["spent"],
        20
    );
    // Results: the welcome reached both members before m1's three orders; the big-order
    // campaign reached m1 with POS-2's reward (after that order), so only POS-3 is its.
    let welcome = wait_for_results(&app, "WELCOME", |arm| {
        arm["orders"] == 3 && arm["issued"] == 2
    })
    .await;
    assert_eq!(
        (&welcome["members"], &welcome["issued"], &welcome["spend"]),
        (&json!(2), &json!(2), &json!(89_999)),
        "{welcome}"
    );
    let big = wait_for_results(&app, "BIG", |arm| arm["orders"] == 1 && arm["issued"] == 2).await;
    assert_eq!(
        (
            &big["members"],
            &big["issued"],
            &big["points"],
            &big["spend"]
        ),
        (&json!(1), &json!(2), &json!(20), &json!(50_000)),
        "{big}"
    );
}

/// Polls campaign `id`'s results until its first arm satisfies `done`; that arm.
async fn wait_for_results(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/tenants/acme/campaigns/{id}/results");
    for _ in 0..100 {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        if done(&reply.body["arms"][0]) {
            return reply.body["arms"][0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "campaign {id}'s results never came: {:?}",
        app.get(&path).await.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_birthday_sweep_rewards_todays_birthdays_once_in_the_campaigns_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let app = loyalty_tests::spawn_app_with(dir, |c| c.campaign.sweep_interval_secs = 1).await;
    app.acme_partner_key().await;
    let checker = checker(&app).await;
    // Today and tomorrow in Shanghai, whatever the machine's zone.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let tomorrow = today.succ_opt().unwrap();
    for (m, phone, born) in [
        ("m1", "13812340001", today.with_year(1990)),
        ("m2", "13812340002", tomorrow.with_year(1991)),
    ] {
        // 29 February moves to 1 March in a common birth year: still not today.
        let born = born.unwrap_or_else(|| NaiveDate::from_ymd_opt(1992, 2, 29).unwrap());
        let profile = json!({"personal": {"phone": phone, "birthday": born.to_string()}});
        let joined = app
            .post(&format!("/v1/tenants/acme/members/{m}/profile"), profile)
            .await;
        assert_eq!(joined.status, 200, "{joined:?}");
    }
    let mut c = campaign("BDAY", json!({"type": "everyone"}));
    c["trigger"] = json!({"type": "birthday"});
    assert_eq!(app.post("/v1/tenants/acme/campaigns", c).await.status, 200);
    app.post("/v1/tenants/acme/campaigns/BDAY/submit", json!({}))
        .await;
    let approved = post_as(
        &app,
        &checker,
        "/v1/tenants/acme/campaigns/BDAY/approval",
        json!({}),
    )
    .await;
    assert_eq!(approved.body["phase"], "running", "{approved:?}");
    wait_for_spent(&app, "BDAY", 10).await;
    // Several sweeps later: still one reward, to the member born today.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(
        app.get("/v1/tenants/acme/campaigns/BDAY").await.body["spent"],
        10
    );
    let m1 = app.get("/v1/tenants/acme/members/m1/balance").await;
    assert_eq!(m1.body["points_available"], 10, "{m1:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_rewards_both_sides_and_a_refund_takes_both_back() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let checker = checker(&app).await;
    let mut c = campaign("FRIENDS", json!({"type": "everyone"}));
    c["variants"][0]["reward"]["points"] = json!(100);
    c["budget"]["limit"] = json!(10_000);
    c["trigger"] = json!({"type": "referral", "referee_points": 50, "min_order": 10000});
    let approved = approved(&app, &checker, c).await;
    assert_eq!(approved.body["phase"], "running", "{approved:?}");
    app.join("m1", "13812340001").await;
    app.join("m2", "13812340002").await;

    // The partner's app: m1's code, then m2 signs up with it.
    let as_partner = |path: &str, body: Value| {
        app.client
            .post(format!("{}{path}", app.base))
            .header("idempotency-key", app.key())
            .header("x-api-key", &partner)
            .json(&body)
    };
    let code = app
        .send(as_partner(
            "/v1/tenants/acme/members/m1/referral-code",
            json!({}),
        ))
        .await;
    assert_eq!(code.status, 200, "{code:?}");
    let code = code.body["code"].as_str().unwrap().to_string();
    let refer = |member: &str| {
        as_partner(
            "/v1/tenants/acme/campaigns/FRIENDS/referrals",
            json!({"code": code, "member_id": member}),
        )
    };
    let own = app.send(refer("m1")).await;
    assert_eq!((own.status, own.code()), (422, "SELF_REFERRAL"));
    let referred = app.send(refer("m2")).await;
    assert_eq!(
        (referred.status, &referred.body["state"]),
        (200, &json!("pending")),
        "{referred:?}"
    );

    let order = |id: &str, total: i64, refund_of: Option<&str>| {
        as_partner(
            "/v1/tenants/acme/members/m2/orders",
            json!({"order_id": id, "total": total, "store": "s01", "refund_of": refund_of}),
        )
    };
    assert_eq!(app.send(order("F-1", 12_000, None)).await.status, 200);
    wait_for_spent(&app, "FRIENDS", 150).await;
    let balance = |m: &'static str| {
        let path = format!("/v1/tenants/acme/members/{m}/balance");
        let app = &app;
        async move { app.get(&path).await.body["points_available"].as_i64() }
    };
    // m2 also earned 120 points on the order itself (the tenant's earning rules).
    assert_eq!(
        (balance("m1").await, balance("m2").await),
        (Some(100), Some(170))
    );

    assert_eq!(
        app.send(order("F-1-R", -12_000, Some("F-1"))).await.status,
        200
    );
    let path = "/v1/tenants/acme/members/m2/referrals";
    for _ in 0..100 {
        if app.get(path).await.body[0]["state"] == "reversed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let referrals = app.get(path).await;
    assert_eq!(
        (
            &referrals.body[0]["state"],
            &referrals.body[0]["taken_back"]
        ),
        (&json!("reversed"), &json!({"referrer": 100, "referee": 50})),
        "{referrals:?}"
    );
    for _ in 0..100 {
        // The 120 earned on the order stay: a refund recorded in the member service does
        // not reverse the earn (that is the till's `reverse` call to the ledger).
        if balance("m2").await == Some(120) && balance("m1").await == Some(0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the rewards were not taken back: {:?} {:?}",
        balance("m1").await,
        balance("m2").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_value_reward_is_bonus_value_in_the_wallet_within_its_budget() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let checker = checker(&app).await;
    app.join("m1", "13812340001").await;
    app.join("m2", "13812340002").await;
    let mut c = campaign("TOPUP", json!({"type": "everyone"}));
    c["variants"][0]["reward"] = json!({"type": "stored_value", "amount": 1500});
    c["budget"] = json!({"unit": "stored_value", "limit": 2000});
    assert_eq!(approved(&app, &checker, c).await.status, 200);
    let reward = |member: &str| {
        app.client
            .post(format!(
                "{}/v1/tenants/acme/campaigns/TOPUP/rewards",
                app.base
            ))
            .header("x-api-key", &partner)
            .header("idempotency-key", "topup-2027")
            .json(&json!({"member_id": member}))
    };
    let first = app.send(reward("m1")).await;
    assert_eq!(first.body["state"], "confirmed", "{first:?}");
    assert_eq!(
        app.send(reward("m1")).await.body,
        first.body,
        "once per key"
    );
    let over = app.send(reward("m2")).await;
    assert_eq!((over.status, over.code()), (409, "BUDGET_EXHAUSTED"));
    let balance = app.get("/v1/tenants/acme/members/m1/balance").await;
    assert_eq!(
        (&balance.body["bonus_value"], &balance.body["stored_value"]),
        (&json!(1500), &json!(0)),
        "15.00 of bonus, no paid value: {balance:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_checks_in_once_a_day_through_the_partners_app() {
    let app = spawn_app().await;
    let partner = app.acme_partner_key().await;
    let checker = checker(&app).await;
    app.join("m1", "13812340001").await;
    let mut c = campaign("DAILY", json!({"type": "everyone"}));
    c["budget"]["limit"] = json!(1000);
    c["trigger"] = json!({"type": "check_in", "streak_bonuses": [{"day": 7, "points": 50}]});
    assert_eq!(approved(&app, &checker, c).await.status, 200);
    let check_in = || {
        app.client
            .post(format!(
                "{}/v1/tenants/acme/campaigns/DAILY/check-ins",
                app.base
            ))
            .header("x-api-key", &partner)
            .header("idempotency-key", app.key())
            .json(&json!({"member_id": "m1"}))
    };
    let first = app.send(check_in()).await;
    assert_eq!(
        (
            first.status,
            &first.body["streak"],
            &first.body["points"],
            &first.body["new"]
        ),
        (200, &json!(1), &json!(10), &json!(true)),
        "{first:?}"
    );
    let again = app.send(check_in()).await;
    assert_eq!(
        (&again.body["new"], &again.body["date"]),
        (&json!(false), &first.body["date"])
    );
    let balance = app.get("/v1/tenants/acme/members/m1/balance").await;
    assert_eq!(
        balance.body["points_available"], 10,
        "paid once: {balance:?}"
    );
    let bad = app
        .send(
            app.client
                .post(format!(
                    "{}/v1/tenants/acme/campaigns/DAILY/check-ins",
                    app.base
                ))
                .header("x-api-key", &partner)
                .header("idempotency-key", app.key())
                .json(&json!({"member_id": "no such member!"})),
        )
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
}
