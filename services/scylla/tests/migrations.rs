//! Migrations on the CQL cluster (`SCYLLA_NODES`): a keyspace is created with
//! NetworkTopologyStrategy and the migrations applied in order, once; an older schema is
//! refused with the command that fixes it; an applied migration whose text changed is refused.
//! `memberd migrate` over the services' own migrations is tested in `services/memberd`.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::schema::Migration;
use loyalty_scylla::migrate::{MigrateError, apply, require_current};
use loyalty_scylla::session::connect;
use loyalty_scylla::test_cluster::{SKIP_REASON, TestCluster, unique_prefix};

const ONE: Migration = Migration {
    version: 1,
    name: "first",
    text: "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication};\n\
           CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations (service text, version int, \
           name text, checksum text, applied_at timestamp, PRIMARY KEY ((service), version));\n\
           CREATE TABLE IF NOT EXISTS {keyspace}.a (id text, PRIMARY KEY ((id)));",
};
const TWO: Migration = Migration {
    version: 2,
    name: "second",
    text: "CREATE TABLE IF NOT EXISTS {keyspace}.b (id text, n int, PRIMARY KEY ((id)));",
};

#[tokio::test]
async fn migrations_apply_once_in_order_and_an_older_schema_is_refused() {
    let Some(cluster) = TestCluster::from_env() else {
        eprintln!("migrations on CQL: skipped: {SKIP_REASON}");
        return;
    };
    let config = cluster.config(&unique_prefix("migrations"));
    let session = connect(&config).await.unwrap();
    let keyspace = config.keyspace("probe");

    // An empty cluster: the keyspace is created, at the first migration.
    assert_eq!(
        apply(&session, &config, "probe", &[ONE], |_| {})
            .await
            .unwrap(),
        [1]
    );
    let (class, dcs) = replication_of(&session, &keyspace).await;
    assert_eq!(
        class,
        "org.apache.cassandra.locator.NetworkTopologyStrategy"
    );
    assert_eq!(dcs, [(cluster.datacenter.clone(), "1".to_string())]);

    // A binary that carries a newer migration refuses the older schema, naming the command.
    let refused = require_current(&session, &config, "probe", &[ONE, TWO])
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, MigrateError::Behind { missing, .. } if *missing == [2]),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("run `memberd migrate`"),
        "{refused}"
    );

    // Migrating applies only what is missing, then nothing; the schema is then current.
    let seen = std::sync::Mutex::new(Vec::new());
    let applied = apply(&session, &config, "probe", &[ONE, TWO], |m| {
        seen.lock().unwrap().push(m.version)
    })
    .await
    .unwrap();
    assert_eq!((applied, seen.into_inner().unwrap()), (vec![2], vec![2]));
    assert!(
        apply(&session, &config, "probe", &[ONE, TWO], |_| {})
            .await
            .unwrap()
            .is_empty()
    );
    require_current(&session, &config, "probe", &[ONE, TWO])
        .await
        .unwrap();
    // An older binary accepts the newer schema.
    require_current(&session, &config, "probe", &[ONE])
        .await
        .unwrap();
    session
        .session
        .query_unpaged(
            format!("INSERT INTO {keyspace}.b (id, n) VALUES ('x', 1)"),
            (),
        )
        .await
        .unwrap();

    // An applied migration's text edited afterwards is refused.
    let edited = Migration {
        text: "CREATE TABLE IF NOT EXISTS {keyspace}.b (id text, PRIMARY KEY ((id)));",
        ..TWO
    };
    let err = apply(&session, &config, "probe", &[ONE, edited], |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, MigrateError::Edited { version: 2, .. }),
        "{err}"
    );
}

/// The replication class of `keyspace` and its replicas per datacenter.
async fn replication_of(
    session: &loyalty_scylla::session::Cluster,
    keyspace: &str,
) -> (String, Vec<(String, String)>) {
    let rows = session
        .session
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (replication,): (std::collections::BTreeMap<String, String>,) = rows.single_row().unwrap();
    let class = replication["class"].clone();
    let dcs = replication
        .into_iter()
        .filter(|(k, _)| k != "class")
        .collect();
    (class, dcs)
}
