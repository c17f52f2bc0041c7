//! Health, readiness and metrics over HTTP, in every process.

use crate::publication::Publication;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use loyalty_gateway::regions::Routing;
use loyalty_ledger::store::embedded::EmbeddedStore;
use std::sync::Arc;

/// Readiness: the ledger's store is writable (when this process runs the ledger), and, in
/// one of two regions, the control keyspace answers this region's lease renewals
/// ([`Routing::unready_because`]). The event bus and its publishers are reported but do not
/// make the process unready: writes go on while the bus is down, and their events wait in
/// the outboxes.
#[derive(Clone)]
pub struct Health {
    pub store: Option<EmbeddedStore>,
    pub events: Option<Publication>,
    /// The gateway's routing, with `[region]` set.
    pub region: Option<Arc<Routing>>,
}

async fn readyz(State(health): State<Health>) -> (StatusCode, String) {
    let events = health
        .events
        .as_ref()
        .map_or_else(String::new, Publication::report);
    if health.store.as_ref().is_some_and(|s| !s.is_healthy()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store writer stopped\n{events}"),
        );
    }
    match health.region.as_ref().and_then(|r| r.unready_because()) {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{reason}\n{events}"),
        ),
        None => (StatusCode::OK, format!("ready\n{events}")),
    }
}

pub fn routes(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|| async { loyalty_telemetry::prometheus().render() }),
        )
        .with_state(health)
}
