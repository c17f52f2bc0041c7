//! The identity change feed on a real NATS server (a throwaway `nats-server` per test): two
//! replicas of the identity service on one store hear each other's changes at once, and one
//! that was cut off from NATS resyncs when it is back; in two regions, each in an account of
//! its own, a replica hears the other region's changes through the accounts' imports.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::SystemClock;
use loyalty_common::ids::TenantId;
use loyalty_events::config::NatsConfig;
use loyalty_events::testing::NatsServer;
use loyalty_identity::password::Passwords;
use loyalty_identity::permissions::STAFF_WRITE;
use loyalty_identity::service::{IdentityConfig, IdentityService, NewStaff};
use loyalty_identity::store::embedded::EmbeddedIdentityStore;
use memberd::identity_feed;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const PASSWORD: &str = "plum-kettle-orbit-42";

async fn replica_without_feed(store: &EmbeddedIdentityStore) -> Arc<IdentityService> {
    IdentityService::start(
        store.ports(),
        Arc::new(SystemClock::default()),
        IdentityConfig::default(),
        Passwords::for_tests(),
    )
    .await
    .unwrap()
}

async fn replica(
    store: &EmbeddedIdentityStore,
    nats: &NatsServer,
    stop: &watch::Receiver<bool>,
) -> Arc<IdentityService> {
    let config = NatsConfig {
        url: nats.url(),
        max_reconnect_delay_ms: 200,
        ..NatsConfig::default()
    };
    replica_on(store, config, stop).await
}

async fn replica_on(
    store: &EmbeddedIdentityStore,
    config: NatsConfig,
    stop: &watch::Receiver<bool>,
) -> Arc<IdentityService> {
    let service = replica_without_feed(store).await;
    // An hour: no timed resync during the test.
    let hour = Duration::from_secs(3600);
    identity_feed::follow(Arc::clone(&service), &config, hour, stop.clone())
        .await
        .unwrap();
    service
}

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within five seconds");
}

/// Tenant `acme` with its administrator `ann`, made on `service`; ann's principal.
async fn acme_admin(service: &IdentityService) -> loyalty_identity::service::Principal {
    let root_password = service
        .ensure_platform_admin("root", Some(PASSWORD))
        .await
        .unwrap();
    assert!(root_password.is_some());
    let login = service
        .login("*", "root", PASSWORD, None, "r")
        .await
        .unwrap();
    let root = service.authenticate(&login.access_token).await.unwrap();
    let acme = TenantId::parse("acme").unwrap();
    service
        .create_tenant(&root, &acme, "Acme", "r")
        .await
        .unwrap();
    let mut ann = NewStaff::new("ann", &[("tenant_admin", "acme")]);
    ann.password = Some(PASSWORD.into());
    service.create_staff(&root, "acme", ann, "r").await.unwrap();
    let login = service
        .login("acme", "ann", PASSWORD, None, "r")
        .await
        .unwrap();
    service.authenticate(&login.access_token).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_hear_each_others_changes_over_nats() {
    let mut nats = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedIdentityStore::open(dir.path()).unwrap();
    let (_stop, stop) = watch::channel(false);
    let one = replica(&store, &nats, &stop).await;
    let ann = acme_admin(&one).await;
    let two = replica(&store, &nats, &stop).await;
    let acme = TenantId::parse("acme").unwrap();

    let key = one
        .create_api_key(&ann, &acme, "crm", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    let partner = two.authenticate(&key.key).await.unwrap();
    assert!(
        two.authorize(&partner, "acme", STAFF_WRITE, "r")
            .await
            .is_err()
    );

    one.grant(&ann, "acme", &partner.subject, "tenant_admin", "acme", "r")
        .await
        .unwrap();
    eventually(
        "a grant made on one replica is honoured by the other",
        || async {
            two.authorize(&partner, "acme", STAFF_WRITE, "r")
                .await
                .is_ok()
        },
    )
    .await;

    one.revoke_api_key(&ann, key.id, "r").await.unwrap();
    eventually(
        "a key revoked on one replica stops on the other",
        || async { two.authenticate(&key.key).await.is_err() },
    )
    .await;

    let session = two.login("acme", "ann", PASSWORD, None, "r").await.unwrap();
    let me = two.authenticate(&session.access_token).await.unwrap();
    one.logout(&me, "r").await.unwrap();
    eventually(
        "a logout on one replica is refused by the other",
        || async { two.authenticate(&session.access_token).await.is_err() },
    )
    .await;

    // Changes made while the other replica is cut off from NATS, by a replica that announces
    // nothing: only the resync after the reconnection can bring them.
    let key = one
        .create_api_key(&ann, &acme, "pos", &["partner".to_string()], None, "r")
        .await
        .unwrap();
    assert!(two.authenticate(&key.key).await.is_ok());
    nats.stop().await;
    let silent = replica_without_feed(&store).await;
    silent
        .revoke(&ann, "acme", &partner.subject, "tenant_admin", "acme", "r")
        .await
        .unwrap();
    silent.revoke_api_key(&ann, key.id, "r").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        two.authorize(&partner, "acme", STAFF_WRITE, "r")
            .await
            .is_ok(),
        "nothing heard yet"
    );
    nats.restart().await;
    eventually("the other replica resyncs after reconnecting", || async {
        two.authorize(&partner, "acme", STAFF_WRITE, "r")
            .await
            .is_err()
            && two.authenticate(&key.key).await.is_err()
    })
    .await;
}

/// A NATS server with each region's account as decision 0019 has them: each exports its
/// announcements and imports the other's with the prefix `peer` (docs/operations/failover.md,
/// "Events in two regions"). `REGION_C` imports nothing, as every account did before.
fn two_region_accounts(port: u16, monitor: u16) -> String {
    let account = |me: &str, sharing: String| {
        let user = me.to_lowercase().replace('_', "-");
        format!("  {me} {{ users: [{{user: {user}, password: pw}}], {sharing} }}\n")
    };
    format!(
        "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\naccounts {{\n{}{}{}}}\n",
        account("REGION_A", identity_feed::account_sharing_with("REGION_B")),
        account("REGION_B", identity_feed::account_sharing_with("REGION_A")),
        account("REGION_C", String::new()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_hears_the_other_regions_changes_through_the_accounts_imports() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (port, monitor) = (free_port(), free_port());
    let config = dir.path().join("nats.conf");
    std::fs::write(&config, two_region_accounts(port, monitor)).unwrap();
    let _nats = loyalty_events::testing::nats_server_with_config(&config, port).await;
    let in_account = |user: &str| NatsConfig {
        url: format!("nats://127.0.0.1:{port}"),
        user: Some(user.into()),
        password: Some("pw".into()),
        max_reconnect_delay_ms: 200,
        ..NatsConfig::default()
    };
    // One store: the regions' datacenters, replicated.
    let store = EmbeddedIdentityStore::open(&dir.path().join("store")).unwrap();
    let (_stop, stop) = watch::channel(false);
    let a = replica_on(&store, in_account("region-a"), &stop).await;
    let b = replica_on(&store, in_account("region-b"), &stop).await;
    let unlinked = replica_on(&store, in_account("region-c"), &stop).await;
    acme_admin(&a).await;
    // The replicas connect in the background, and resync once connected: until all three
    // are, a resync could bring what the feed is to bring.
    eventually(
        "every replica is connected with its two subscriptions",
        || replicas_subscribed(monitor, 3),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Both ways: a logout in a is refused in b, and one in b in a.
    for (made, other) in [(&a, &b), (&b, &a)] {
        let session = other
            .login("acme", "ann", PASSWORD, None, "r")
            .await
            .unwrap();
        let token = session.access_token;
        let me = other.authenticate(&token).await.unwrap();
        assert!(unlinked.authenticate(&token).await.is_ok());
        made.logout(&me, "r").await.unwrap();
        eventually("a logout in one region is refused in the other", || async {
            other.authenticate(&token).await.is_err()
        })
        .await;
        // Without the import, only the next resync (an hour here) would bring it.
        assert!(
            unlinked.authenticate(&token).await.is_ok(),
            "an account that imports nothing heard it"
        );
    }
}

/// Whether `count` clients are connected to the server with its monitoring on `monitor`,
/// each with the feed's two subscriptions.
async fn replicas_subscribed(monitor: u16, count: usize) -> bool {
    let url = format!("http://127.0.0.1:{monitor}/connz?subs=1");
    let Ok(answer) = reqwest::get(&url).await else {
        return false;
    };
    let connz: serde_json::Value = answer.json().await.unwrap();
    let subscribed = connz["connections"].as_array().map_or(0, |connections| {
        let two = |c: &&serde_json::Value| c["subscriptions"].as_u64() == Some(2);
        connections.iter().filter(two).count()
    });
    subscribed == count
}
