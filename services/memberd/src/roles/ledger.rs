//! The ledger role: its store (embedded or ScyllaDB), its scheduler, its outbox's publisher,
//! and its gRPC service behind the guard.

use super::Process;
use crate::schedule::{SchedulerLease, run_every};
use crate::storage::ScyllaStorage;
use anyhow::Context;
use loyalty_common::SystemClock;
use loyalty_identity::grpc_guard::{GuardLayer, Guarded};
use loyalty_ledger::client::{GrpcLedgerClient, InProcessLedger, LedgerClient};
use loyalty_ledger::grpc::LedgerGrpc;
use loyalty_ledger::store::ChangeFeed;
use loyalty_ledger::store::cql::ScyllaLedgerStore;
use loyalty_ledger::store::embedded::EmbeddedStore;
use loyalty_ledger::{Ledger, LedgerPorts, grpc_access, scheduler};
use loyalty_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use std::sync::Arc;
use std::time::Duration;

pub type LedgerServer = Guarded<LedgerServiceServer<LedgerGrpc>>;

/// The ledger of this process.
pub struct LedgerRole {
    pub client: Arc<dyn LedgerClient>,
    pub server: LedgerServer,
    /// The embedded store, whose health readiness reports.
    pub store: Option<EmbeddedStore>,
}

pub async fn start(process: &mut Process<'_>) -> anyhow::Result<LedgerRole> {
    let config = process.config;
    let (ports, feed, store) = open_store(process).await?;
    // In two regions its housekeeping and transfer recovery follow the homes (decision 0019).
    let clock = Arc::new(SystemClock::default());
    let ledger = Ledger::in_regions(ports, clock, process.regions.clone());
    let interval = Duration::from_millis(config.scheduler_interval_ms.max(10));
    let lease = SchedulerLease::of(process, "ledger", "ledger-housekeeping").await?;
    let (scheduled, shutdown) = (Arc::clone(&ledger), process.shutdown.clone());
    process.tasks.push(tokio::spawn(async move {
        let round = || scheduler::tick(&scheduled);
        run_every("ledger-housekeeping", lease, interval, shutdown, round).await;
        Ok(())
    }));
    if let Some(events) = process.events {
        process
            .tasks
            .extend(events.start(Arc::new(loyalty_ledger::events::outbox(feed))));
    }
    let guard = match process.caller_checks()? {
        Some(checks) => grpc_access::guard(checks),
        None => GuardLayer::open(),
    };
    let server = guard.around(LedgerGrpc::new(Arc::clone(&ledger)).into_server());
    Ok(LedgerRole {
        client: Arc::new(InProcessLedger::new(ledger)),
        server,
        store,
    })
}

/// The ledger in another process, at `ledger_endpoint`.
pub fn remote(process: &Process<'_>) -> anyhow::Result<Arc<dyn LedgerClient>> {
    let endpoint = &process.config.ledger_endpoint;
    let transport = loyalty_proto::transport::connect(endpoint, process.deadline())
        .map_err(|e| anyhow::anyhow!("ledger_endpoint {endpoint}: {e}"))?;
    Ok(Arc::new(GrpcLedgerClient::new(transport)))
}

type Store = (LedgerPorts, Arc<dyn ChangeFeed>, Option<EmbeddedStore>);

/// The ledger's ports and change feed on ScyllaDB, or on the embedded store (returned too,
/// for readiness).
async fn open_store(process: &Process<'_>) -> anyhow::Result<Store> {
    if let Some(scylla) = process.scylla {
        return scylla_store(scylla).await;
    }
    let config = process.config;
    let embedded = EmbeddedStore::open_with(&config.data_dir, &config.store)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let ports = LedgerPorts {
        wallets: Arc::new(embedded.clone()),
        rules: Arc::new(embedded.clone()),
        transfers: Arc::new(embedded.clone()),
        due: Arc::new(embedded.clone()),
    };
    Ok((ports, Arc::new(embedded.clone()), Some(embedded)))
}

async fn scylla_store(scylla: &ScyllaStorage) -> anyhow::Result<Store> {
    let store = ScyllaLedgerStore::open(Arc::clone(&scylla.cluster), &scylla.keyspace("ledger"))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .context("preparing the ledger store on ScyllaDB")?;
    let ports = LedgerPorts {
        wallets: store.clone(),
        rules: store.clone(),
        transfers: store.clone(),
        due: store.clone(),
    };
    Ok((ports, store, None))
}
