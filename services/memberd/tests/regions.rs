//! Two regions on the CQL cluster `SCYLLA_NODES` names (skipped without one), each a memberd
//! of its own with `[region]` set (decision 0019): a write for a tenant homed in the other
//! region is forwarded there and answered from there; when that region is killed (`kill -9`),
//! the surviving one takes its tenants over on its own once the lost region's lease lapses,
//! and writes for them succeed in the survivor: the time from the kill to the first success
//! is printed (the RTO). A retry with the first write's idempotency key then gets the first
//! answer, from the other region.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::model::WalletKey;
use loyalty_ledger::store::WalletRepository;
use loyalty_ledger::store::cql::ScyllaLedgerStore;
use loyalty_scylla::test_cluster::{SKIP_REASON, TestCluster};
use serde_json::json;
use std::time::{Duration, Instant};
use support::two_regions::{TwoRegions, post};
use support::{http_exchange, log_tail};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_follow_the_home_and_the_survivor_takes_a_lost_regions_tenants_over() {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("two regions: skipped: {SKIP_REASON}");
        return;
    };
    let mut regions = TwoRegions::new(&cluster, "regions", 1_000);
    // Region a publishes no events into its own stream, so its triggers see none: a member
    // registered in a is then certainly not yet welcomed when a is lost (b's stream has
    // every event, as both regions' publishers read the same change log).
    regions.set_env("a", "MEMBERD_EVENTS__DISABLE_PUBLISHER", "true");
    regions.region(&["place", "acme", "a"]);
    // The platform's own writes (tenants created, logins) are the platform tenant's.
    regions.region(&["place", "*", "a"]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut memberd_a, addrs_a) = regions.start_a(dir_a.path()).await;
    let (_memberd_b, addrs_b) = regions.start_b(dir_b.path()).await;
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
    let initech = json!({"id": "initech", "name": "Initech"});
    let created = post(
        &addrs_b.http,
        &token,
        "/v1/tenants",
        "tenant-initech",
        initech,
    )
    .await;
    assert_eq!(
        (created.0, created.1.as_str()),
        (200, "a"),
        "a platform write is forwarded to the platform's home: {created:?}"
    );
    let earn = json!({"points": 100, "reason": "welcome"});
    let adjust = format!("{alice}/adjustments");
    let first = post(&addrs_b.http, &token, &adjust, "earn-1", earn.clone()).await;
    assert_eq!(
        (first.0, first.1.as_str()),
        (200, "a"),
        "forwarded to the home: {first:?}"
    );
    // The write carried acme's home epoch into the ledger's store, which keeps it.
    let wallets = {
        let cluster = loyalty_scylla::session::connect(&regions.config)
            .await
            .unwrap();
        let keyspace = regions.config.keyspace("ledger");
        ScyllaLedgerStore::open(std::sync::Arc::new(cluster), &keyspace)
            .await
            .unwrap()
    };
    let wallet = WalletKey {
        tenant: TenantId::parse("acme").unwrap(),
        member: MemberId::parse("alice").unwrap(),
    };
    let epoch_of_wallet = || async { wallets.head(&wallet).await.unwrap().unwrap().epoch };
    let epoch_in_a = epoch_of_wallet().await;
    assert!(epoch_in_a > 0, "the wallet was written under no epoch");

    // Reads are served where they arrive, saying how far behind the home they may be: not at
    // all in the home, by the measured heartbeat lag in the other region.
    let staleness = |http: String| {
        let (token, balance) = (token.clone(), format!("{alice}/balance"));
        async move {
            let auth = format!("Authorization: Bearer {token}\r\n");
            let (status, head, _) = http_exchange(&http, "GET", &balance, &auth, "").await;
            assert_eq!(status, 200, "{head}");
            head.lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("staleness-bound-ms: ").map(str::to_string)
                })
                .unwrap_or_default()
        }
    };
    assert_eq!(staleness(addrs_a.http.clone()).await, "0");
    let wait = Instant::now();
    let behind = loop {
        let bound = staleness(addrs_b.http.clone()).await;
        if bound != "unknown" || wait.elapsed() > Duration::from_secs(5) {
            break bound;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let behind: u64 = behind.parse().unwrap_or_else(|_| panic!("{behind:?}"));
    assert!(
        (1_000..10_000).contains(&behind),
        "the heartbeat interval and a little more: {behind} ms"
    );
    eprintln!("two regions: reads of a's tenant in b: Staleness-Bound-Ms {behind}");

    // A session ended in region a is refused in region b too, within the resync interval
    // (2 s here) and the replication lag.
    let session = addrs_a.token().await;
    let balance = format!("{alice}/balance");
    let get_in_b = |token: String| {
        let (http, balance) = (addrs_b.http.clone(), balance.clone());
        async move {
            let auth = format!("Authorization: Bearer {token}\r\n");
            http_exchange(&http, "GET", &balance, &auth, "").await.0
        }
    };
    assert_eq!(
        get_in_b(session.clone()).await,
        200,
        "a's token is accepted in b"
    );
    let auth = format!("Authorization: Bearer {session}\r\n");
    let (status, _, _) = http_exchange(&addrs_a.http, "POST", "/v1/auth/logout", &auth, "").await;
    assert_eq!(status, 204);
    let ended = Instant::now();
    while get_in_b(session.clone()).await != 401 {
        assert!(
            ended.elapsed() < Duration::from_secs(6),
            "the session ended in a was still accepted in b after 6 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "two regions: a logout in a took effect in b after {:.1} s",
        ended.elapsed().as_secs_f64()
    );

    // A welcome campaign in acme, and bob registered in a: not welcomed before a is lost.
    welcome_campaign(&addrs_a.http, &token).await;
    let bob = "/v1/tenants/acme/members/bob";
    let profile = json!({"personal": {"phone": "13900000001"}});
    let joined = post(
        &addrs_a.http,
        &token,
        &format!("{bob}/profile"),
        "join-bob",
        profile,
    )
    .await;
    assert_eq!(joined.0, 200, "{joined:?}");

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
    let status = regions.region(&["status"]);
    assert!(status.contains("acme\tb\n"), "{status}");
    // The take-over moved acme to b under a new epoch, which b's writes carry: a write still
    // accepted under a's epoch would now be refused by the wallet.
    let epoch_in_b = epoch_of_wallet().await;
    assert!(
        status.starts_with(&format!("homes at epoch {epoch_in_b}\n")) && epoch_in_b > epoch_in_a,
        "the wallet's epoch went from {epoch_in_a} to {epoch_in_b}:\n{status}"
    );
    let hooli = json!({"id": "hooli", "name": "Hooli"});
    let created = post(&addrs_b.http, &token, "/v1/tenants", "tenant-hooli", hooli).await;
    assert_eq!(
        (created.0, created.1.as_str()),
        (200, "b"),
        "the platform is homed in b with a's other tenants: {created:?}"
    );
    // With a failed over, b's ledger writes at LOCAL_QUORUM, not EACH_QUORUM.
    let wait = Instant::now();
    while !log_tail(dir_b.path(), 200).contains("ledger writes now at LocalQuorum") {
        assert!(
            wait.elapsed() < Duration::from_secs(5),
            "the ledger's writes stayed at EACH_QUORUM:\n{}",
            log_tail(dir_b.path(), 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // b covers for a: it reads its own stream again from where a's triggers had settled
    // every event (nowhere here), and welcomes bob, whose event it had passed by.
    let wait = Instant::now();
    let welcomed = loop {
        let points = points_of(&addrs_b.http, &token, bob).await;
        if points == Some(WELCOME) || wait.elapsed() > Duration::from_secs(20) {
            break points;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        welcomed,
        Some(WELCOME),
        "bob was not welcomed by b:\n{}",
        log_tail(dir_b.path(), 40)
    );
    eprintln!(
        "two regions: b welcomed a's member {:.1} s after the loss",
        lost.elapsed().as_secs_f64()
    );

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

const WELCOME: i64 = 10;

/// A running campaign of acme's giving every member who registers `WELCOME` points, saved by
/// the platform's administrator and approved by a second member of staff.
async fn welcome_campaign(http: &str, admin: &str) {
    let password = "Approve-it-2027";
    let staff = json!({"username": "checker", "password": password,
        "roles": [{"role": "tenant_admin"}]});
    let added = post(
        http,
        admin,
        "/v1/tenants/acme/staff",
        "staff-checker",
        staff,
    )
    .await;
    assert_eq!(added.0, 200, "{added:?}");
    let login = json!({"tenant": "acme", "username": "checker", "password": password});
    let reply = support::http_post(http, "/v1/auth/login", &login.to_string()).await;
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let checker = reply["access_token"].as_str().unwrap().to_string();
    let campaign = json!({"id": "WELCOME", "name": "Welcome", "audience": {"type": "everyone"},
        "variants": [{"id": "gift", "weight": 1, "reward": {"type": "points", "points": WELCOME}}],
        "schedule": {"starts": "2020-01-01", "time_zone": "UTC"}, "trigger": {"type": "welcome"}});
    let base = "/v1/tenants/acme/campaigns";
    let steps = [
        (admin, base.to_string(), "save-welcome", campaign),
        (
            admin,
            format!("{base}/WELCOME/submit"),
            "submit-welcome",
            json!({}),
        ),
        (
            &checker,
            format!("{base}/WELCOME/approval"),
            "approve-welcome",
            json!({}),
        ),
    ];
    for (token, path, key, body) in steps {
        let done = post(http, token, &path, key, body).await;
        assert_eq!(done.0, 200, "POST {path}: {done:?}");
    }
}

/// `member`'s points available, read in the region at `http` (None: no wallet).
async fn points_of(http: &str, token: &str, member: &str) -> Option<i64> {
    let auth = format!("Authorization: Bearer {token}\r\n");
    let path = format!("{member}/balance");
    let (status, _, body) = http_exchange(http, "GET", &path, &auth, "").await;
    let body: serde_json::Value = serde_json::from_str(&body).ok()?;
    (status == 200).then(|| body["points_available"].as_i64())?
}
