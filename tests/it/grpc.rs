//! The gRPC side: health checking, reflection-backed stable codes, and the same errors as REST.

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

    let mut ledger = LedgerServiceClient::connect(app.grpc.clone())
        .await
        .unwrap();
    let wallet = Some(pb::WalletRef {
        tenant_id: "acme".into(),
        member_id: "g-1".into(),
    });
    let err = ledger
        .redeem(pb::RedeemRequest {
            wallet: wallet.clone(),
            idempotency_key: "k1".into(),
            points: 5,
            reference: String::new(),
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
