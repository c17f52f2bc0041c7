//! The campaign service in a process of its own (`--target campaign`), beside the identity
//! service, the ledger, the member service and the gateway, each its own process, on one CQL
//! cluster and one NATS server. What the campaign service starts by itself reaches the others
//! with the service credential: a welcome campaign pays a new member from the member
//! service's event, and the birthday sweep reads the member service's birthdays and pays in
//! the ledger's process, and so does the payout of a double-points coupon's bonus and the
//! credit of a stored-value item a partner's API key ordered from the points mall (a key
//! that may not adjust wallets itself). Each of those calls is checked by the callee's guard
//! and recorded in the audit log as the platform service's, with the work that made it. A
//! campaign process without a service credential refuses to start, saying what to set.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::testing::NatsServer;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::apart::start;
use support::{http_get_with, http_post, http_post_with};

mod support;

const CREDENTIAL: &str = "c2VydmljZS1jcmVkZW50aWFsLWZvci10aGUtdGVzdHM=";
const PASSWORD: &str = "Approve-it-2027";
const WELCOME: i64 = 10;
const BIRTHDAY: i64 = 20;
/// 30.00 of rice at a point per 1.00, doubled.
const BONUS: i64 = 30;
/// The stored value a mall item credits: 20.00.
const MALL_CREDIT: i64 = 2_000;

async fn post(gateway: &str, token: &str, path: &str, key: &str, body: Value) -> Value {
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let (status, reply) = http_post_with(gateway, path, &headers, &body.to_string()).await;
    assert_eq!(status, 200, "POST {path}: {reply}");
    serde_json::from_str(&reply).unwrap()
}

async fn get(gateway: &str, token: &str, path: &str) -> (u16, Value) {
    let headers = format!("Authorization: Bearer {token}\r\n");
    let (status, reply) = http_get_with(gateway, path, &headers).await;
    (status, serde_json::from_str(&reply).unwrap_or(Value::Null))
}

async fn put(gateway: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let headers = format!("Authorization: Bearer {token}\r\n");
    let (status, reply) = support::http_put_with(gateway, path, &headers, &body.to_string()).await;
    (status, serde_json::from_str(&reply).unwrap_or(Value::Null))
}

/// Waits up to a minute for alice to have `points`.
async fn wait_for_points(gateway: &str, token: &str, points: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, balance) = get(gateway, token, "/v1/tenants/acme/members/alice/balance").await;
        if status == 200 && balance["points_available"].as_i64() == Some(points) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "alice did not reach {points} points within a minute: {status} {balance}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A welcome and a birthday campaign, written by the administrator and approved by another.
async fn campaigns(gateway: &str, admin: &str) {
    let staff = json!({"username": "checker", "password": PASSWORD,
        "roles": [{"role": "tenant_admin"}]});
    post(gateway, admin, "/v1/tenants/acme/staff", "checker", staff).await;
    let login = json!({"tenant": "acme", "username": "checker", "password": PASSWORD});
    let reply = http_post(gateway, "/v1/auth/login", &login.to_string()).await;
    let checker: Value = serde_json::from_str(&reply).unwrap();
    let checker = checker["access_token"].as_str().unwrap().to_string();
    for (id, trigger, points) in [
        ("WELCOME", json!({"type": "welcome"}), WELCOME),
        ("BDAY", json!({"type": "birthday"}), BIRTHDAY),
    ] {
        let campaign = json!({"id": id, "name": id, "audience": {"type": "everyone"},
            "variants": [{"id": "gift", "weight": 1, "reward": {"type": "points", "points": points}}],
            "schedule": {"starts": "2020-01-01", "time_zone": "UTC"}, "trigger": trigger});
        let base = "/v1/tenants/acme/campaigns";
        post(gateway, admin, base, &format!("save-{id}"), campaign).await;
        let submit = format!("{base}/{id}/submit");
        post(gateway, admin, &submit, &format!("submit-{id}"), json!({})).await;
        let approve = format!("{base}/{id}/approval");
        post(
            gateway,
            &checker,
            &approve,
            &format!("approve-{id}"),
            json!({}),
        )
        .await;
    }
}

/// A stored-value item of 20.00 for 15 points, ordered and confirmed with a partner's API
/// key; waits up to a minute for alice's bonus stored value.
async fn mall_credit(gateway: &str, admin: &str) {
    let item = json!({"id": "CARD", "kind": {"kind": "stored_value", "amount": MALL_CREDIT},
        "name": {"zh": "储值卡", "en": "Gift card"}, "category": "cards",
        "price": {"points": 15}, "stock": {"*": 10}});
    let (status, saved) = put(gateway, admin, "/v1/tenants/acme/mall/items/CARD", item).await;
    assert_eq!(status, 200, "{saved}");
    let request = json!({"name": "e-shop", "roles": ["partner"]});
    let created = post(
        gateway,
        admin,
        "/v1/tenants/acme/api-keys",
        "e-shop",
        request,
    )
    .await;
    let partner = created["key"].as_str().unwrap();
    let orders = "/v1/tenants/acme/mall/items/CARD/orders";
    let with_key = |key: &str| format!("x-api-key: {partner}\r\nIdempotency-Key: {key}\r\n");
    let order = json!({"member_id": "alice"}).to_string();
    let (status, placed) = http_post_with(gateway, orders, &with_key("card-1"), &order).await;
    assert_eq!(status, 200, "{placed}");
    let confirm = format!("{orders}/card-1/confirm");
    let (status, done) = http_post_with(gateway, &confirm, &with_key("confirm-1"), "{}").await;
    assert_eq!(status, 200, "{done}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, balance) = get(gateway, admin, "/v1/tenants/acme/members/alice/balance").await;
        if balance["bonus_value"].as_i64() == Some(MALL_CREDIT) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no credit within a minute: {balance}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_service_apart_pays_triggers_and_birthdays_in_the_ledgers_process() {
    let Some(cql) = support::cql::keyspaces("apart").await else {
        return;
    };
    let nats = NatsServer::start().await;
    let url = nats.url();
    let mut shared = cql.env();
    shared.extend([
        ("MEMBERD_EVENTS__BUS", "nats"),
        ("MEMBERD_EVENTS__NATS__URL", url.as_str()),
        ("MEMBERD_IDENTITY__SERVICE_CREDENTIAL", CREDENTIAL),
        ("MEMBERD_CAMPAIGN__SWEEP_INTERVAL_SECS", "1"),
        ("MEMBERD_CAMPAIGN__PAYOUT_INTERVAL_MS", "100"),
    ]);
    let identity = start("identity", &shared, &[]).await;
    let checks = identity.addrs.grpc.clone();
    let ledger = start("ledger", &shared, &[("MEMBERD_IDENTITY_ENDPOINT", &checks)]).await;
    let ledger_at = ("MEMBERD_LEDGER_ENDPOINT", ledger.addrs.grpc.as_str());
    let member = start(
        "member",
        &shared,
        &[("MEMBERD_IDENTITY_ENDPOINT", &checks), ledger_at],
    )
    .await;
    let member_at = ("MEMBERD_MEMBER_ENDPOINT", member.addrs.grpc.as_str());
    let campaign = start(
        "campaign",
        &shared,
        &[("MEMBERD_IDENTITY_ENDPOINT", &checks), ledger_at, member_at],
    )
    .await;
    let gateway = start(
        "gateway",
        &shared,
        &[
            ("MEMBERD_IDENTITY_ENDPOINT", &checks),
            ledger_at,
            member_at,
            ("MEMBERD_CAMPAIGN_ENDPOINT", &campaign.addrs.grpc),
        ],
    )
    .await;
    let http = gateway.addrs.http.as_str();
    let admin = gateway.addrs.token().await;
    post(
        http,
        &admin,
        "/v1/tenants",
        "acme",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    campaigns(http, &admin).await;

    // Alice joins on her birthday: the member service's process announces her, the campaign
    // service's welcomes her, and its sweep finds her birthday; both pay in the ledger's.
    let today = chrono::Utc::now()
        .date_naive()
        .format("1990-%m-%d")
        .to_string();
    let profile = json!({"personal": {"phone": "13812345678", "birthday": today}});
    let alice = "/v1/tenants/acme/members/alice";
    post(http, &admin, &format!("{alice}/profile"), "join", profile).await;
    wait_for_points(http, &admin, WELCOME + BIRTHDAY).await;

    // A double-points coupon redeemed at the till: its bonus is paid by the payout round.
    let double = json!({"id": "DOUBLE", "name": "Double points on food",
        "benefit": {"type": "points_multiplier", "multiplier_percent": 200},
        "validity": {"days_from_issue": {"days": 30}}, "stacking": {"mode": "exclusive"}});
    let (status, saved) = put(
        http,
        &admin,
        "/v1/tenants/acme/coupon-templates/DOUBLE",
        double,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let templates = "/v1/tenants/acme/coupon-templates/DOUBLE/coupons";
    let issued = post(
        http,
        &admin,
        templates,
        "double",
        json!({"member_id": "alice"}),
    )
    .await;
    let cart = json!({"member_id": "alice", "store_id": "s01", "lines": [
        {"line_id": "1", "sku": "RICE", "category": "food", "quantity": 2, "unit_price": 1500}]});
    let redeemed = json!({"cart": cart, "codes": [issued["code"]], "order_id": "POS-1"});
    let redeemed = post(
        http,
        &admin,
        "/v1/tenants/acme/coupon-redemptions",
        "pos-1",
        redeemed,
    )
    .await;
    assert_eq!(redeemed["coupons"][0]["bonus_points"], BONUS);
    wait_for_points(http, &admin, WELCOME + BIRTHDAY + BONUS).await;

    // A partner's e-shop orders stored value from the points mall for alice: its key may
    // hold and take points, not adjust wallets, so the credit is the service's own work.
    mall_credit(http, &admin).await;

    // The ledger's guard checked those payments and recorded them as the platform service's,
    // each with the work that made it.
    let (_, audit) = get(http, &admin, "/v1/tenants/acme/audit?limit=1000").await;
    let by_platform: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["actor"] == "service:memberd")
        .map(|e| {
            let request = e["request_id"].as_str().unwrap();
            (e["action"].as_str().unwrap(), request)
        })
        .collect();
    let paid_by = |work: &str| {
        by_platform.iter().any(|(action, request)| {
            *action == "ledger.v1.LedgerService/Adjust" && request.starts_with(work)
        })
    };
    assert!(paid_by("campaign-trigger-"), "{by_platform:?}");
    assert!(paid_by("campaign-sweep-"), "{by_platform:?}");
    assert!(paid_by("campaign-payout-"), "{by_platform:?}");
    let credited_by_payout = by_platform.iter().any(|(action, request)| {
        *action == "ledger.v1.LedgerService/AdjustBonusValue"
            && request.starts_with("campaign-payout-")
    });
    assert!(credited_by_payout, "{by_platform:?}");
    drop((identity, ledger, member, campaign, nats));
}

#[tokio::test]
async fn a_campaign_process_without_a_service_credential_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_memberd"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("MEMBERD_TARGET", "campaign")
        .env("MEMBERD_EVENTS__BUS", "embedded")
        .env("MEMBERD_HTTP_ADDR", "127.0.0.1:0")
        .env("MEMBERD_GRPC_ADDR", "127.0.0.1:0")
        .env("MEMBERD_IDENTITY_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("MEMBERD_IDENTITY__SERVICE_CREDENTIAL")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("memberd stops at once")
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("MEMBERD_IDENTITY__SERVICE_CREDENTIAL"),
        "{said}"
    );
}
