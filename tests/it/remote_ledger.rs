//! The gateway in front of a ledger in another process (`--target gateway`): every call
//! forwards the caller's credential, store and request id as gRPC metadata, and the ledger
//! authenticates and authorizes the caller itself.

use loyalty_gateway::{AppState, GatewayConfig, limits, router};
use loyalty_ledger::client::{GrpcLedgerClient, LedgerClient};
use loyalty_member::client::InProcessMembers;
use loyalty_proto::transport::{DEFAULT_DEADLINE, connect};
use loyalty_tests::{TestApp, spawn_app};
use serde_json::Value;
use std::sync::Arc;

/// A second gateway, in this test, that reaches `app`'s ledger over the network only; it
/// shares `app`'s identity service, as replicas share the identity store.
async fn remote_gateway(app: &TestApp) -> String {
    let config = GatewayConfig::default();
    let limits = limits::rate_limits(&config.rate_limits).await.unwrap();
    let members = Arc::new(InProcessMembers::new(app.members()));
    let state = AppState::new(remote_ledger(app), app.identity_client(), members);
    let gateway = router(state, &config, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gateway).await });
    format!("http://{addr}")
}

/// The ledger of `app`, over its gRPC port only.
fn remote_ledger(app: &TestApp) -> Arc<dyn LedgerClient> {
    Arc::new(GrpcLedgerClient::new(
        connect(&app.grpc, DEFAULT_DEADLINE).unwrap(),
    ))
}

fn actions(audit: &Value) -> Vec<String> {
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{} {}",
                r["event"]["actor"].as_str()?,
                r["event"]["action"].as_str()?
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_ledger_checks_the_forwarded_caller() {
    let app = spawn_app().await;
    let key = app.acme_partner_key().await;
    let gateway = remote_gateway(&app).await;
    let client = reqwest::Client::new();
    let post = |path: &str, idempotency: &str| {
        client
            .post(format!("{gateway}{path}"))
            .header("x-api-key", &key)
            .header("idempotency-key", idempotency)
            .header("x-request-id", "req-remote-1")
            .send()
    };

    let opened = post("/v1/tenants/acme/members/m1/wallet", "open-m1")
        .await
        .unwrap();
    assert_eq!(opened.status(), 200, "{:?}", opened.text().await);
    let balance = client
        .get(format!("{gateway}/v1/tenants/acme/members/m1/balance"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(balance.status(), 200);

    // The ledger authenticated the key itself: a write that came over the network is
    // recorded by the ledger, under the key, with the request's id.
    let audit = app.get("/v1/tenants/acme/audit?limit=100").await;
    let subject = format!("key:{}", key.split('_').nth(1).unwrap());
    let recorded = actions(&audit.body);
    assert!(
        recorded.contains(&format!("{subject} ledger.v1.LedgerService/OpenWallet")),
        "{recorded:?}"
    );
    let by_ledger = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"]["action"] == "ledger.v1.LedgerService/OpenWallet")
        .unwrap();
    assert_eq!(by_ledger["event"]["request_id"], "req-remote-1");

    // Another tenant's wallet is refused at the gateway, before any call.
    let foreign = post("/v1/tenants/globex/members/m1/wallet", "open-g1")
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_earn_in_a_remote_ledger_as_their_caller() {
    use loyalty_common::ids::{MemberId, TenantId};
    use loyalty_member::ledger::Ledger;
    use loyalty_member::service::{Members, ProfileInput};
    use loyalty_member::store::EmbeddedMemberStore;
    use loyalty_member::vault::MasterKey;

    let app = spawn_app().await;
    let key = app.acme_partner_key().await;
    let rules = serde_json::json!({"points_per_unit": 1, "unit_minor": 100,
        "expiry": {"policy": "never"}, "hold_ttl_secs": 600, "expiring_soon_days": 30});
    assert_eq!(
        app.post("/v1/tenants/acme/earning-rules", rules)
            .await
            .status,
        200
    );
    // A gateway process of its own: its member service reaches the ledger over gRPC only.
    let dir = tempfile::tempdir().unwrap();
    let members = Members::new(
        Arc::new(EmbeddedMemberStore::open(dir.path()).unwrap()),
        MasterKey::generate().unwrap().0,
        Arc::new(loyalty_common::SystemClock::default()),
    )
    .with_ledger(Arc::new(Ledger(remote_ledger(&app))));
    let members = Arc::new(members);
    let acme = TenantId::parse("acme").unwrap();
    let m7 = MemberId::parse("m7").unwrap();
    members
        .register(&acme, &m7, ProfileInput::default())
        .await
        .unwrap();
    let config = GatewayConfig::default();
    let limits = limits::rate_limits(&config.rate_limits).await.unwrap();
    let members = Arc::new(InProcessMembers::new(members));
    let state = AppState::new(remote_ledger(&app), app.identity_client(), members);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let router = router(state, &config, limits);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let recorded = reqwest::Client::new()
        .post(format!("{gateway}/v1/tenants/acme/members/m7/orders"))
        .header("x-api-key", &key)
        .json(&serde_json::json!({"order_id": "R-1", "total": 25000}))
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), 200);
    let body: Value = recorded.json().await.unwrap();
    assert_eq!(body["points"], 250, "{body:?}");
    // The wallet was opened and credited in the ledger's own process, as the partner.
    let balance = app.get("/v1/tenants/acme/members/m7/balance").await;
    assert_eq!(balance.body["points_available"], 250);
    let audit = app.get("/v1/tenants/acme/audit?limit=100").await;
    assert!(
        actions(&audit.body)
            .iter()
            .any(|a| a.ends_with("ledger.v1.LedgerService/Earn"))
    );
    app.stop().await;
}
