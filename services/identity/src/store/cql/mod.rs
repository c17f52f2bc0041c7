//! The identity service's stores on ScyllaDB (decision 0012, migrations in
//! `services/identity/schema/`): every port of `crate::store` and casbin's
//! [`PolicyStore`], with the semantics of the embedded store
//! (`crate::store::embedded`), which the conformance suite
//! (`services/identity/tests/conformance.rs`) checks on both.
//!
//! - Versioned records (tenants, staff, sessions, API keys) are one partition each, written
//!   with `INSERT ... IF NOT EXISTS` at version 1 and `UPDATE ... IF version = ?` after.
//! - Index and listing rows (tenant_list, api_keys_by_tenant, revoked_sessions, audit_tenants)
//!   are written before the record they point at, so none is ever missing; a stale one (its
//!   record's write did not apply) is harmless, since readers read the record and skip or
//!   check it.
//! - A new staff member claims its username (`IF NOT EXISTS`) before its record, and releases
//!   the claim when its record was refused (not when the write failed with an error: it may
//!   have applied).
//! - The audit chains are in buckets, each append one conditional batch (see
//!   `audit_chain.rs`).
//!
//! Identity publishes no events from here: it does not use the outbox relay.

mod api_keys;
mod audit;
mod audit_chain;
mod policy;
mod replies;
mod rows;
mod sessions;
mod signing_keys;
mod staff;
mod statements;
mod tenants;
mod versioned;

pub use statements::IdentityStatements;

use crate::rbac::PolicyStore;
use crate::service::IdentityPorts;
use crate::store::Applied;
use loyalty_common::Clock;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::session::Cluster;
use scylla::client::session::Session;
use std::sync::Arc;

/// Records in one bucket of an audit chain, by sequence number (an append may run past its
/// bucket's range: see `audit.rs`). At a few hundred bytes a record, a bucket is a few MB.
/// The size is part of the stored layout: a keyspace keeps the size it was written with.
pub const AUDIT_BUCKET_SIZE: u64 = 10_000;

/// Rows per page when a listing partition is read whole.
const PAGE_SIZE: i32 = 1_000;
/// Partitions per `IN ?` read: the coordinator reads them in parallel, and a request stays
/// small.
const IN_CHUNK: usize = 100;

/// Cheap to clone: clones share one set of prepared statements.
#[derive(Clone)]
pub struct ScyllaIdentityStore {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Arc<Cluster>,
    statements: IdentityStatements,
    /// Only for TTLs (sessions live until a day past their expiry).
    clock: Arc<dyn Clock>,
    audit_bucket_size: u64,
}

impl ScyllaIdentityStore {
    /// Prepares every statement on `keyspace` (migrated by `memberd migrate`).
    pub async fn prepare(
        cluster: Arc<Cluster>,
        keyspace: &str,
        clock: Arc<dyn Clock>,
    ) -> ServiceResult<Self> {
        Self::prepare_with_audit_buckets(cluster, keyspace, clock, AUDIT_BUCKET_SIZE).await
    }

    /// As [`Self::prepare`], with audit buckets of `audit_bucket_size` records: for tests
    /// that cross bucket boundaries with a few records. A keyspace must always be used with
    /// the size it was written with.
    pub async fn prepare_with_audit_buckets(
        cluster: Arc<Cluster>,
        keyspace: &str,
        clock: Arc<dyn Clock>,
        audit_bucket_size: u64,
    ) -> ServiceResult<Self> {
        let statements = IdentityStatements::prepare(&cluster.session, keyspace).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                cluster,
                statements,
                clock,
                audit_bucket_size: audit_bucket_size.max(1),
            }),
        })
    }

    /// Every port of the identity service, on this store.
    pub fn ports(&self) -> IdentityPorts {
        let store = Arc::new(self.clone());
        IdentityPorts {
            tenants: store.clone(),
            staff: store.clone(),
            sessions: store.clone(),
            api_keys: store.clone(),
            audit: store.clone(),
            keys: store.clone(),
            replies: store.clone(),
            policy: store as Arc<dyn PolicyStore>,
        }
    }

    fn session(&self) -> &Session {
        &self.inner.cluster.session
    }

    fn statements(&self) -> &IdentityStatements {
        &self.inner.statements
    }
}

fn applied(yes: bool) -> Applied {
    if yes { Applied::Yes } else { Applied::Conflict }
}
