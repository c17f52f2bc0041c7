//! The ledger on ScyllaDB (decision 0012): [`ScyllaLedgerStore`] implements the ledger's five
//! ports on the tables of `services/ledger/schema/0001_ledger.cql`, as the embedded store does
//! on fjall, so the domain behaves the same on both (the conformance suite checks it).
//!
//! - a wallet is one partition: its static head and version, and rows of entries, idempotency
//!   records, reversal trackers and outbox rows; every write is one conditional batch on it;
//! - scans over all tenants (wallets due for housekeeping, unfinished transfers) read bucketed
//!   index tables, written before the write they point at, from a low-water bucket;
//! - the change feed is the relay's change log, fed by the outbox rows of each commit.
//!
//! Round trips per ledger operation: `ROUND_TRIPS.md` beside this file.

mod due;
mod feed;
mod low_water;
mod rows;
mod rules;
pub mod statements;
mod transfers;
mod wallets;

pub use statements::LedgerStatements;

use crate::rules::RuleSet;
use low_water::LowWater;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::relay::Relay;
use loyalty_scylla::session::Cluster;
use loyalty_scylla::statements::{BatchWrite, Stmt};
use scylla::serialize::row::SerializeRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The service name the relay and its lease are kept under.
pub const SERVICE: &str = "ledger";

/// How long an idempotency record is kept (decision 0012: longer than any till, partner or
/// batch job retries). The ledger has no setting for it yet.
pub const IDEMPOTENCY_TTL_SECS: i32 = 35 * 24 * 3600;

/// Tenants whose current rule set is kept in memory; past this the cache starts afresh.
const CACHED_TENANTS: usize = 10_000;

/// The ledger's ports on ScyllaDB. Open it with [`ScyllaLedgerStore::open`]; share the `Arc`.
pub struct ScyllaLedgerStore {
    cluster: Arc<Cluster>,
    statements: LedgerStatements,
    relay: Arc<Relay>,
    /// Current rule sets by tenant, checked against the stored current version on every read
    /// (one small read) so a change by another process is seen at once.
    rules: Mutex<HashMap<String, Arc<RuleSet>>>,
    due_low_water: LowWater,
    open_transfers_low_water: LowWater,
}

impl ScyllaLedgerStore {
    /// Prepares the statements on `keyspace` (migrated already) and the relay that publishes
    /// hands on this store's outbox rows (the store is the relay's source: `OutboxPartitions`
    /// in `wallets`).
    pub async fn open(cluster: Arc<Cluster>, keyspace: &str) -> ServiceResult<Arc<Self>> {
        let statements = LedgerStatements::prepare(&cluster.session, keyspace).await?;
        let relay = Relay::prepare(Arc::clone(&cluster), keyspace, SERVICE).await?;
        Ok(Arc::new(Self {
            cluster,
            statements,
            relay,
            rules: Mutex::new(HashMap::new()),
            due_low_water: LowWater::new("due_wallets"),
            open_transfers_low_water: LowWater::new("open_transfers"),
        }))
    }

    fn session(&self) -> &scylla::client::session::Session {
        &self.cluster.session
    }

    /// Writes one unconditional statement with the ledger's write consistency: an index row
    /// a wallet or transfer write relies on must be as durable as that write (EACH_QUORUM
    /// when the ledger's writes are).
    async fn write_as_ledger<B>(&self, statement: &Stmt<B, ()>, binds: B) -> ServiceResult<()>
    where
        B: SerializeRow + Send + Sync + 'static,
    {
        let mut batch = BatchWrite::default();
        batch.push(statement, binds);
        batch
            .apply(self.session(), Some(&self.cluster.ledger_writes))
            .await
            .map(|_| ())
    }
}
