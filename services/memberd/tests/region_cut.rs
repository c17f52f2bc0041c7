//! Two regions cut apart while each still reaches the control keyspace (decision 0019): with
//! synchronous writes neither home could write, and neither may take the other over while
//! both renew. The region whose name sorts last (`b`) stops renewing, `a` takes its tenants
//! over once its lease lapses, and writes for them succeed in `a`: the time from the cut to
//! the first is printed. When the cut heals, `b` is fenced (its lease row is `a`'s) and
//! forwards its old tenants' writes to `a`. While the cut lasts, `b` answers `/readyz` with
//! 503 and why, so that the global load balancer sends it no clients it could not serve.
//!
//! Here the regions share one datacenter, so the cut is of the gateways' link (their health
//! checks and forwarding, through a relay the test cuts); the database's own link is not cut.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_scylla::test_cluster::{SKIP_REASON, TestCluster};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::link::Link;
use support::two_regions::{TwoRegions, post};
use support::{http_exchange, log_tail};

mod support;

/// POSTs: the status and the region that answered.
async fn post_in(http: &str, token: &str, path: &str, key: &str, body: Value) -> (u16, String) {
    let (status, region, _) = post(http, token, path, key, body).await;
    (status, region)
}

/// The value of the unlabelled series `name` on a `/metrics` page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Posts with fresh keys until one is answered 200, or `within` passes: the last answer.
async fn until_written(
    http: &str,
    token: &str,
    path: &str,
    body: &Value,
    within: Duration,
) -> (u16, String) {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let key = format!("{}-{tries}", started.elapsed().as_nanos());
        let answer = post_in(http, token, path, &key, body.clone()).await;
        if answer.0 == 200 || started.elapsed() > within {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cut_between_the_regions_one_yields_and_the_other_writes_for_both() {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("region cut: skipped: {SKIP_REASON}");
        return;
    };
    let mut regions = TwoRegions::new(&cluster, "regioncut", 1_000);
    let (to_a, to_b) = (
        Link::to(&regions.http_a).await,
        Link::to(&regions.http_b).await,
    );
    // Each region reaches the other's gateway through its link.
    regions.set_env(
        "a",
        "MEMBERD_REGION__PEER_URL",
        &format!("http://{}", to_b.addr),
    );
    regions.set_env(
        "b",
        "MEMBERD_REGION__PEER_URL",
        &format!("http://{}", to_a.addr),
    );
    regions.region(&["place", "acme", "a"]);
    regions.region(&["place", "initech", "b"]);
    regions.region(&["place", "*", "a"]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_memberd_a, addrs_a) = regions.start_a(dir_a.path()).await;
    let (_memberd_b, addrs_b) = regions.start_b(dir_b.path()).await;
    let token = addrs_a.token().await;
    for (tenant, name) in [("acme", "Acme"), ("initech", "Initech")] {
        let (status, _) = post_in(
            &addrs_a.http,
            &token,
            "/v1/tenants",
            &format!("tenant-{tenant}"),
            json!({"id": tenant, "name": name}),
        )
        .await;
        assert_eq!(status, 200, "{tenant}");
    }
    // initech's wallet, written in its home, b, until b has its lease and the homes.
    let wallet = "/v1/tenants/initech/members/alice/wallet";
    let opened = until_written(
        &addrs_b.http,
        &token,
        wallet,
        &json!({}),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        opened,
        (200, "b".to_string()),
        "{}",
        log_tail(dir_b.path(), 30)
    );
    // Both regions have seen each other ready (one health check every half second).
    tokio::time::sleep(Duration::from_secs(2)).await;

    to_a.cut();
    to_b.cut();
    let cut = Instant::now();
    // The links drop the connections they carry within 50 ms: a write sent sooner could
    // still be forwarded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let adjust = "/v1/tenants/initech/members/alice/adjustments";
    let earn = json!({"points": 10, "reason": "goodwill"});
    let written = until_written(
        &addrs_a.http,
        &token,
        adjust,
        &earn,
        Duration::from_secs(30),
    )
    .await;
    let took = cut.elapsed();
    assert_eq!(
        written,
        (200, "a".to_string()),
        "b's tenant was not written in a after the cut\nregion b's log:\n{}\nregion a's log:\n{}",
        log_tail(dir_b.path(), 40),
        log_tail(dir_a.path(), 40)
    );
    eprintln!(
        "region cut: b's tenant written in a {:.1} s after the cut",
        took.as_secs_f64()
    );
    // The health checks (1 s here), b's lease lapsing (at most 5 s), and a take-over.
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(
        log_tail(dir_b.path(), 400).contains("this region stops renewing its own"),
        "{}",
        log_tail(dir_b.path(), 40)
    );
    assert!(
        regions.region(&["status"]).contains("initech\ta\n"),
        "initech moved to a"
    );
    // b says why it is not ready, and the load balancer sends it no clients.
    let (status, _, why) = http_exchange(&addrs_b.http, "GET", "/readyz", "", "").await;
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("stopped renewing its own"), "{why}");
    // And its metrics, which page someone (MemberdRegionYielding, MemberdRegionLeaseLost;
    // MemberdRegionFailedOver in a).
    let (_, _, metrics_b) = http_exchange(&addrs_b.http, "GET", "/metrics", "", "").await;
    for (name, value) in [("region_yielding", 1.0), ("region_lease_held", 0.0)] {
        assert_eq!(
            sample(&metrics_b, name),
            Some(value),
            "{name}:\n{metrics_b}"
        );
    }
    let (_, _, metrics_a) = http_exchange(&addrs_a.http, "GET", "/metrics", "", "").await;
    let expected = [
        ("region_yielding", 0.0),
        ("region_lease_held", 1.0),
        ("region_failovers_total", 1.0),
    ];
    for (name, value) in expected {
        assert_eq!(
            sample(&metrics_a, name),
            Some(value),
            "{name}:\n{metrics_a}"
        );
    }
    // acme, homed in a all along, is written there too.
    let acme = post_in(
        &addrs_a.http,
        &token,
        "/v1/tenants/acme/members/bob/wallet",
        "acme-open",
        json!({}),
    )
    .await;
    assert_eq!(acme, (200, "a".to_string()));

    // Healed: b renews again, finds its row taken, and forwards initech's writes to a.
    to_a.heal();
    to_b.heal();
    let forwarded = until_written(
        &addrs_b.http,
        &token,
        adjust,
        &earn,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        forwarded,
        (200, "a".to_string()),
        "{}",
        log_tail(dir_b.path(), 30)
    );
}
