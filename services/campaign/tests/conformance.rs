//! The campaign store's port, one behaviour per test, on the embedded store and on
//! ScyllaDB (when `SCYLLA_NODES` is set). The keyspace is shared by the whole run, so every
//! body works on tenants of its own.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::store::EmbeddedCampaignStore;
use loyalty_campaign::store::conformance::Stores;
use loyalty_campaign::store::cql::ScyllaCampaignStore;
use loyalty_scylla::conformance;
use std::sync::Arc;

async fn embedded_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedCampaignStore::open(dir.path()).unwrap();
    Stores {
        store: Arc::new(store),
        dir: Some(dir),
    }
}

async fn scylla_stores() -> Option<Stores> {
    let (cluster, keyspace) =
        conformance::scylla("campaign", loyalty_campaign::schema::MIGRATIONS).await?;
    let store = ScyllaCampaignStore::prepare(cluster, &keyspace)
        .await
        .unwrap();
    Some(Stores {
        store: Arc::new(store),
        dir: None,
    })
}

loyalty_campaign::campaign_conformance!(crate::embedded_stores, crate::scylla_stores);
