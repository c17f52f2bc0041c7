//! The identity stores' conformance suite: every behaviour of the identity ports and casbin's
//! `PolicyStore` is one body, run on the embedded store (a fresh one in a temporary directory)
//! and on ScyllaDB when `SCYLLA_NODES` is set (one keyspace for the run: every body uses names
//! of its own and looks only at them). ScyllaDB's audit buckets are 4 records here, so a few
//! records cross several bucket boundaries.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::SystemClock;
use loyalty_identity::schema::MIGRATIONS;
use loyalty_identity::store::conformance::Stores;
use loyalty_identity::store::cql::ScyllaIdentityStore;
use loyalty_identity::store::embedded::EmbeddedIdentityStore;
use loyalty_scylla::conformance;
use std::sync::Arc;

/// Audit bucket size of the ScyllaDB half: small, so the bodies cross buckets.
const AUDIT_BUCKET_SIZE: u64 = 4;

async fn embedded() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedIdentityStore::open(dir.path()).unwrap();
    Stores {
        ports: store.ports(),
        dir: Some(dir),
    }
}

async fn scylla() -> Option<Stores> {
    let (cluster, keyspace) = conformance::scylla("identity", MIGRATIONS).await?;
    let store = ScyllaIdentityStore::prepare_with_audit_buckets(
        cluster,
        &keyspace,
        Arc::new(SystemClock::default()),
        AUDIT_BUCKET_SIZE,
    )
    .await
    .unwrap();
    Some(Stores {
        ports: store.ports(),
        dir: None,
    })
}

loyalty_identity::identity_conformance!(crate::embedded, crate::scylla);
