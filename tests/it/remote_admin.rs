//! A gateway on its own (`--target gateway`) logs staff in and administers tenants through
//! the identity service of another process (`--target identity`, at `identity_endpoint`):
//! sessions, tenants, staff, roles, API keys, the audit log and the replies kept for
//! idempotency keys, each as the caller whose credential the gateway forwards.

use crate::remote_identity::{PASSWORD, start};
use memberd::config::Target;
use serde_json::{Value, json};

/// The gateway at `base`, as the holder of a bearer token.
struct Gateway {
    base: String,
    client: reqwest::Client,
}

impl Gateway {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Value,
    ) -> (u16, Value, bool) {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if method != "GET" {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            replayed,
        )
    }

    async fn login(&self, tenant: &str, username: &str, password: &str) -> (u16, Value) {
        let body = json!({"tenant": tenant, "username": username, "password": password});
        let (status, reply, _) = self.send("POST", "/v1/auth/login", "", None, body).await;
        (status, reply)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_alone_administers_through_the_identity_service() {
    let (identity_dir, gateway_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let identity = start(Target::Identity, &identity_dir, None).await;
    let endpoint = format!("http://{}", identity.grpc_addr.unwrap());
    let gateway = start(Target::Gateway, &gateway_dir, Some(endpoint)).await;
    assert!(
        gateway.identity().is_none(),
        "the gateway runs no identity service"
    );
    let api = Gateway {
        base: format!("http://{}", gateway.http_addr),
        client: reqwest::Client::new(),
    };

    let (status, refused) = api.login("*", "admin", "wrong").await;
    assert_eq!(
        (status, &refused["code"]),
        (401, &json!("INVALID_CREDENTIALS"))
    );
    let (status, tokens) = api.login("*", "admin", PASSWORD).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    let root = tokens["access_token"].as_str().unwrap().to_string();

    // A tenant, once per key: the retry is answered from the kept reply.
    let acme = json!({"id": "acme", "name": "Acme"});
    let (status, tenant, _) = api
        .send("POST", "/v1/tenants", &root, Some("t-1"), acme.clone())
        .await;
    assert_eq!(status, 200, "{tenant}");
    let (status, again, replayed) = api
        .send("POST", "/v1/tenants", &root, Some("t-1"), acme)
        .await;
    assert_eq!((status, replayed, &again), (200, true, &tenant));
    let other = json!({"id": "acme", "name": "Other"});
    let (status, conflict, _) = api
        .send("POST", "/v1/tenants", &root, Some("t-1"), other)
        .await;
    assert_eq!(
        (status, &conflict["code"]),
        (409, &json!("IDEMPOTENCY_CONFLICT"))
    );

    let brand = json!({"id": "b1", "name": "Brand One"});
    let store = json!({"id": "s01", "name": "Store One", "brand": "b1"});
    let policy = json!({"password": {"min_length": 14}});
    for (path, key, body) in [
        ("/v1/tenants/acme/brands", "b-1", brand),
        ("/v1/tenants/acme/stores", "s-1", store),
        ("/v1/tenants/acme/security-policy", "p-1", policy),
    ] {
        let (status, reply, _) = api.send("POST", path, &root, Some(key), body).await;
        assert_eq!(status, 200, "{path}: {reply}");
    }
    let bad_store = json!({"id": "not a store id", "name": "x"});
    let (status, bad, _) = api
        .send(
            "POST",
            "/v1/tenants/acme/stores",
            &root,
            Some("s-2"),
            bad_store,
        )
        .await;
    assert_eq!((status, &bad["code"]), (400, &json!("INVALID_ARGUMENT")));
    let (status, tenant, _) = api
        .send("GET", "/v1/tenants/acme", &root, None, Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        tenant["brands"],
        json!([{"id": "b1", "name": "Brand One", "active": true}])
    );
    assert_eq!(tenant["stores"][0]["brand"], "b1");
    assert_eq!(tenant["policy"]["password"]["min_length"], 14);

    // Staff: the generated password is shown once, and a retry says so.
    let staff = json!({"username": "li.na", "roles": [{"role": "store_manager", "store": "s01"}]});
    let (status, created, _) = api
        .send(
            "POST",
            "/v1/tenants/acme/staff",
            &root,
            Some("st-1"),
            staff.clone(),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let staff_id = created["staff_id"].as_str().unwrap().to_string();
    let initial = created["initial_password"].as_str().unwrap().to_string();
    let (status, retry, _) = api
        .send("POST", "/v1/tenants/acme/staff", &root, Some("st-1"), staff)
        .await;
    assert_eq!((status, &retry["code"]), (409, &json!("ALREADY_APPLIED")));
    let grant = json!({"subject": format!("staff:{staff_id}"), "role": "auditor"});
    let (status, granted, _) = api
        .send(
            "POST",
            "/v1/tenants/acme/role-grants",
            &root,
            Some("g-1"),
            grant,
        )
        .await;
    assert_eq!((status, &granted["changed"]), (200, &json!(true)));
    let unlock = format!("/v1/tenants/acme/staff/{staff_id}/unlock");
    let (status, _, _) = api
        .send("POST", &unlock, &root, Some("u-1"), json!({}))
        .await;
    assert_eq!(status, 200);

    // The new account logs in, must change its password, changes it and logs out.
    let (status, first) = api.login("acme", "li.na", &initial).await;
    assert_eq!(
        (status, &first["must_change_password"]),
        (200, &json!(true))
    );
    let token = first["access_token"].as_str().unwrap().to_string();
    let change = json!({"current": initial, "new": "a-much-longer-passphrase-1"});
    let (status, _, _) = api
        .send("POST", "/v1/auth/password", &token, None, change)
        .await;
    assert_eq!(status, 204);
    let (status, second) = api
        .login("acme", "li.na", "a-much-longer-passphrase-1")
        .await;
    assert_eq!(status, 200, "{second}");
    let token = second["access_token"].as_str().unwrap().to_string();
    // Listing and deactivating go through the identity service too.
    let (status, listed, _) = api
        .send("GET", "/v1/tenants/acme/staff", &root, None, Value::Null)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["staff"][0]["username"], "li.na");
    let (status, roles, _) = api
        .send("GET", "/v1/tenants/acme/roles", &root, None, Value::Null)
        .await;
    assert_eq!(status, 200, "{roles}");
    // What the console shows: the grants of a store manager of s01 who audits the tenant.
    let (status, me, _) = api
        .send("GET", "/v1/auth/me?store=s01", &token, None, Value::Null)
        .await;
    assert_eq!(status, 200, "{me}");
    let granted = |me: &Value, permission: &str| {
        me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == permission)
    };
    assert_eq!(me["tenant"], "acme");
    assert!(granted(&me, "ledger.adjust:write") && granted(&me, "audit:read"));
    let (status, me, _) = api
        .send("GET", "/v1/auth/me", &token, None, Value::Null)
        .await;
    assert_eq!(status, 200, "{me}");
    assert!(!granted(&me, "ledger.adjust:write") && granted(&me, "audit:read"));
    let (status, _, _) = api
        .send("POST", "/v1/auth/logout", &token, None, json!({}))
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = api
        .send("GET", "/v1/tenants/acme/audit", &token, None, Value::Null)
        .await;
    assert_eq!(status, 401, "a logged-out session is refused at once");

    // API keys: made, used, rotated, revoked.
    let key = json!({"name": "crm", "roles": ["partner"]});
    let (status, made, _) = api
        .send("POST", "/v1/tenants/acme/api-keys", &root, Some("k-1"), key)
        .await;
    assert_eq!(status, 200, "{made}");
    let (key_id, secret) = (made["id"].as_str().unwrap(), made["key"].as_str().unwrap());
    let (status, _, _) = api
        .send(
            "GET",
            "/v1/tenants/acme/members/m1/balance",
            secret,
            None,
            Value::Null,
        )
        .await;
    assert_ne!(status, 401, "the new key authenticates");
    let rotate = format!("/v1/tenants/acme/api-keys/{key_id}/rotate");
    let (status, rotated, _) = api
        .send("POST", &rotate, &root, Some("r-1"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _, _) = api
        .send(
            "GET",
            "/v1/tenants/acme/members/m1/balance",
            secret,
            None,
            Value::Null,
        )
        .await;
    assert_eq!(status, 401, "the rotated key no longer works");
    let new_id = rotated["id"].as_str().unwrap();
    let revoke = format!("/v1/tenants/acme/api-keys/{new_id}/revoke");
    let (status, _, _) = api
        .send("POST", &revoke, &root, Some("v-1"), json!({}))
        .await;
    assert_eq!(status, 200);

    // The audit log, read through the gateway, holds what the identity service recorded.
    let (status, records, _) = api
        .send(
            "GET",
            "/v1/tenants/acme/audit?limit=1000",
            &root,
            None,
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{records}");
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"]["action"].as_str())
        .collect();
    for action in [
        "identity.staff.create",
        "identity.api_key.create",
        "identity.api_key.revoke",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    let (status, bad, _) = api
        .send(
            "GET",
            "/v1/tenants/acme/audit?limit=0",
            &root,
            None,
            Value::Null,
        )
        .await;
    assert_eq!((status, &bad["code"]), (400, &json!("INVALID_ARGUMENT")));
    let (status, jwks, _) = api
        .send("GET", "/.well-known/jwks.json", "", None, Value::Null)
        .await;
    assert_eq!(status, 200);
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    gateway.shutdown().await.unwrap();
    identity.shutdown().await.unwrap();
}
