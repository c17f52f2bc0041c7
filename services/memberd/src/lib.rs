//! `memberd` composes the services: every one in one process on the embedded store, or one
//! service per process as the Helm chart runs them (the monolithic/microservices model).

pub mod audit;
pub mod config;
pub mod export;
pub mod identity;
pub mod identity_feed;
pub mod import;
mod member_ledger;
pub mod members;
pub mod migrate;
mod publication;
pub mod storage;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use config::{MemberdConfig, Target};
use loyalty_common::SystemClock;
use loyalty_events::config::BusKind;
use loyalty_gateway::member_ledger::RemoteLedger;
use loyalty_gateway::{AppState, state};
use loyalty_identity::grpc::{IdentityGrpc, RemoteIdentity};
use loyalty_identity::service::IdentityService;
use loyalty_ledger::events::LedgerOutbox;
use loyalty_ledger::grpc::LedgerGrpc;
use loyalty_ledger::grpc_access::access as ledger_access;
use loyalty_ledger::store::ChangeFeed;
use loyalty_ledger::store::embedded::EmbeddedStore;
use loyalty_ledger::{Ledger, LedgerPorts, scheduler};
use loyalty_member::events::MemberOutbox;
use loyalty_member::grpc::MemberGrpc;
use loyalty_member::grpc_access::access as member_access;
use loyalty_member::orders::LedgerPort;
use loyalty_proto::identity::v1::identity_service_server::IdentityServiceServer;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use loyalty_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use loyalty_proto::member::v1::member_service_server::MemberServiceServer;
use loyalty_scylla::ledger::ScyllaLedgerStore;
use publication::Publication;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use storage::{ScyllaStorage, Storage};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running `memberd`: its bound addresses and the tasks to await on shutdown.
pub struct Running {
    pub http_addr: SocketAddr,
    pub grpc_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    grace: Duration,
    /// Synced to disk once the servers have stopped (its audit records are only written to
    /// the operating system before each reply).
    identity: Option<Arc<IdentityService>>,
    members: Option<Arc<loyalty_member::service::Members>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (up to the grace period), then returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.wait().await
    }

    /// Runs until a shutdown is requested (or a server fails), then waits for in-flight
    /// requests to finish, for at most the grace period.
    pub async fn wait(self) -> anyhow::Result<()> {
        let grace = self.grace;
        let mut requested = self.shutdown.subscribe();
        let all = futures_join(self.tasks);
        tokio::pin!(all);
        tokio::select! {
            result = &mut all => return result,
            _ = requested.wait_for(|stop| *stop) => {}
        }
        // The grace period counts from the shutdown request, not from start-up.
        let drained = match tokio::time::timeout(grace + Duration::from_secs(1), all).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "in-flight requests did not finish within {}s",
                grace.as_secs()
            )),
        };
        if let Some(identity) = self.identity {
            identity
                .audit_log()
                .sync()
                .await
                .map_err(|e| anyhow::anyhow!("syncing the audit log at shutdown: {}", e.message))?;
        }
        drained
    }

    /// The identity service of this process, if it runs the gateway.
    pub fn identity(&self) -> Option<&Arc<IdentityService>> {
        self.identity.as_ref()
    }

    /// The member service of this process, if it runs the gateway.
    pub fn members(&self) -> Option<&Arc<loyalty_member::service::Members>> {
        self.members.as_ref()
    }

    /// A handle that triggers graceful shutdown.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// The ledger's ports and change feed on ScyllaDB, or on the embedded store (returned too,
/// for readiness).
async fn ledger_store(
    config: &MemberdConfig,
    scylla: Option<&ScyllaStorage>,
) -> anyhow::Result<(LedgerPorts, Arc<dyn ChangeFeed>, Option<EmbeddedStore>)> {
    if let Some(scylla) = scylla {
        let store =
            ScyllaLedgerStore::open(Arc::clone(&scylla.cluster), &scylla.keyspace("ledger"))
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))
                .context("preparing the ledger store on ScyllaDB")?;
        let ports = LedgerPorts {
            wallets: store.clone(),
            rules: store.clone(),
            transfers: store.clone(),
            due: store.clone(),
        };
        return Ok((ports, store, None));
    }
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

async fn futures_join(tasks: Vec<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    for task in tasks {
        task.await.context("a server task panicked")??;
    }
    Ok(())
}

/// Readiness: the ledger's store is writable (when this process runs the ledger). The event
/// bus and its publishers are reported but do not make the process unready: writes go on
/// while the bus is down, and their events wait in the outboxes.
#[derive(Clone)]
struct Health {
    store: Option<EmbeddedStore>,
    events: Option<Publication>,
}

async fn readyz(State(health): State<Health>) -> (StatusCode, String) {
    let events = health
        .events
        .as_ref()
        .map_or_else(String::new, Publication::report);
    match &health.store {
        Some(store) if !store.is_healthy() => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store writer stopped\n{events}"),
        ),
        _ => (StatusCode::OK, format!("ready\n{events}")),
    }
}

fn ops_routes(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async { loyalty_telemetry::prometheus().render() }),
        )
        .with_state(health)
}

/// Whether this is the benchmark build without access checks (feature `bench-unguarded`).
pub const UNGUARDED: bool = cfg!(feature = "bench-unguarded");

/// Starts the configured services and returns once they are listening.
pub async fn start(config: MemberdConfig) -> anyhow::Result<Running> {
    loyalty_telemetry::prometheus();
    if UNGUARDED {
        // Printed, not only logged: the benchmark script checks for it.
        eprintln!(
            "memberd: UNGUARDED BENCHMARK BUILD: no caller is authenticated, authorized, \
             rate-limited or audited; never run this build outside a benchmark"
        );
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let mut tasks = Vec::new();
    let runs_ledger = matches!(config.target, Target::All | Target::Ledger);
    let runs_gateway = matches!(config.target, Target::All | Target::Gateway);
    let runs_identity = runs_gateway || config.target == Target::Identity;

    // On ScyllaDB, one session for every service here, each keyspace's schema checked first.
    let scylla = match config.storage {
        Storage::Embedded => None,
        Storage::Scylla => {
            let services: Vec<&str> = [
                (runs_identity, "identity"),
                (runs_ledger, "ledger"),
                (runs_gateway, "member"),
            ]
            .into_iter()
            .filter_map(|(runs, service)| runs.then_some(service))
            .collect();
            Some(
                ScyllaStorage::open(&config, &services)
                    .await
                    .context("storage = \"scylla\"")?,
            )
        }
    };
    // The identity service runs with the gateway; in one process the ledger checks every
    // call against it too.
    let identity = if runs_identity {
        Some(identity::start(&config, scylla.as_ref()).await?)
    } else {
        None
    };
    // Replicas (processes on NATS) tell each other about policy and revocation changes.
    let on_nats = config.events.bus_kind(config.target == Target::All) == BusKind::Nats;
    if let (Some(identity), true) = (&identity, on_nats) {
        let resync = Duration::from_secs(config.identity.resync_secs.max(1));
        let feed = identity_feed::follow(
            Arc::clone(identity),
            &config.events.nats,
            resync,
            shutdown_rx.clone(),
        );
        tasks.push(feed.await?);
    }
    // One bus for every service of this process that writes events: the ledger's and the
    // member service's (which runs with the gateway), each with its own publisher.
    let events = if runs_ledger || runs_gateway {
        let kind = config.events.bus_kind(config.target == Target::All);
        let data_dir = &config.data_dir;
        Some(Publication::open(kind, &config.events, data_dir, shutdown_rx.clone()).await?)
    } else {
        None
    };
    let mut store = None;
    let mut ledger_server = None;
    let mut ledger_in_process = None;
    let mut grpc_addr = None;
    if runs_ledger {
        let (ports, feed, embedded) = ledger_store(&config, scylla.as_ref()).await?;
        let ledger = Ledger::new(ports, Arc::new(SystemClock::default()));
        let interval = Duration::from_millis(config.scheduler_interval_ms.max(10));
        let scheduler_rx = shutdown_rx.clone();
        let scheduled = ledger.clone();
        tasks.push(tokio::spawn(async move {
            scheduler::run(scheduled, interval, scheduler_rx).await;
            Ok(())
        }));
        if let Some(events) = &events {
            tasks.extend(events.start(Arc::new(LedgerOutbox(feed))));
        }
        ledger_in_process = Some(Arc::clone(&ledger));
        let grpc = LedgerGrpc::new(ledger);
        let grpc = match (&identity, &config.identity_endpoint) {
            (Some(_), _) if UNGUARDED => grpc,
            (Some(identity), _) => grpc.with_access(ledger_access(identity.clone())),
            (None, Some(endpoint)) => {
                let remote = RemoteIdentity::connect_lazy(endpoint)
                    .map_err(|e| anyhow::anyhow!("identity_endpoint: {}", e.message))?;
                grpc.with_access(ledger_access(Arc::new(remote)))
            }
            (None, None) => {
                tracing::warn!(
                    "the ledger's gRPC port does not authenticate callers: set identity_endpoint \
                     to the identity service's gRPC address, or keep it on a trusted network"
                );
                grpc
            }
        };
        ledger_server = Some(grpc.into_server());
        store = embedded;
    }
    // The identity service answers other services only where it runs alone: its API is for
    // services, on an internal network, never on the port partners call the ledger on.
    let identity_server = match (&identity, config.target) {
        (Some(identity), Target::Identity) => Some(IdentityServiceServer::new(IdentityGrpc::new(
            Arc::clone(identity),
        ))),
        _ => None,
    };
    // The member service runs with the gateway. In one process (`--target all`) its gRPC API
    // is served on the ledger's port, checking callers against the identity service here.
    let members = if runs_gateway {
        // The ledger in this process directly; in another, over its gRPC API as the caller.
        let ledger_port: Arc<dyn LedgerPort> = match ledger_in_process.clone() {
            Some(ledger) => Arc::new(member_ledger::InProcessLedger(ledger)),
            None => {
                let transport = state::remote(&config.ledger_endpoint).with_context(|| {
                    format!("invalid ledger_endpoint {}", config.ledger_endpoint)
                })?;
                Arc::new(RemoteLedger(LedgerServiceClient::new(transport)))
            }
        };
        let store = match &scylla {
            Some(scylla) => Some(members::scylla_store(scylla).await?),
            None => None,
        };
        Some(members::start_on(&config, Some(ledger_port), store)?)
    } else {
        None
    };
    let member_server = match (&members, &identity) {
        (Some(members), Some(identity)) if config.target == Target::All => {
            let access = member_access(identity.clone());
            Some(MemberGrpc::new(Arc::clone(members), access).into_server())
        }
        _ => None,
    };
    if ledger_server.is_some() || identity_server.is_some() || member_server.is_some() {
        let listener = bind(&config.grpc_addr, "grpc_addr").await?;
        grpc_addr = Some(listener.local_addr()?);
        tasks.push(tokio::spawn(serve_grpc(
            listener,
            ledger_server.clone(),
            identity_server,
            member_server,
            shutdown_rx.clone(),
        )));
    }

    let mut app = ops_routes(Health {
        store,
        events: events.clone(),
    });
    let mut members_handle = None;
    if runs_gateway {
        let transport = match ledger_server {
            Some(server) => state::in_process(server),
            None => state::remote(&config.ledger_endpoint)
                .with_context(|| format!("invalid ledger_endpoint {}", config.ledger_endpoint))?,
        };
        let identity = identity
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the gateway runs without the identity service"))?;
        let members = members
            .clone()
            .context("the gateway runs without the member service")?;
        if let Some(events) = &events {
            let outbox = MemberOutbox(Arc::clone(members.repository()));
            tasks.extend(events.start(Arc::new(outbox)));
        }
        members_handle = Some(Arc::clone(&members));
        let (scheduled, settings, rx) = (
            Arc::clone(&members),
            config.member.clone(),
            shutdown_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            members::schedule(scheduled, settings, rx).await;
            Ok(())
        }));
        let state = AppState::new(transport, identity, members);
        #[cfg(feature = "bench-unguarded")]
        let gateway = loyalty_gateway::router_unguarded(state, &config.gateway);
        #[cfg(not(feature = "bench-unguarded"))]
        let gateway = {
            let limits = loyalty_gateway::limits::rate_limits(&config.gateway.rate_limits)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            loyalty_gateway::router(state, &config.gateway, limits)
        };
        app = app.merge(gateway);
    }
    let identity_for_shutdown = identity.clone();
    let listener = bind(&config.http_addr, "http_addr").await?;
    let http_addr = listener.local_addr()?;
    let mut rx = shutdown_rx.clone();
    // Replies go out at once, as on the gRPC port (decision 0004): with Nagle's algorithm a
    // reply written while the last one's ACK is still delayed waits up to 40 ms for it.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an HTTP connection");
        }
    });
    tasks.push(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
            .context("the HTTP server failed")
    }));
    tracing::info!(%http_addr, grpc_addr = ?grpc_addr, target = ?config.target, "memberd started");
    Ok(Running {
        http_addr,
        grpc_addr,
        shutdown,
        tasks,
        grace,
        identity: identity_for_shutdown,
        members: members_handle,
    })
}

async fn bind(addr: &str, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} ({setting}); is another process using it?")
    })
}

async fn serve_grpc(
    listener: TcpListener,
    ledger: Option<LedgerServiceServer<LedgerGrpc>>,
    identity: Option<IdentityServiceServer<IdentityGrpc>>,
    members: Option<MemberServiceServer<MemberGrpc>>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    if ledger.is_some() {
        reporter
            .set_serving::<LedgerServiceServer<LedgerGrpc>>()
            .await;
    }
    if identity.is_some() {
        reporter
            .set_serving::<IdentityServiceServer<IdentityGrpc>>()
            .await;
    }
    if members.is_some() {
        reporter
            .set_serving::<MemberServiceServer<MemberGrpc>>()
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(loyalty_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building gRPC reflection")?;
    tonic::transport::Server::builder()
        .layer(loyalty_telemetry::GrpcMetricsLayer)
        .add_service(health)
        .add_service(reflection)
        .add_optional_service(ledger)
        .add_optional_service(identity)
        .add_optional_service(members)
        .serve_with_incoming_shutdown(
            // No Nagle delay: small unary replies must leave at once.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            },
        )
        .await
        .context("the gRPC server failed")
}
