//! What every response carries, CORS for configured origins only, and rate limits per API key
//! and per tenant.

use loyalty_tests::{spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/v1/tenants/acme/members/m1/balance",
        "/v1/docs",
        "/v1/nope",
        "/.well-known/jwks.json",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(
            path == "/v1/docs",
            csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_configured_origins_get_cors() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir, |c| {
        c.gateway.cors_origins = vec!["https://console.acme.cn".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/tenants/acme/members/m1/earnings", app.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,idempotency-key,content-type",
            )
            .send()
    };
    let allowed = preflight("https://console.acme.cn").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://console.acme.cn"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir, |c| {
        c.gateway.rate_limits.per_api_key = 3;
    })
    .await;
    let key = app.acme_partner_key().await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app
            .get_with_key("/v1/tenants/acme/members/m1/balance", &key)
            .await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], "RATE_LIMITED");
        }
    }
    assert_eq!(
        &statuses[..3],
        [404, 404, 404],
        "a burst of 3 passes: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // The platform administrator is not counted against the tenant's key.
    assert_eq!(
        app.get("/v1/tenants/acme/members/m1/balance").await.status,
        404
    );
    app.stop().await;
}
