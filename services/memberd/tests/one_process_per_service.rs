//! The platform as the Helm chart runs it: `--target identity`, `--target ledger`,
//! `--target member` and `--target gateway`, each its own process, on one CQL cluster. The
//! README's journey goes through the gateway: a tenant and its earning rules (the rules
//! travel to the ledger's process), a member registered and an order recorded (in the member
//! service's process, the order earning in the ledger's, as its caller), the balance and a
//! redemption. Every process checks its callers with the identity process, and the gateway
//! logs the administrator in and administers the tenant through it.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_proto::ledger::v1 as ledger_pb;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_proto::member::v1 as pb;
use loyalty_proto::member::v1::member_service_client::MemberServiceClient;
use serde_json::{Value, json};
use support::apart::start;
use support::{http_get_with, http_post_with};

mod support;

/// `message` as a call by the holder of `token`.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

async fn post(gateway: &str, auth: &str, path: &str, key: &str, body: Value) -> Value {
    let headers = format!("{auth}Idempotency-Key: {key}\r\n");
    let (status, reply) = http_post_with(gateway, path, &headers, &body.to_string()).await;
    assert_eq!(status, 200, "POST {path}: {reply}");
    serde_json::from_str(&reply).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_journey_through_one_process_per_service() {
    let Some(cql) = support::cql::keyspaces("processes").await else {
        return;
    };
    let mut cql = cql.env();
    cql.extend([
        // Each process publishes its own outbox; the events are not under test here.
        ("MEMBERD_EVENTS__BUS", "embedded"),
        // What the member service's schedule asks of the ledger, it asks as the platform.
        (
            "MEMBERD_IDENTITY__SERVICE_CREDENTIAL",
            "b25lLXByb2Nlc3MtcGVyLXNlcnZpY2UtY3JlZGVudGlhbA==",
        ),
    ]);
    let identity = start("identity", &cql, &[]).await;
    let checks = identity.addrs.grpc.clone();
    let ledger = start("ledger", &cql, &[("MEMBERD_IDENTITY_ENDPOINT", &checks)]).await;
    let member = start(
        "member",
        &cql,
        &[
            ("MEMBERD_IDENTITY_ENDPOINT", &checks),
            ("MEMBERD_LEDGER_ENDPOINT", &ledger.addrs.grpc),
        ],
    )
    .await;
    let gateway = start(
        "gateway",
        &cql,
        &[
            ("MEMBERD_IDENTITY_ENDPOINT", &checks),
            ("MEMBERD_LEDGER_ENDPOINT", &ledger.addrs.grpc),
            ("MEMBERD_MEMBER_ENDPOINT", &member.addrs.grpc),
        ],
    )
    .await;
    let http = gateway.addrs.http.as_str();
    let token = gateway.addrs.token().await;
    let auth = format!("Authorization: Bearer {token}\r\n");

    // A tenant and its earning rules, at the gateway; the rules are stored by the ledger.
    post(
        http,
        &auth,
        "/v1/tenants",
        "t-acme",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    let rules = json!({"points_per_unit": 1, "unit_minor": 100,
        "expiry": {"policy": "never"}, "hold_ttl_secs": 600, "expiring_soon_days": 30});
    post(
        http,
        &auth,
        "/v1/tenants/acme/earning-rules",
        "rules-1",
        rules,
    )
    .await;

    // Alice registers, and buys for 250.00, at the gateway: both go to the member service's
    // process, and the order earns in the ledger's.
    let api = "/v1/tenants/acme/members/alice";
    let profile = post(
        http,
        &auth,
        &format!("{api}/profile"),
        "register-alice",
        json!({"personal": {"phone": "13812345678"}, "tags": ["vip"]}),
    )
    .await;
    assert_eq!(profile["personal"]["phone"], "138****5678");
    let recorded = post(
        http,
        &auth,
        &format!("{api}/orders"),
        "order-A-1001",
        json!({"order_id": "A-1001", "total": 25_000}),
    )
    .await;
    assert_eq!(recorded["points"], 250, "the order earned in the ledger");
    let (status, found) = http_get_with(
        http,
        "/v1/tenants/acme/member-lookup?phone=%2B86%20138%201234%205678",
        &auth,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        serde_json::from_str::<Value>(&found).unwrap()["member_id"],
        "alice"
    );

    // A partner may call the member service's port directly, with its own credential.
    let mut members = MemberServiceClient::connect(member.addrs.grpc.clone())
        .await
        .unwrap();
    let alice = pb::MemberRef {
        tenant_id: "acme".into(),
        member_id: "alice".into(),
    };
    let activity = members
        .get_activity(with_token(alice.clone(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(activity.lifetime_spend, 25_000);
    let refused = members.get_activity(alice).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // The balance and a redemption at the gateway, from the ledger's process.
    let (status, balance) = http_get_with(http, &format!("{api}/balance"), &auth).await;
    assert_eq!(status, 200, "{balance}");
    let balance: Value = serde_json::from_str(&balance).unwrap();
    assert_eq!(balance["points_available"], 250);
    let hold = post(
        http,
        &auth,
        &format!("{api}/redemptions"),
        "redeem-1",
        json!({"points": 100, "reference": "A-1002"}),
    )
    .await;
    let hold_id = hold["hold"]["hold_id"].as_str().unwrap().to_string();
    let captured = post(
        http,
        &auth,
        &format!("{api}/redemptions/{hold_id}/capture"),
        "capture-1",
        json!(null),
    )
    .await;
    assert_eq!(captured["balance"]["points_available"], 150);
    assert_eq!(captured["balance"]["points_held"], 0);

    // A write in two regions carries its tenant's home epoch and its deadline to the ledger's
    // process (decision 0019): the wallet keeps the newest epoch, refuses a write accepted
    // under an older one, and sends nothing for a write past its deadline.
    let mut wallets = LedgerServiceClient::connect(ledger.addrs.grpc.clone())
        .await
        .unwrap();
    let adjust = |key: &str, epoch: u64, timeout: &str| {
        let mut request = with_token(
            ledger_pb::AdjustRequest {
                wallet: Some(ledger_pb::WalletRef {
                    tenant_id: "acme".into(),
                    member_id: "alice".into(),
                }),
                idempotency_key: key.into(),
                points: 10,
                reason: "goodwill".into(),
            },
            &token,
        );
        let metadata = request.metadata_mut();
        metadata.insert("x-home-epoch", epoch.to_string().parse().unwrap());
        metadata.insert("grpc-timeout", timeout.parse().unwrap());
        request
    };
    let adjusted = wallets.adjust(adjust("epoch-7", 7, "5S")).await.unwrap();
    assert_eq!(adjusted.into_inner().balance.unwrap().points_available, 160);
    let fenced = wallets
        .adjust(adjust("epoch-6", 6, "5S"))
        .await
        .unwrap_err();
    assert_eq!(
        fenced.metadata().get("x-error-code").unwrap(),
        "REGION_FENCED",
        "{fenced:?}"
    );
    let late = wallets.adjust(adjust("late", 7, "1n")).await.unwrap_err();
    assert_ne!(late.code(), tonic::Code::Ok, "{late:?}");
    let (_, balance) = http_get_with(http, &format!("{api}/balance"), &auth).await;
    let balance: Value = serde_json::from_str(&balance).unwrap();
    assert_eq!(
        balance["points_available"], 160,
        "neither the fenced write nor the late one was written"
    );

    // The gateway's calls were checked and recorded by the member service's port as the
    // caller's, and the earn by the ledger's.
    let (_, audit) = http_get_with(http, "/v1/tenants/acme/audit?limit=100", &auth).await;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"]["action"].as_str())
        .collect();
    for action in [
        "member.v1.MemberService/RegisterMember",
        "member.v1.MemberService/RecordOrder",
        "ledger.v1.LedgerService/Earn",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
}
