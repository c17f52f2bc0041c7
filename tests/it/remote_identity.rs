//! A ledger in its own process (`--target ledger`) asks an identity service in another
//! (`--target identity`, through `identity_endpoint`) about every caller: the same checks as
//! in one process, a revocation that takes effect at once, and writes audited in the identity
//! service's chain.

use loyalty_common::config::Secret;
use loyalty_common::ids::TenantId;
use loyalty_events::config::BusKind;
use loyalty_proto::identity::v1 as identity_pb;
use loyalty_proto::identity::v1::identity_service_client::IdentityServiceClient;
use loyalty_proto::ledger::v1 as pb;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use memberd::Running;
use memberd::config::{MemberdConfig, Target};

pub(crate) const PASSWORD: &str = "kettle-orbit-plum-7";

/// memberd as `target` on `dir`, asking the identity service at `identity` if given.
pub(crate) async fn start(
    target: Target,
    dir: &tempfile::TempDir,
    identity: Option<String>,
) -> Running {
    let mut config = MemberdConfig {
        target,
        data_dir: dir.path().to_path_buf(),
        http_addr: "127.0.0.1:0".into(),
        grpc_addr: "127.0.0.1:0".into(),
        identity_endpoint: identity,
        ..MemberdConfig::default()
    };
    config.events.bus = Some(BusKind::Embedded);
    config.identity.bootstrap_password = Some(Secret::new(PASSWORD));
    memberd::start(config).await.expect("memberd starts")
}

fn open(tenant: &str, member: &str) -> pb::OpenWalletRequest {
    pb::OpenWalletRequest {
        wallet: Some(pb::WalletRef {
            tenant_id: tenant.into(),
            member_id: member.into(),
        }),
        idempotency_key: format!("open-{tenant}-{member}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_alone_checks_its_callers_with_the_identity_service() {
    let (identity_dir, ledger_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let identity_process = start(Target::Identity, &identity_dir, None).await;
    let identity_grpc = format!("http://{}", identity_process.grpc_addr.unwrap());
    let ledger_process = start(Target::Ledger, &ledger_dir, Some(identity_grpc)).await;

    // A tenant and a partner key, made on the identity service.
    let identity = identity_process.identity().unwrap().clone();
    let login = identity
        .login("*", "admin", PASSWORD, None, "r")
        .await
        .unwrap();
    let root = identity.authenticate(&login.access_token).await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    identity
        .create_tenant(&root, &acme, "Acme", "r")
        .await
        .unwrap();
    let key = identity
        .create_api_key(&root, &acme, "till", &["partner".to_string()], None, "r")
        .await
        .unwrap();

    let channel = tonic::transport::Endpoint::from_shared(format!(
        "http://{}",
        ledger_process.grpc_addr.unwrap()
    ))
    .unwrap()
    .connect()
    .await
    .unwrap();
    let secret = key.key.clone();
    let mut partner =
        LedgerServiceClient::with_interceptor(channel.clone(), move |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {secret}").parse().unwrap());
            r.metadata_mut()
                .insert("x-request-id", "till-7".parse().unwrap());
            Ok(r)
        });
    let mut anonymous = LedgerServiceClient::new(channel);

    partner.open_wallet(open("acme", "m1")).await.unwrap();
    let err = anonymous.open_wallet(open("acme", "m2")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let err = partner.open_wallet(open("globex", "m1")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    let err = partner
        .adjust(pb::AdjustRequest {
            wallet: open("acme", "m1").wallet,
            idempotency_key: "adjust-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::PermissionDenied,
        "a partner may not adjust: {err}"
    );

    // The write is in the identity service's audit chain, under the key, with the request id.
    let records = identity
        .audit_records(&root, "acme", 1, 100, "r")
        .await
        .unwrap();
    let by_ledger = records
        .iter()
        .find(|r| r.event.action == "ledger.v1.LedgerService/OpenWallet")
        .expect("recorded by the ledger");
    assert_eq!(by_ledger.event.actor, format!("key:{}", key.id));
    assert_eq!(by_ledger.event.request_id, "till-7");

    // Nobody writes into another tenant's chain through the identity service's API.
    let mut direct =
        IdentityServiceClient::connect(format!("http://{}", identity_process.grpc_addr.unwrap()))
            .await
            .unwrap();
    let forged = identity_pb::RecordRequest {
        credential: key.key.clone(),
        tenant: "globex".into(),
        action: "ledger.v1.LedgerService/Adjust".into(),
        target: "globex/m1".into(),
        outcome: "allowed".into(),
        outcome_code: String::new(),
        request_id: "forged".into(),
    };
    let err = direct.record(forged).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    let stranger = identity_pb::RecordRequest {
        credential: "lk_not_a_key".into(),
        tenant: "acme".into(),
        action: "x".into(),
        outcome: "allowed".into(),
        ..Default::default()
    };
    let err = direct.record(stranger).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");

    // Revoked on the identity service: refused by the ledger at its next call.
    identity.revoke_api_key(&root, key.id, "r").await.unwrap();
    let err = partner.open_wallet(open("acme", "m3")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");

    ledger_process.shutdown().await.unwrap();
    identity_process.shutdown().await.unwrap();
}
