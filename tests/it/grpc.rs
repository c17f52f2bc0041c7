//! The gRPC side: health checking, reflection-backed stable codes, the same errors as REST, and
//! the ledger's own check of every caller (gRPC clients do not pass through the gateway).

use loyalty_proto::ledger::v1 as pb;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_tests::spawn_app;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn health_and_stable_error_codes_over_grpc() {
    let app = spawn_app().await;
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ledger.v1.LedgerService".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        status.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut anonymous = LedgerServiceClient::connect(app.grpc.clone())
        .await
        .unwrap();
    let wallet = Some(pb::WalletRef {
        tenant_id: "acme".into(),
        member_id: "g-1".into(),
    });
    let err = anonymous
        .get_balance(wallet.clone().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");

    let token = app.token.clone();
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut ledger =
        LedgerServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            let bearer = format!("Bearer {token}").parse().unwrap();
            r.metadata_mut().insert("authorization", bearer);
            Ok(r)
        });
    let err = ledger
        .redeem(pb::RedeemRequest {
            wallet: wallet.clone(),
            idempotency_key: "k1".into(),
            points: 5,
            reference: String::new(),
            capture: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(
        err.metadata().get("x-error-code").unwrap(),
        "WALLET_NOT_FOUND"
    );
    let err = ledger
        .open_wallet(pb::OpenWalletRequest {
            wallet,
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.metadata().get("x-error-code").unwrap(),
        "IDEMPOTENCY_KEY_MISSING"
    );
    app.stop().await;
}

/// A clerk of one store reaches its own tenant's wallets over gRPC only with its store in the
/// metadata, and never another tenant's; direct writes are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_checks_grpc_callers_itself() {
    let app = spawn_app().await;
    for tenant in ["acme", "globex"] {
        let reply = app
            .post(
                "/v1/tenants",
                serde_json::json!({"id": tenant, "name": tenant}),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let staff = serde_json::json!({"username": "cid", "password": "store-clerk-pass-1",
        "roles": [{"role": "clerk", "store": "s01"}]});
    assert_eq!(app.post("/v1/tenants/acme/staff", staff).await.status, 200);
    let clerk = app.login("acme", "cid", "store-clerk-pass-1").await;
    let channel = tonic::transport::Endpoint::from_shared(app.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let with = |store: Option<&'static str>| {
        let token = clerk.clone();
        LedgerServiceClient::with_interceptor(channel.clone(), move |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            if let Some(store) = store {
                r.metadata_mut()
                    .insert("x-store-id", store.parse().unwrap());
            }
            Ok(r)
        })
    };
    let open = |tenant: &str, key: &str| pb::OpenWalletRequest {
        wallet: Some(pb::WalletRef {
            tenant_id: tenant.into(),
            member_id: "g-2".into(),
        }),
        idempotency_key: key.into(),
    };
    assert!(
        with(Some("s01"))
            .open_wallet(open("acme", "o1"))
            .await
            .is_ok()
    );
    let err = with(None)
        .open_wallet(open("acme", "o2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    let err = with(Some("s01"))
        .open_wallet(open("globex", "o3"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert_eq!(err.metadata().get("x-error-code").unwrap(), "FORBIDDEN");
    let audit = app.get("/v1/tenants/acme/audit?limit=100").await;
    let actions: Vec<&str> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"]["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"ledger.v1.LedgerService/OpenWallet"),
        "{actions:?}"
    );
    app.stop().await;
}
