//! The administration the console needs: listing and reading tenants, staff, API keys and
//! roles, changing tenants, brands, stores and staff, and deactivating staff, whose tokens
//! stop working at once. Each write is audited; nothing is answered across tenants.

use loyalty_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

const PASSWORD: &str = "plum-kettle-orbit-42";

async fn as_caller(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let request = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("idempotency-key", app.key());
    let request = if method == "GET" {
        request
    } else {
        request.json(&body)
    };
    let reply = app.send(request).await;
    (reply.status, reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_brands_and_stores_are_listed_changed_and_deactivated() {
    let app = spawn_app().await;
    for (id, name) in [("globex", "Globex"), ("acme", "Acme")] {
        assert_eq!(
            app.post("/v1/tenants", json!({"id": id, "name": name}))
                .await
                .status,
            200
        );
    }
    let listed = app.get("/v1/tenants").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let ids: Vec<&str> = listed.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"]);

    let changed = app
        .request(
            "PATCH",
            "/v1/tenants/acme",
            json!({"name": "Acme Retail", "time_zone": "Asia/Shanghai"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["name"], "Acme Retail");
    assert_eq!(changed.body["time_zone"], "Asia/Shanghai");
    let bad = app
        .request(
            "PATCH",
            "/v1/tenants/acme",
            json!({"time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (400, "INVALID_ARGUMENT"),
        "{:?}",
        bad.body
    );
    let unknown = app
        .request("PATCH", "/v1/tenants/acme", json!({"colour": "red"}))
        .await;
    assert_eq!(unknown.status, 400, "{:?}", unknown.body);
    assert_eq!(
        app.get("/v1/tenants/acme").await.body["time_zone"],
        "Asia/Shanghai"
    );

    app.post(
        "/v1/tenants/acme/brands",
        json!({"id": "fresh", "name": "Fresh"}),
    )
    .await;
    app.post(
        "/v1/tenants/acme/stores",
        json!({"id": "s01", "name": "Main Street"}),
    )
    .await;
    let store = app
        .request(
            "PATCH",
            "/v1/tenants/acme/stores/s01",
            json!({"name": "Nanjing Road", "brand": "fresh", "active": false}),
        )
        .await;
    assert_eq!(store.status, 200, "{:?}", store.body);
    assert_eq!(
        store.body["stores"][0],
        json!({"id": "s01", "name": "Nanjing Road", "brand": "fresh", "active": false})
    );
    let no_brand = app
        .request(
            "PATCH",
            "/v1/tenants/acme/stores/s01",
            json!({"brand": "stale"}),
        )
        .await;
    assert_eq!(no_brand.status, 404, "{:?}", no_brand.body);
    let no_store = app
        .request(
            "PATCH",
            "/v1/tenants/acme/stores/s99",
            json!({"active": true}),
        )
        .await;
    assert_eq!(no_store.status, 404, "{:?}", no_store.body);
    let brand = app
        .request(
            "PATCH",
            "/v1/tenants/acme/brands/fresh",
            json!({"active": false}),
        )
        .await;
    assert_eq!(brand.body["brands"][0]["active"], false, "{:?}", brand.body);

    let audit = app.get("/v1/tenants/acme/audit").await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["action"].as_str().unwrap())
        .collect();
    let checked = app.get("/v1/tenants/acme/audit/verification").await;
    assert_eq!(checked.body["intact"], true, "{:?}", checked.body);
    assert!(checked.body["records"].as_u64().unwrap() >= 4);
    for action in [
        "identity.tenant.update",
        "identity.store.update",
        "identity.brand.update",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_keys_and_roles_are_listed_and_a_deactivated_account_is_refused_at_once() {
    let app = spawn_app().await;
    for id in ["acme", "globex"] {
        app.post("/v1/tenants", json!({"id": id, "name": id})).await;
    }
    app.post(
        "/v1/tenants/acme/stores",
        json!({"id": "s01", "name": "Main Street"}),
    )
    .await;
    let ann = app
        .post(
            "/v1/tenants/acme/staff",
            json!({"username": "ann", "password": PASSWORD, "roles": [{"role": "tenant_admin"}]}),
        )
        .await;
    let cid = app
        .post(
            "/v1/tenants/acme/staff",
            json!({"username": "cid", "display_name": "Cid", "password": PASSWORD,
                   "roles": [{"role": "clerk", "store": "s01"}]}),
        )
        .await;
    let (ann_id, cid_id) = (
        ann.body["staff_id"].as_str().unwrap(),
        cid.body["staff_id"].as_str().unwrap(),
    );
    let ann_token = app.login("acme", "ann", PASSWORD).await;
    let cid_token = app.login("acme", "cid", PASSWORD).await;
    // The console shows times in the tenant's time zone, which the caller's grants carry.
    let zone = json!({"time_zone": "Asia/Shanghai"});
    let (status, _) = as_caller(&app, &ann_token, "PATCH", "/v1/tenants/acme", zone).await;
    assert_eq!(status, 200);
    let (_, me) = as_caller(
        &app,
        &cid_token,
        "GET",
        "/v1/auth/me?store=s01",
        Value::Null,
    )
    .await;
    assert_eq!(me["time_zone"], "Asia/Shanghai", "{me}");

    let (status, listed) = as_caller(
        &app,
        &ann_token,
        "GET",
        "/v1/tenants/acme/staff",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let staff = listed["staff"].as_array().unwrap();
    assert_eq!(staff.len(), 2);
    assert_eq!(staff[1]["username"], "cid");
    assert_eq!(
        staff[1]["roles"],
        json!([{"role": "clerk", "store": "s01"}])
    );
    assert_eq!(staff[1]["active"], true);
    assert!(staff[1].get("password_hash").is_none() && !listed.to_string().contains("argon2"));
    let (status, _) = as_caller(
        &app,
        &ann_token,
        "GET",
        "/v1/tenants/globex/staff",
        Value::Null,
    )
    .await;
    assert_eq!(status, 403, "another tenant's staff");
    // An account is answered under its own tenant's path only.
    let elsewhere = app.get(&format!("/v1/tenants/globex/staff/{cid_id}")).await;
    assert_eq!(elsewhere.status, 404, "{:?}", elsewhere.body);
    let renamed = app
        .request(
            "PATCH",
            &format!("/v1/tenants/acme/staff/{cid_id}"),
            json!({"display_name": "Cid Li"}),
        )
        .await;
    assert_eq!(renamed.body["display_name"], "Cid Li", "{:?}", renamed.body);

    // Deactivated: the token it holds is refused at once, and it cannot log in.
    let path = format!("/v1/tenants/acme/staff/{cid_id}/deactivate");
    let (status, done) = as_caller(&app, &ann_token, "POST", &path, json!({})).await;
    assert_eq!((status, &done["active"]), (200, &json!(false)), "{done}");
    let (status, _) = as_caller(&app, &cid_token, "GET", "/v1/auth/me", Value::Null).await;
    assert_eq!(status, 401);
    let login = json!({"tenant": "acme", "username": "cid", "password": PASSWORD});
    let refused = app
        .send(
            app.client
                .post(format!("{}/v1/auth/login", app.base))
                .json(&login),
        )
        .await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    let own = format!("/v1/tenants/acme/staff/{ann_id}/deactivate");
    let (status, body) = as_caller(&app, &ann_token, "POST", &own, json!({})).await;
    assert_eq!(status, 400, "nobody deactivates their own account: {body}");
    let path = format!("/v1/tenants/acme/staff/{cid_id}/reactivate");
    let (status, _) = as_caller(&app, &ann_token, "POST", &path, json!({})).await;
    assert_eq!(status, 200);
    app.login("acme", "cid", PASSWORD).await;

    // API keys are listed and read without their secret.
    let made = app
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "crm", "roles": ["partner"]}),
        )
        .await;
    let (key_id, secret) = (
        made.body["id"].as_str().unwrap(),
        made.body["key"].as_str().unwrap(),
    );
    let (status, keys) = as_caller(
        &app,
        &ann_token,
        "GET",
        "/v1/tenants/acme/api-keys",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["keys"][0]["id"], key_id);
    assert_eq!(keys["keys"][0]["roles"], json!(["partner"]));
    assert!(!keys.to_string().contains(secret));
    app.post(
        &format!("/v1/tenants/acme/api-keys/{key_id}/revoke"),
        json!({}),
    )
    .await;
    let key = app
        .get(&format!("/v1/tenants/acme/api-keys/{key_id}"))
        .await;
    assert!(key.body["revoked_at"].is_string(), "{:?}", key.body);
    assert_eq!(
        app.get(&format!("/v1/tenants/globex/api-keys/{key_id}"))
            .await
            .status,
        404
    );
    let (status, _) = as_caller(
        &app,
        &cid_token,
        "GET",
        "/v1/tenants/acme/api-keys",
        Value::Null,
    )
    .await;
    assert_eq!(
        status, 401,
        "a session begun before the deactivation stays ended after the reactivation"
    );

    // The roles on offer, with what each allows; the platform's own is not among them.
    let (status, roles) = as_caller(
        &app,
        &ann_token,
        "GET",
        "/v1/tenants/acme/roles",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{roles}");
    let names: Vec<&str> = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tenant_admin")
            && names.contains(&"clerk")
            && !names.contains(&"platform_admin")
    );
    let clerk = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "clerk")
        .unwrap();
    assert!(
        clerk["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("member:read"))
    );

    let audit = app.get("/v1/tenants/acme/audit?limit=1000").await;
    let actions = audit.body.to_string();
    for action in [
        "identity.staff.update",
        "identity.staff.deactivate",
        "identity.staff.reactivate",
    ] {
        assert!(actions.contains(action), "{action}");
    }
    app.stop().await;
}
