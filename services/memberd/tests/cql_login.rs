//! `scylla.user` and `scylla.password` against a cluster that requires a login (a Cassandra
//! node of the test's own with `PasswordAuthenticator`, `tests/cql/cluster.sh` with
//! `CQL_AUTH=1`): without them, and with a wrong password, `memberd migrate` is refused with
//! the settings to fix; with them, it migrates every keyspace and memberd serves on them.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_scylla::config::Flavour;
use loyalty_scylla::test_cluster::{TestCluster, memberd_env};
use std::process::Command;
use std::time::{Duration, Instant};
use support::two_dc::OwnCluster;

mod support;

/// The superuser a new Cassandra node creates.
const USER: &str = "cassandra";
const PASSWORD: &str = "cassandra";

fn migrate(env: &[(String, String)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_memberd"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

#[test]
fn a_cluster_that_requires_a_login_takes_memberds_user_and_password() {
    let settings = [("CQL_AUTH", "1"), ("CQL_HEAP_MB", "768")];
    let Some(cluster) = OwnCluster::start("CQL login", "login", "one", &settings) else {
        return;
    };
    let config = TestCluster {
        nodes: vec![cluster.env["SCYLLA_NODES"].clone()],
        datacenter: "dc1".into(),
        flavour: Flavour::Cassandra,
    }
    .config("login");
    let anonymous = memberd_env(&config);
    let with = |password: &str| {
        let mut env = anonymous.clone();
        env.push(("MEMBERD_SCYLLA__USER".into(), USER.into()));
        env.push(("MEMBERD_SCYLLA__PASSWORD".into(), password.into()));
        env
    };

    let refused = migrate(&anonymous);
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains("refused memberd's login"), "{text}");
    assert!(
        text.contains("scylla.user and scylla.password are not set"),
        "{text}"
    );
    let wrong = migrate(&with("not-the-password"));
    assert!(!wrong.status.success());
    let text = String::from_utf8_lossy(&wrong.stderr);
    assert!(text.contains("the user or password is wrong"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "no password in errors: {text}"
    );

    // The node creates its superuser moments after it answers CQL.
    let deadline = Instant::now() + Duration::from_secs(60);
    let migrated = loop {
        let out = migrate(&with(PASSWORD));
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(migrated.status.success(), "{migrated:?}");
    let out = String::from_utf8_lossy(&migrated.stdout);
    let keyspaces = memberd::migrate::SERVICES.len();
    assert_eq!(
        out.matches("migration(s) applied").count(),
        keyspaces,
        "{out}"
    );

    // Served: memberd starts on the migrated keyspaces with the same login and answers.
    let mut env = with(PASSWORD);
    env.push((
        "MEMBERD_MEMBER__MASTER_KEY".into(),
        support::cql::MASTER_KEY.into(),
    ));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (_memberd, addrs) = support::start_with(dir.path(), &env).await;
        let ready = support::http_get(&addrs.http, "/readyz").await;
        assert!(ready.starts_with("ready"), "{ready}");
    });
}
