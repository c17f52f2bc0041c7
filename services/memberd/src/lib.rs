//! `memberd` composes the services: every one in one process on the embedded store, or one
//! service per process as the Helm chart runs them (the monolithic/microservices model).

pub mod audit;
pub mod config;
pub mod coupons;
pub mod export;
mod failover_watch;
pub mod health_check;
pub mod identity;
pub mod identity_feed;
pub mod import;
pub mod members;
pub mod migrate;
mod publication;
pub mod region;
mod region_keeper;
pub mod roles;
pub mod schedule;
pub mod storage;

use anyhow::Context;
use config::{MemberdConfig, Target};
use loyalty_events::config::BusKind;
use loyalty_identity::grpc::IdentityGrpc;
use loyalty_identity::service::IdentityService;
use loyalty_proto::identity::v1::identity_service_server::IdentityServiceServer;
use publication::Publication;
use roles::grpc::GrpcServices;
use roles::health::Health;
use roles::{Process, Roles};
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

async fn futures_join(tasks: Vec<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    for task in tasks {
        task.await.context("a server task panicked")??;
    }
    Ok(())
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
    let roles = Roles::of(config.target);
    // On ScyllaDB, one session for every service here, each keyspace's schema checked first.
    let scylla = match config.storage {
        Storage::Embedded => None,
        Storage::Scylla => Some(
            ScyllaStorage::open(&config, &roles.keyspaces())
                .await
                .context("storage = \"scylla\"")?,
        ),
    };
    let identity = match roles.identity {
        true => Some(identity::start(&config, scylla.as_ref()).await?),
        false => None,
    };
    // One bus for every service of this process that writes events, each with its own
    // publisher.
    let bus = config.events.bus_kind(config.target == Target::All);
    let events = if roles.ledger || roles.member || roles.campaign {
        let (data_dir, region) = (&config.data_dir, config.region.name.as_deref());
        let shutdown = shutdown_rx.clone();
        Some(Publication::open(bus, &config.events, data_dir, region, shutdown).await?)
    } else {
        None
    };
    let mut process = Process {
        config: &config,
        scylla: scylla.as_ref(),
        events: events.as_ref(),
        identity: identity.as_ref(),
        shutdown: shutdown_rx.clone(),
        tasks: Vec::new(),
        regions: None,
    };
    // Replicas (processes on NATS) tell each other about policy and revocation changes; in
    // two regions without NATS, the other region's changes are read from the store.
    let resync = Duration::from_secs(config.identity.resync_secs.max(1));
    match (&identity, bus) {
        (Some(identity), BusKind::Nats) => {
            let feed = identity_feed::follow(
                Arc::clone(identity),
                &config.events.nats,
                resync,
                shutdown_rx.clone(),
            );
            process.tasks.push(feed.await?);
        }
        (Some(identity), _) if config.region.name.is_some() => {
            let service = Arc::clone(identity);
            let resyncs = identity_feed::resync_only(service, resync, shutdown_rx.clone());
            process.tasks.push(resyncs);
        }
        _ => {}
    }
    // Before the services start, so that no relay passes before its region's lease is read.
    if (roles.ledger || roles.member || roles.campaign)
        && let Some((task, view)) = failover_watch::start(&process).await?
    {
        process.tasks.push(task);
        process.regions = Some(view);
    }
    let mut grpc = GrpcServices::default();
    let mut health = Health {
        store: None,
        events: events.clone(),
        region: None,
    };
    // The ledger here, or the one at ledger_endpoint through its client.
    let ledger = match roles.ledger {
        true => {
            let ledger = roles::ledger::start(&mut process).await?;
            grpc.ledger = Some(ledger.server);
            health.store = ledger.store;
            ledger.client
        }
        false => roles::ledger::remote(&process)?,
    };
    // The identity service answers other services only where it runs alone: its API is for
    // services, on an internal network, never on the port partners call the ledger on.
    if let (Some(identity), Target::Identity) = (&identity, config.target) {
        grpc.identity = Some(IdentityServiceServer::new(IdentityGrpc::new(Arc::clone(
            identity,
        ))));
    }
    // The member service here, or the one at member_endpoint through its client.
    let (members, member_client) = match roles.member {
        true => {
            let member = roles::member::start(&mut process, Arc::clone(&ledger)).await?;
            grpc.member = member.server;
            (Some(member.members), member.client)
        }
        false => (None, roles::member::remote(&process)?),
    };
    // The campaign service here, or the one at campaign_endpoint through its client.
    let campaign_client = match roles.campaign {
        true => {
            let campaign = roles::campaign::start(
                &mut process,
                Arc::clone(&member_client),
                Arc::clone(&ledger),
            )
            .await?;
            grpc.campaign = Some(campaign.server);
            campaign.client
        }
        false => roles::campaign::remote(&process)?,
    };
    let mut gateway_routes = None;
    if roles.gateway {
        let identity = process.identity_client()?;
        let clients = roles::gateway::Clients {
            ledger,
            identity,
            members: member_client,
            campaigns: campaign_client,
        };
        let (gateway, routing) = roles::gateway::start(&mut process, clients).await?;
        health.region = routing;
        gateway_routes = Some(gateway);
    }
    let mut app = roles::health::routes(health);
    if let Some(gateway) = gateway_routes {
        app = app.merge(gateway);
    }
    let mut tasks = process.tasks;
    let mut grpc_addr = None;
    if !grpc.is_empty() {
        let listener = bind(&config.grpc_addr, "grpc_addr").await?;
        grpc_addr = Some(listener.local_addr()?);
        tasks.push(tokio::spawn(grpc.serve(listener, shutdown_rx.clone())));
    }
    let listener = bind(&config.http_addr, "http_addr").await?;
    let http_addr = listener.local_addr()?;
    tasks.push(tokio::spawn(serve_http(listener, app, shutdown_rx)));
    tracing::info!(%http_addr, grpc_addr = ?grpc_addr, target = ?config.target, "memberd started");
    Ok(Running {
        http_addr,
        grpc_addr,
        shutdown,
        tasks,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        identity,
        members,
    })
}

async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Replies go out at once, as on the gRPC port (decision 0004): with Nagle's algorithm a
    // reply written while the last one's ACK is still delayed waits up to 40 ms for it.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an HTTP connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .context("the HTTP server failed")
}

async fn bind(addr: &str, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} ({setting}); is another process using it?")
    })
}
