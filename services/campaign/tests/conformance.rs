//! The campaign store's port, one behaviour per test, on the embedded store.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_campaign::store::EmbeddedCampaignStore;
use loyalty_campaign::store::conformance::Stores;
use std::sync::Arc;

async fn embedded_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedCampaignStore::open(dir.path()).unwrap();
    Stores {
        store: Arc::new(store),
        dir: Some(dir),
    }
}

loyalty_campaign::campaign_conformance!(crate::embedded_stores);
