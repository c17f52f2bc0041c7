//! The member store's conformance suite (`loyalty_member::store::conformance`) on the
//! embedded store and, when `SCYLLA_NODES` is set, on ScyllaDB.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_member::store::EmbeddedMemberStore;
use loyalty_member::store::conformance::Stores;
use loyalty_member::store::cql::ScyllaMemberStore;
use loyalty_scylla::conformance;
use loyalty_scylla::session::Cluster;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The embedded store in `dir`.
fn embedded_in(dir: tempfile::TempDir) -> Stores {
    let repo = Arc::new(EmbeddedMemberStore::open(dir.path()).unwrap());
    Stores {
        repo,
        reopen: Box::new(move || Box::pin(async move { embedded_in(dir) })),
    }
}

async fn embedded() -> Stores {
    embedded_in(tempfile::tempdir().unwrap())
}

/// The store on ScyllaDB in `keyspace` (boxed: reopening it opens it again).
fn scylla_store(
    cluster: Arc<Cluster>,
    keyspace: String,
) -> Pin<Box<dyn Future<Output = Stores> + Send>> {
    Box::pin(async move {
        let repo = ScyllaMemberStore::prepare(Arc::clone(&cluster), &keyspace)
            .await
            .unwrap();
        Stores {
            repo: Arc::new(repo),
            reopen: Box::new(move || scylla_store(cluster, keyspace)),
        }
    })
}

async fn scylla() -> Option<Stores> {
    let (cluster, keyspace) =
        conformance::scylla("member", loyalty_member::schema::MIGRATIONS).await?;
    Some(scylla_store(cluster, keyspace).await)
}

loyalty_member::member_conformance!(crate::embedded, crate::scylla);
