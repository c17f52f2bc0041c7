//! Two regions on the CQL cluster `SCYLLA_NODES` names (skipped without one), each a memberd
//! of its own with `[region]` set (decision 0019): a write for a tenant homed in the other
//! region is forwarded there and answered from there; when that region is killed (`kill -9`),
//! the surviving one takes its tenants over on its own once the lost region's lease lapses,
//! and writes for them succeed in the survivor: the time from the kill to the first success
//! is printed (the RTO). A retry with the first write's idempotency key then gets the first
//! answer, from the other region.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_scylla::test_cluster::{SKIP_REASON, TestCluster, memberd_env, unique_prefix};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{http_exchange, log_tail, start_with};

mod support;

/// Both regions' identity signs with this key (`openssl genpkey -algorithm ed25519`), so a
/// token from one is accepted in the other.
const SIGNING_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIAdaZBkBODGUouW2yFak+r+H1br9Jm5WCv+3gF60W2RY";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// POSTs and returns the status, the region that answered (`answered-in-region`), and the
/// body.
async fn post(http: &str, token: &str, path: &str, key: &str, body: Value) -> (u16, String, Value) {
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let (status, head, body) = http_exchange(http, "POST", path, &headers, &body.to_string()).await;
    let region = head
        .lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("answered-in-region: ").map(str::to_string)
        })
        .unwrap_or_default();
    (
        status,
        region,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_home_and_the_survivor_takes_a_lost_regions_tenants_over() {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("two regions: skipped: {SKIP_REASON}");
        return;
    };
    let config = cluster.config(&unique_prefix("regions"));
    let shared = memberd_env(&config);
    let migrate = Command::new(env!("CARGO_BIN_EXE_memberd"))
        .args(["migrate"])
        .envs(shared.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let region = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_memberd"))
            .arg("region")
            .args(args)
            .envs(shared.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    region(&["place", "acme", "a"]);

    let (port_a, port_b) = (free_port(), free_port());
    let (http_a, http_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));
    let mut env: Vec<(String, String)> = shared.clone();
    env.push((
        "MEMBERD_MEMBER__MASTER_KEY".into(),
        support::cql::MASTER_KEY.into(),
    ));
    env.push(("MEMBERD_IDENTITY__SIGNING_KEY".into(), SIGNING_KEY.into()));
    env.push(("MEMBERD_REGION__FAILOVER_AFTER_MS".into(), "1000".into()));
    // The keeper's renewals and take-overs, in the log a failure shows.
    env.push((
        "MEMBERD_TELEMETRY__FILTER".into(),
        "warn,memberd::region_keeper=debug".into(),
    ));
    let in_region = |me: &str, peer: &str, http: &str, peer_http: &str| {
        let mut env = env.clone();
        env.push(("MEMBERD_HTTP_ADDR".into(), http.into()));
        env.push(("MEMBERD_REGION__NAME".into(), me.into()));
        env.push(("MEMBERD_REGION__PEER".into(), peer.into()));
        env.push((
            "MEMBERD_REGION__PEER_URL".into(),
            format!("http://{peer_http}"),
        ));
        env
    };
    let env_a = in_region("a", "b", &http_a, &http_b);
    let env_b = in_region("b", "a", &http_b, &http_a);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut memberd_a, addrs_a) = start_with(dir_a.path(), &as_refs(&env_a)).await;
    let (_memberd_b, addrs_b) = start_with(dir_b.path(), &as_refs(&env_b)).await;
    let token = addrs_a.token().await;

    // The tenant and its member, then an earn sent to region b: forwarded to a, its home.
    let (status, _, _) = post(
        &addrs_a.http,
        &token,
        "/v1/tenants",
        "tenant-acme",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    assert_eq!(status, 200);
    let alice = "/v1/tenants/acme/members/alice";
    let wait = Instant::now();
    let opened = loop {
        // Until region b has renewed its lease and read the homes (about a second).
        let opened = post(
            &addrs_b.http,
            &token,
            &format!("{alice}/wallet"),
            "open",
            json!({}),
        )
        .await;
        if opened.0 == 200 || wait.elapsed() > Duration::from_secs(15) {
            break opened;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((opened.0, opened.1.as_str()), (200, "a"), "{opened:?}");
    let earn = json!({"points": 100, "reason": "welcome"});
    let adjust = format!("{alice}/adjustments");
    let first = post(&addrs_b.http, &token, &adjust, "earn-1", earn.clone()).await;
    assert_eq!(
        (first.0, first.1.as_str()),
        (200, "a"),
        "forwarded to the home: {first:?}"
    );

    // Region a is lost; b takes acme over once a's lease has lapsed.
    memberd_a.start_kill().unwrap();
    memberd_a.wait().await.unwrap();
    let lost = Instant::now();
    let mut tries = 0;
    let taken = loop {
        tries += 1;
        let key = format!("earn-after-{tries}");
        let answer = post(&addrs_b.http, &token, &adjust, &key, earn.clone()).await;
        if answer.0 == 200 || lost.elapsed() > Duration::from_secs(30) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rto = lost.elapsed();
    assert_eq!(
        (taken.0, taken.1.as_str()),
        (200, "b"),
        "{taken:?}\nregion b's log:\n{}\nregion a's log:\n{}",
        log_tail(dir_b.path(), 60),
        log_tail(dir_a.path(), 20)
    );
    eprintln!(
        "two regions: RTO {:.1} s from the kill to the first write in b",
        rto.as_secs_f64()
    );
    assert!(rto < Duration::from_secs(10), "RTO {rto:?}");
    let status = region(&["status"]);
    assert!(status.contains("acme\tb\n"), "{status}");

    // The first earn, retried with its key in the surviving region: its first answer.
    let again = post(&addrs_b.http, &token, &adjust, "earn-1", earn).await;
    assert_eq!(again.0, 200, "{again:?}");
    assert_eq!(again.2["replayed"], true, "{again:?}");
    for field in ["entries", "balance"] {
        assert_eq!(
            again.2[field], first.2[field],
            "the first answer, not a second earn"
        );
    }
}
