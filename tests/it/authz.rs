//! The authorization matrix, through the real gateway: every route times every built-in role,
//! allowed or refused as the table below says (written out here, not derived from the code
//! under test); the same callers against another tenant, refused everywhere; store-scoped
//! roles; and credentials that must not work.

use loyalty_gateway::access::ROUTES;
use loyalty_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

const PASSWORD: &str = "matrix-passphrase-9";

/// Which roles may do what: the product's intent, independent of the policy code.
fn expected(role: &str, object: &str, action: &str) -> bool {
    let read = action == "read";
    match role {
        "platform_admin" => true,
        "tenant_admin" => object != "tenant" || read,
        "store_manager" => match object {
            "ledger.wallet" | "member" | "member.orders" => true,
            "ledger.adjust" => !read,
            "ledger.rules" | "identity.staff" | "member.pii" | "campaign.coupons" => read,
            "campaign.sales" | "campaign.campaigns" => read,
            // A store redeems coupons at its tills and undoes them on returns; it claims
            // flash-sale units for members the same way.
            "campaign.redeem" | "campaign.claims" => true,
            // A store hands points-mall gifts over and places orders for members.
            "campaign.mall" => read,
            "campaign.mall_orders" => true,
            "campaign.draws" => read,
            _ => false,
        },
        "clerk" | "partner" => match object {
            "ledger.wallet" => true,
            "member.orders" | "campaign.redeem" => !read,
            "ledger.rules" | "member" | "campaign.coupons" | "campaign.sales" => read,
            // Claims are read back to follow them through checkout.
            "campaign.claims" => true,
            // A partner's marketing automation rewards members from running campaigns.
            "campaign.rewards" => role == "partner" && !read,
            // A partner's app shows a member's code and records referrals at sign-up.
            "campaign.referrals" => role == "partner",
            // Members' apps and tills order from the points mall; ERP and logistics move
            // orders on; a clerk hands gifts over.
            "campaign.mall" => read,
            "campaign.mall_orders" => true,
            "campaign.draws" => read,
            // A member's app enters the member in lucky draws.
            "campaign.draw_entries" => role == "partner",
            _ => false,
        },
        "auditor" => {
            read && matches!(
                object,
                "ledger.wallet"
                    | "ledger.rules"
                    | "member"
                    | "identity.staff"
                    | "audit"
                    | "campaign.coupons"
                    | "campaign.sales"
                    | "campaign.claims"
                    | "campaign.campaigns"
                    | "campaign.mall"
                    | "campaign.mall_orders"
                    | "campaign.draws"
                    | "campaign.draw_entries"
            )
        }
        _ => false,
    }
}

/// A concrete path for a route template in `tenant`.
fn concrete(template: &str, tenant: &str) -> String {
    template
        .replace("{tenant}", tenant)
        .replace("{member}", "m1")
        .replace("{hold_id}", "01J00000000000000000000000")
        .replace("{staff_id}", "01J00000000000000000000000")
        .replace("{key_id}", "01J00000000000000000000000")
        .replace("{code}", "seg1")
        .replace("{merge_id}", "01J00000000000000000000000")
        .replace("{template}", "TEN")
        .replace("{redemption}", "r1")
        .replace("{sale}", "s1")
        .replace("{claim}", "c1")
        .replace("{campaign}", "cmp1")
        .replace("{step}", "submit")
        .replace("{item}", "i1")
        .replace("{order}", "o1")
        .replace("{draw}", "d1")
        .replace("{entry}", "e1")
}

async fn call(app: &TestApp, method: &str, path: &str, token: &str, store: Option<&str>) -> u16 {
    let url = format!("{}{path}", app.base);
    let mut request = match method {
        "GET" => app.client.get(&url),
        other => app
            .client
            .request(other.parse().unwrap(), &url)
            .json(&json!({})),
    };
    request = request
        .bearer_auth(token)
        .header("idempotency-key", app.key());
    if let Some(store) = store {
        request = request.header("x-store-id", store);
    }
    app.send(request).await.status
}

/// Tenants acme (store s01) and globex, and one account per built-in role in acme (the
/// partner as an API key). Returns (role, token).
async fn callers(app: &TestApp) -> Vec<(String, String)> {
    for tenant in ["acme", "globex"] {
        let reply = app
            .post("/v1/tenants", json!({"id": tenant, "name": tenant}))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let reply = app
        .post(
            "/v1/tenants/acme/stores",
            json!({"id": "s01", "name": "Main Street"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut callers = vec![("platform_admin".to_string(), app.token.clone())];
    for role in ["tenant_admin", "store_manager", "clerk", "auditor"] {
        let body = json!({"username": role, "password": PASSWORD, "roles": [{"role": role}]});
        let reply = app.post("/v1/tenants/acme/staff", body).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        callers.push((role.to_string(), app.login("acme", role, PASSWORD).await));
    }
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "crm", "roles": ["partner"]}),
        )
        .await;
    assert_eq!(key.status, 200, "{key:?}");
    callers.push((
        "partner".into(),
        key.body["key"].as_str().unwrap().to_string(),
    ));
    callers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_times_every_role_is_allowed_or_refused_as_intended() {
    let app = spawn_app().await;
    let callers = callers(&app).await;
    let mut wrong = Vec::new();
    for (method, template, permission) in ROUTES {
        for (role, token) in &callers {
            let own = call(&app, method, &concrete(template, "acme"), token, None).await;
            // A route of no tenant (the list of tenants) is the platform's own.
            let platform_wide = !template.contains("{tenant}");
            let allowed = if platform_wide {
                role == "platform_admin"
            } else {
                expected(role, permission.object, permission.action.as_str())
            };
            let refused = own == 403;
            assert_ne!(own, 401, "{role} {method} {template}: not authenticated");
            if allowed == refused {
                wrong.push(format!(
                    "{role} {method} {template}: got {own}, allowed={allowed}"
                ));
            }
            // The same caller against another tenant: refused, unless it is the platform's.
            if *template != "/v1/tenants" {
                let other = call(&app, method, &concrete(template, "globex"), token, None).await;
                let want_refused = role != "platform_admin";
                if (other == 403) != want_refused {
                    wrong.push(format!("{role} {method} {template} on globex: got {other}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_role_works_in_its_store_only() {
    let app = spawn_app().await;
    let _ = callers(&app).await;
    let body = json!({"username": "cid", "password": PASSWORD, "roles": [{"role": "clerk", "store": "s01"}]});
    assert_eq!(app.post("/v1/tenants/acme/staff", body).await.status, 200);
    let cid = app.login("acme", "cid", PASSWORD).await;
    let open = "/v1/tenants/acme/members/m9/wallet";
    assert_eq!(call(&app, "POST", open, &cid, Some("s01")).await, 200);
    assert_eq!(
        call(&app, "POST", open, &cid, None).await,
        403,
        "the whole tenant"
    );
    assert_eq!(
        call(&app, "POST", open, &cid, Some("s02")).await,
        403,
        "another store"
    );
    assert_eq!(call(&app, "POST", open, &cid, Some("../s01")).await, 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_clear_errors_and_revocation_is_immediate() {
    let app = spawn_app().await;
    let callers = callers(&app).await;
    let balance = "/v1/tenants/acme/members/m1/balance";
    let (_, admin) = callers.iter().find(|(r, _)| r == "tenant_admin").unwrap();
    let code = |reply: &loyalty_tests::Reply| reply.code().to_string();

    // Tampered: another tenant written into the payload, the signature kept.
    let parts: Vec<&str> = admin.split('.').collect();
    let payload = String::from_utf8(base64_url_decode(parts[1])).unwrap();
    let forged = base64_url_encode(payload.replace("\"acme\"", "\"globex\"").as_bytes());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    for (what, header) in [
        ("tampered", format!("Bearer {tampered}")),
        ("garbage", "Bearer not-a-token".to_string()),
        ("wrong scheme", format!("Basic {admin}")),
        (
            "unknown key",
            "Bearer lk_01J00000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                .into(),
        ),
        ("empty", "Bearer ".into()),
    ] {
        let reply = app
            .send(
                app.client
                    .get(format!("{}{balance}", app.base))
                    .header("authorization", header),
            )
            .await;
        assert_eq!(
            (reply.status, code(&reply)),
            (401, "UNAUTHENTICATED".into()),
            "{what}: {reply:?}"
        );
        assert_eq!(reply.content_type, "application/problem+json", "{what}");
    }
    // Not text, and far too long: 4xx, never a panic.
    let reply = app
        .send(app.client.get(format!("{}{balance}", app.base)).header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        ))
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let huge = format!("Bearer {}", "a".repeat(200_000));
    let status = app
        .client
        .get(format!("{}{balance}", app.base))
        .header("authorization", huge)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(431);
    assert!(
        (400..500).contains(&status),
        "an oversized header got {status}"
    );

    // Logging out ends the token at once; so does revoking an API key.
    let session = app.login("acme", "tenant_admin", PASSWORD).await;
    assert_eq!(
        call(&app, "GET", balance, &session, None).await,
        404,
        "allowed: no wallet yet"
    );
    let logout = app
        .send(
            app.client
                .post(format!("{}/v1/auth/logout", app.base))
                .bearer_auth(&session),
        )
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    assert_eq!(call(&app, "GET", balance, &session, None).await, 401);
    let (_, key) = callers.iter().find(|(r, _)| r == "partner").unwrap();
    assert_eq!(call(&app, "GET", balance, key, None).await, 404);
    let id = key.trim_start_matches("lk_").split('_').next().unwrap();
    let revoked = app
        .post(
            &format!("/v1/tenants/acme/api-keys/{id}/revoke"),
            Value::Null,
        )
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert_eq!(call(&app, "GET", balance, key, None).await, 401, "at once");
    app.stop().await;
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
