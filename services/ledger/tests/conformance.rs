//! The ledger's ports, one behaviour per test, on the embedded store and on ScyllaDB (when
//! `SCYLLA_NODES` is set). The keyspace is shared by the whole run, so every body works on
//! tenants of its own and reads global listings (due wallets, unfinished transfers, the
//! change log) only for them; times are near the wall clock, where other tests write too.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_ledger::store::conformance::Stores;
use loyalty_ledger::store::cql::ScyllaLedgerStore;
use loyalty_ledger::store::embedded::EmbeddedStore;
use loyalty_scylla::conformance;
use std::sync::Arc;

async fn embedded_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    Stores {
        wallets: Arc::new(store.clone()),
        rules: Arc::new(store.clone()),
        transfers: Arc::new(store.clone()),
        due: Arc::new(store.clone()),
        feed: Arc::new(store),
        dir: Some(dir),
    }
}

async fn scylla_stores() -> Option<Stores> {
    let (cluster, keyspace) =
        conformance::scylla("ledger", loyalty_ledger::schema::MIGRATIONS).await?;
    let store = ScyllaLedgerStore::open(cluster, &keyspace).await.unwrap();
    Some(Stores {
        wallets: store.clone(),
        rules: store.clone(),
        transfers: store.clone(),
        due: store.clone(),
        feed: store,
        dir: None,
    })
}

loyalty_ledger::ledger_conformance!(crate::embedded_stores, crate::scylla_stores);
