//! The REST gateway role: the public API, in front of the services' clients.

use super::Process;
use loyalty_campaign::client::CampaignClient;
use loyalty_gateway::AppState;
use loyalty_gateway::regions::Routing;
use loyalty_identity::client::IdentityClient;
use loyalty_ledger::client::LedgerClient;
use loyalty_member::client::MemberClient;
use std::sync::Arc;

/// The services the gateway calls, each here or in another process.
pub struct Clients {
    pub ledger: Arc<dyn LedgerClient>,
    pub identity: Arc<dyn IdentityClient>,
    pub members: Arc<dyn MemberClient>,
    pub campaigns: Arc<dyn CampaignClient>,
}

/// The gateway's routes over the given clients; with `[region]` set, its writes routed by
/// the tenants' homes (decision 0019), the region keeper started, and the routing, which
/// readiness follows.
pub async fn start(
    process: &mut Process<'_>,
    clients: Clients,
) -> anyhow::Result<(axum::Router, Option<Arc<Routing>>)> {
    let state = AppState::new(clients.ledger, clients.identity, clients.members)
        .with_campaigns(clients.campaigns);
    #[cfg(feature = "bench-unguarded")]
    let router = {
        let _ = process;
        loyalty_gateway::router_unguarded(state, &process.config.gateway)
    };
    #[cfg(not(feature = "bench-unguarded"))]
    let router = {
        let config = &process.config.gateway;
        let limits = loyalty_gateway::limits::rate_limits(&config.rate_limits)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        loyalty_gateway::router(state, config, limits)
    };
    match crate::region_keeper::Regions::from_settings(
        &process.config.region,
        &process.config.scylla,
    )? {
        Some(regions) => in_regions(process, router, regions).await,
        None => Ok((router, None)),
    }
}

async fn in_regions(
    process: &mut Process<'_>,
    router: axum::Router,
    regions: crate::region_keeper::Regions,
) -> anyhow::Result<(axum::Router, Option<Arc<Routing>>)> {
    let control = crate::region_keeper::control_plane(process, "the gateway").await?;
    let gateway = &process.config.gateway;
    let (routing, tasks) = crate::region_keeper::start(
        regions,
        control,
        gateway.max_body_bytes,
        process.regions.clone(),
        process.shutdown.clone(),
    )?;
    process.tasks.extend(tasks);
    let routed = loyalty_gateway::regions::routed(router, Arc::clone(&routing));
    Ok((routed, Some(routing)))
}
