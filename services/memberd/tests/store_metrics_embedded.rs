//! The store metrics of the default set-up, one process on the embedded stores: after the
//! README's journey every service's store reports its point reads (`op="get"`, by keyspace)
//! and its journal writes (`op="write"`) in `store_operation_duration_seconds`, the family
//! the chart's dashboards and alerts read on either store.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use serde_json::{Value, json};
use support::{http_get, http_post_with, http_put_with, start};

mod support;

async fn post(http: &str, token: &str, path: &str, key: &str, body: Value) -> Value {
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let (status, reply) = http_post_with(http, path, &headers, &body.to_string()).await;
    assert_eq!(status, 200, "POST {path}: {reply}");
    serde_json::from_str(&reply).unwrap()
}

/// The count of `store_operation_duration_seconds` of `service`'s `op` summed over the
/// tables it names, with those tables.
fn operations(page: &str, service: &str, op: &str) -> (f64, Vec<String>) {
    let (mut count, mut tables) = (0.0, Vec::new());
    for line in page.lines() {
        let Some(series) = line.strip_prefix("store_operation_duration_seconds_count{") else {
            continue;
        };
        let (labels, value) = series.rsplit_once("} ").unwrap();
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if label("service").as_deref() == Some(service) && label("op").as_deref() == Some(op) {
            count += value.parse::<f64>().unwrap();
            tables.extend(label("table"));
        }
    }
    (count, tables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_embedded_store_reports_its_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut memberd, addrs) = start(dir.path()).await;
    let http = addrs.http.as_str();
    let token = addrs.token().await;

    post(
        http,
        &token,
        "/v1/tenants",
        "tenant",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    let rules = json!({"points_per_unit": 1, "unit_minor": 100,
        "expiry": {"policy": "never"}, "hold_ttl_secs": 600, "expiring_soon_days": 30});
    post(
        http,
        &token,
        "/v1/tenants/acme/earning-rules",
        "rules",
        rules,
    )
    .await;
    let alice = "/v1/tenants/acme/members/alice";
    let profile = json!({"personal": {"phone": "13812345678"}, "tags": ["vip"]});
    post(http, &token, &format!("{alice}/profile"), "join", profile).await;
    let order = json!({"order_id": "A-1001", "total": 25_000});
    let recorded = post(http, &token, &format!("{alice}/orders"), "order", order).await;
    assert_eq!(recorded["points"], 250, "{recorded}");
    let coupon = json!({"id": "TEN", "name": "10% off, at most 5.00",
        "benefit": {"type": "percent_off", "basis_points": 1000, "cap": 500},
        "validity": {"days_from_issue": {"days": 30}}, "stacking": {"mode": "exclusive"}});
    let template = "/v1/tenants/acme/coupon-templates/TEN";
    let headers = format!("Authorization: Bearer {token}\r\n");
    let (status, saved) = http_put_with(http, template, &headers, &coupon.to_string()).await;
    assert_eq!(status, 200, "{saved}");
    let issue = json!({"member_id": "alice"});
    post(http, &token, &format!("{template}/coupons"), "issue", issue).await;

    let page = http_get(http, "/metrics").await;
    for service in ["identity", "member", "ledger", "campaign"] {
        let (writes, tables) = operations(&page, service, "write");
        assert!(writes >= 1.0, "{service} journal writes: {writes}\n{page}");
        assert_eq!(tables, ["journal"], "{service}");
        let (reads, keyspaces) = operations(&page, service, "get");
        assert!(reads >= 1.0, "{service} point reads: {reads}\n{page}");
        assert!(
            keyspaces.iter().all(|k| !k.is_empty() && k != "journal"),
            "{service} reads are labelled by keyspace: {keyspaces:?}"
        );
    }
    let (syncs, _) = operations(&page, "campaign", "sync");
    assert!(syncs >= 1.0, "the campaign store's group syncs: {syncs}");
    memberd.start_kill().unwrap();
    memberd.wait().await.unwrap();
}
