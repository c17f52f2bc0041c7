//! The platform as the Helm chart runs it in a region: every target its own process, two
//! replicas each, on one CQL cluster, one NATS server and one Redis server, every caller
//! balancing its calls over both replicas of the service it calls. The README's journey goes
//! through both gateways in turn. Each process serves the metric families its target is
//! watched by; each scheduler runs in exactly one replica of its service, and when that
//! replica is killed, the other takes the scheduler over once the lease lapses.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::testing::NatsServer;
use loyalty_gateway::testing::RedisServer;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::apart::{Process, start};
use support::{http_get, http_get_with, http_post_with};

mod support;

const CREDENTIAL: &str = "cmVwbGljYXMtc2VydmljZS1jcmVkZW50aWFsLWZvci10ZXN0cw==";
/// The identity replicas' one signing key (`openssl genpkey -algorithm ed25519`).
const SIGNING_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIAdaZBkBODGUouW2yFak+r+H1br9Jm5WCv+3gF60W2RY";

/// The schedulers and the service whose replicas run them.
const SCHEDULERS: [(&str, &str); 4] = [
    ("ledger-housekeeping", "ledger"),
    ("member-schedule", "member"),
    ("campaign-sweep", "campaign"),
    ("campaign-payout", "campaign"),
];

/// The metric families each target serves from its start (state it reports all along).
fn standing_families(target: &str) -> &'static [&'static str] {
    match target {
        "gateway" => &["redis_connected"],
        "identity" => &["nats_connected"],
        "ledger" | "member" => &[
            "nats_connected",
            "scheduler_lease_held",
            "events_outbox_backlog",
        ],
        "campaign" => &[
            "nats_connected",
            "scheduler_lease_held",
            "events_outbox_backlog",
            "events_redeliveries_total",
            "events_dead_letters_total",
        ],
        _ => &[],
    }
}

/// The families each target serves once it has worked (in either replica): requests and
/// their durations, the store's operations, caches, the audit log, the schedulers' rounds.
fn working_families(target: &str) -> &'static [&'static str] {
    match target {
        "gateway" => &["http_requests_total", "http_request_duration_seconds"],
        "identity" => &[
            "grpc_requests_total",
            "grpc_request_duration_seconds",
            "store_operation_duration_seconds",
            "audit_appends_total",
            "cache_lookups_total",
        ],
        "ledger" | "member" | "campaign" => &[
            "grpc_requests_total",
            "grpc_request_duration_seconds",
            "store_operation_duration_seconds",
            "scheduler_runs_total",
            "scheduler_run_duration_seconds",
        ],
        _ => &[],
    }
}

/// The samples of a Prometheus text page, by series (`name{labels}`).
fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Whether a page has a sample of `family` (a histogram's through its `_bucket` series).
fn has_family(samples: &BTreeMap<String, f64>, family: &str) -> bool {
    samples.keys().any(|series| {
        let name = series.split('{').next().unwrap_or(series);
        name == family || name == format!("{family}_bucket") || name == format!("{family}_count")
    })
}

async fn metrics_of(process: &Process) -> BTreeMap<String, f64> {
    samples(&http_get(&process.addrs.http, "/metrics").await)
}

/// `scheduler_lease_held` of `scheduler` on a page (0 when not reported).
fn lease_held(samples: &BTreeMap<String, f64>, scheduler: &str) -> f64 {
    let series = format!("scheduler_lease_held{{scheduler=\"{scheduler}\"}}");
    samples.get(&series).copied().unwrap_or(0.0)
}

async fn post(gateway: &str, token: &str, path: &str, key: &str, body: Value) -> Value {
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n");
    let (status, reply) = http_post_with(gateway, path, &headers, &body.to_string()).await;
    assert_eq!(status, 200, "POST {path} at {gateway}: {reply}");
    serde_json::from_str(&reply).unwrap()
}

async fn get(gateway: &str, token: &str, path: &str) -> Value {
    let headers = format!("Authorization: Bearer {token}\r\n");
    let (status, reply) = http_get_with(gateway, path, &headers).await;
    assert_eq!(status, 200, "GET {path} at {gateway}: {reply}");
    serde_json::from_str(&reply).unwrap()
}

/// Two replicas of `target`, and the endpoint list its callers balance over.
async fn pair(
    target: &str,
    shared: &[(&str, &str)],
    own: &[(&str, &str)],
) -> ([Process; 2], String) {
    let first = start(target, shared, own).await;
    let second = start(target, shared, own).await;
    let endpoints = format!("{},{}", first.addrs.grpc, second.addrs.grpc);
    ([first, second], endpoints)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_every_target_share_the_work_and_one_runs_each_scheduler() {
    let Some(cql) = support::cql::keyspaces("replicas").await else {
        return;
    };
    let nats = NatsServer::start().await;
    let redis = RedisServer::start().await;
    let (nats_url, redis_url) = (nats.url(), redis.url());
    let mut shared = cql.env();
    shared.extend([
        ("MEMBERD_EVENTS__BUS", "nats"),
        ("MEMBERD_EVENTS__NATS__URL", nats_url.as_str()),
        ("MEMBERD_IDENTITY__SERVICE_CREDENTIAL", CREDENTIAL),
        ("MEMBERD_IDENTITY__SIGNING_KEY", SIGNING_KEY),
        ("MEMBERD_CAMPAIGN__SWEEP_INTERVAL_SECS", "1"),
        ("MEMBERD_CAMPAIGN__PAYOUT_INTERVAL_MS", "200"),
        ("MEMBERD_MEMBER__SEGMENTS_CHECK_SECS", "1"),
    ]);
    let (identity, checks) = pair("identity", &shared, &[]).await;
    let checks = ("MEMBERD_IDENTITY_ENDPOINT", checks.as_str());
    let (ledger, ledgers) = pair("ledger", &shared, &[checks]).await;
    let ledgers = ("MEMBERD_LEDGER_ENDPOINT", ledgers.as_str());
    let (member, members) = pair("member", &shared, &[checks, ledgers]).await;
    // By name, as a headless Service's replicas are reached: the callers look the name up.
    let members = members.replace("127.0.0.1", "localhost");
    let members = ("MEMBERD_MEMBER_ENDPOINT", members.as_str());
    let (campaign, campaigns) = pair("campaign", &shared, &[checks, ledgers, members]).await;
    let campaigns = ("MEMBERD_CAMPAIGN_ENDPOINT", campaigns.as_str());
    let gateway_env = [
        checks,
        ledgers,
        members,
        campaigns,
        (
            "MEMBERD_GATEWAY__RATE_LIMITS__REDIS_URL",
            redis_url.as_str(),
        ),
    ];
    let (gateway, _) = pair("gateway", &shared, &gateway_env).await;
    let gateways = [gateway[0].addrs.http.clone(), gateway[1].addrs.http.clone()];
    let token = gateway[0].addrs.token().await;
    let at = |n: usize| gateways[n % 2].as_str();

    // The README's journey, each step at the other gateway than the one before.
    let tenant = json!({"id": "acme", "name": "Acme"});
    post(at(0), &token, "/v1/tenants", "tenant", tenant).await;
    let rules = json!({"points_per_unit": 1, "unit_minor": 100,
        "expiry": {"policy": "never"}, "hold_ttl_secs": 600, "expiring_soon_days": 30});
    post(
        at(1),
        &token,
        "/v1/tenants/acme/earning-rules",
        "rules",
        rules,
    )
    .await;
    let alice = "/v1/tenants/acme/members/alice";
    let profile = json!({"personal": {"phone": "13812345678"}, "tags": ["vip"]});
    post(at(2), &token, &format!("{alice}/profile"), "join", profile).await;
    let order = json!({"order_id": "A-1001", "total": 25_000});
    let recorded = post(at(3), &token, &format!("{alice}/orders"), "order", order).await;
    assert_eq!(recorded["points"], 250, "the order earned in the ledger");
    let hold = json!({"points": 100, "reference": "A-1002"});
    let hold = post(at(4), &token, &format!("{alice}/redemptions"), "hold", hold).await;
    let hold_id = hold["hold"]["hold_id"].as_str().unwrap();
    let capture = format!("{alice}/redemptions/{hold_id}/capture");
    post(at(5), &token, &capture, "capture", json!(null)).await;
    let at_once = json!({"points": 50, "reference": "A-1003", "capture": true});
    post(
        at(6),
        &token,
        &format!("{alice}/redemptions"),
        "take",
        at_once,
    )
    .await;
    let coupon = json!({"id": "TEN", "name": "10% off, at most 5.00",
        "benefit": {"type": "percent_off", "basis_points": 1000, "cap": 500},
        "validity": {"days_from_issue": {"days": 30}}, "stacking": {"mode": "exclusive"}});
    let headers = format!("Authorization: Bearer {token}\r\n");
    let template = "/v1/tenants/acme/coupon-templates/TEN";
    let (status, saved) =
        support::http_put_with(at(7), template, &headers, &coupon.to_string()).await;
    assert_eq!(status, 200, "{saved}");
    let issue = json!({"member_id": "alice"});
    post(
        at(8),
        &token,
        &format!("{template}/coupons"),
        "issue",
        issue,
    )
    .await;
    for n in 0..2 {
        let balance = get(at(n), &token, &format!("{alice}/balance")).await;
        assert_eq!(balance["points_available"], 100, "{balance}");
    }
    // An error, counted by its stable code at the gateway and at the ledger.
    let too_much = json!({"points": 1_000_000}).to_string();
    let headers = format!("Authorization: Bearer {token}\r\nIdempotency-Key: too-much\r\n");
    let redemptions = format!("{alice}/redemptions");
    let (status, _) = http_post_with(at(9), &redemptions, &headers, &too_much).await;
    assert_eq!(status, 422);

    // Every process serves the families its target is watched by.
    let targets = [
        ("gateway", &gateway),
        ("identity", &identity),
        ("ledger", &ledger),
        ("member", &member),
        ("campaign", &campaign),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut missing = Vec::new();
        for (target, replicas) in targets {
            let pages = [
                metrics_of(&replicas[0]).await,
                metrics_of(&replicas[1]).await,
            ];
            for (n, page) in pages.iter().enumerate() {
                for family in standing_families(target) {
                    if !has_family(page, family) {
                        missing.push(format!("{target} replica {n}: {family}"));
                    }
                }
            }
            for family in working_families(target) {
                if !pages.iter().any(|page| has_family(page, family)) {
                    missing.push(format!("{target} (either replica): {family}"));
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metric families missing: {missing:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let gateway_page = metrics_of(&gateway[0]).await;
    assert_eq!(gateway_page.get("redis_connected"), Some(&1.0));
    let refused = |page: &BTreeMap<String, f64>, label: &str| {
        page.keys()
            .any(|s| s.contains(&format!("{label}=\"INSUFFICIENT_POINTS\"")))
    };
    let gateway_pages = [gateway_page, metrics_of(&gateway[1]).await];
    assert!(gateway_pages.iter().any(|p| refused(p, "code")));
    let ledger_pages = [metrics_of(&ledger[0]).await, metrics_of(&ledger[1]).await];
    assert!(ledger_pages.iter().any(|p| refused(p, "error")));

    // Each scheduler runs in one replica: one holds its lease, the other never runs it.
    let services = [
        ("ledger", &ledger),
        ("member", &member),
        ("campaign", &campaign),
    ];
    let replicas_of = |service: &str| services.iter().find(|s| s.0 == service).unwrap().1;
    let mut holders = BTreeMap::new();
    for (scheduler, service) in SCHEDULERS {
        let [first, second] = replicas_of(service);
        let (a, b) = (metrics_of(first).await, metrics_of(second).await);
        let held = [lease_held(&a, scheduler), lease_held(&b, scheduler)];
        assert_eq!(held[0] + held[1], 1.0, "{scheduler}: held {held:?}");
        let idle = if held[0] == 1.0 { &b } else { &a };
        let ran_idle = idle
            .keys()
            .any(|s| s.starts_with("scheduler_runs_total") && s.contains(scheduler));
        assert!(
            !ran_idle,
            "{scheduler} ran in the replica without its lease"
        );
        holders.insert(scheduler, usize::from(held[0] != 1.0));
    }

    // The ledger replica running the housekeeping dies; the other takes it over once the
    // lease lapses (15 s), and runs it.
    let mut ledger = ledger;
    let holder = holders["ledger-housekeeping"];
    ledger[holder].kill().await;
    let took = taken_over(&ledger[1 - holder], "ledger-housekeeping", 40).await;
    eprintln!("the housekeeping moved to the surviving replica {took:.1} s after the kill");

    // The member replica running the member schedule is stopped as a rolling update stops a
    // pod: it gives the lease up, and the other takes it at its next ask (every 5 s), not
    // after the TTL.
    let mut member = member;
    let holder = holders["member-schedule"];
    member[holder].terminate().await;
    let took = taken_over(&member[1 - holder], "member-schedule", 10).await;
    eprintln!(
        "the member schedule moved to the other replica {took:.1} s after its holder stopped"
    );
    drop((identity, campaign, gateway, nats, redis));
}

/// Waits up to `within_secs` for `replica` to hold `scheduler`'s lease and to have run it;
/// how long that took, in seconds.
async fn taken_over(replica: &Process, scheduler: &str, within_secs: u64) -> f64 {
    let started = Instant::now();
    loop {
        let page = metrics_of(replica).await;
        let runs = page
            .iter()
            .filter(|(s, _)| s.starts_with("scheduler_runs_total") && s.contains(scheduler))
            .map(|(_, v)| *v)
            .sum::<f64>();
        if lease_held(&page, scheduler) == 1.0 && runs > 0.0 {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < Duration::from_secs(within_secs),
            "the other replica did not take {scheduler} over within {within_secs} s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
