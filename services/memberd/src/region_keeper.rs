//! The region keeper of a gateway process (decision 0019): renews this region's lease in the
//! control keyspace every second, keeps the gateway's view of the homes current, watches the
//! other region's gateway, and, with `region.failover_after_ms`, takes the other region's
//! tenants over once it has failed its health checks that long and its lease has lapsed.
//!
//! Every gateway process keeps its own lease: renewing the region's row is idempotent, and a
//! process that cannot renew (it is cut off from the majority) stops writing on its own.

use crate::config::RegionSettings;
use crate::schedule::pause;
use loyalty_common::error::ServiceResult;
use loyalty_gateway::regions::{BEAT_UNKNOWN, NEVER_ANSWERED, Routing};
use loyalty_region::background::SharedView;
use loyalty_region::control::ControlPlane;
use loyalty_region::keeper::{Action, Keeper, Sight};
use loyalty_region::lease::{RENEW_EVERY, RENEWED_LATELY, TTL, WRITABLE};
use loyalty_region::route::Directory;
use loyalty_region::{Millis, Region};
use loyalty_scylla::config::{ScyllaConfig, WriteConsistency};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the keeper looks at its schedule: renewals are every second, take-over attempts
/// every [`loyalty_region::keeper::TAKE_OVER_EVERY`].
const TICK: Duration = Duration::from_millis(50);
/// How long a renewal's answer can still extend the lease: it lasts [`WRITABLE`] from the
/// renewal's sending.
const RENEWAL_USEFUL: Duration = Duration::from_millis(WRITABLE.0);
/// How often, and how patiently, the other region's gateway is asked whether it is ready.
const PEER_CHECK: Duration = Duration::from_millis(500);

/// The regions this process sits between, from `[region]`.
pub struct Regions {
    pub me: Region,
    pub peer: Region,
    pub peer_url: String,
    pub failover_after: Option<Millis>,
    pub write_time: Duration,
    /// The ledger writes at `EACH_QUORUM`: in a cut between the regions alone neither home
    /// could write, and one region yields (`loyalty_region::keeper`).
    pub synchronous: bool,
}

impl Regions {
    /// `[region]` read; None when `region.name` is unset (one region).
    pub fn from_settings(
        settings: &RegionSettings,
        scylla: &ScyllaConfig,
    ) -> anyhow::Result<Option<Self>> {
        let Some(name) = &settings.name else {
            return Ok(None);
        };
        let missing = |what: &str| {
            anyhow::anyhow!("region.name is set: set region.{what} too (decision 0019)")
        };
        let peer = settings.peer.as_deref().ok_or_else(|| missing("peer"))?;
        let peer_url = settings
            .peer_url
            .clone()
            .ok_or_else(|| missing("peer_url"))?;
        Ok(Some(Self {
            me: Region::parse(name)?,
            peer: Region::parse(peer)?,
            peer_url,
            failover_after: settings.failover_after_ms.map(Millis),
            write_time: Duration::from_millis(settings.write_time_ms.unwrap_or(1_000)),
            synchronous: scylla.ledger_write_consistency == WriteConsistency::EachQuorum,
        }))
    }
}

/// The control keyspace, for a role of `process` (`who`, named in the error when
/// `storage = "scylla"` is not set): its migrations must be applied.
pub async fn control_plane(
    process: &crate::roles::Process<'_>,
    who: &str,
) -> anyhow::Result<Arc<dyn ControlPlane>> {
    use loyalty_scylla::config::CONTROL_SERVICE;
    let Some(scylla) = process.scylla else {
        anyhow::bail!(
            "region.name is set: {who} needs the control keyspace, so set \
             storage = \"scylla\" and [scylla] for it too"
        );
    };
    loyalty_scylla::migrate::require_current(
        &scylla.cluster,
        &scylla.config,
        CONTROL_SERVICE,
        loyalty_region::schema::MIGRATIONS,
    )
    .await?;
    let keyspace = scylla.config.keyspace(CONTROL_SERVICE);
    let control =
        loyalty_region::control::cql::CqlControl::prepare(Arc::clone(&scylla.cluster), &keyspace)
            .await?;
    Ok(Arc::new(control))
}

/// The tasks the keeper runs, awaited on shutdown.
pub type Tasks = Vec<tokio::task::JoinHandle<anyhow::Result<()>>>;

/// Starts the keeper and the peer watch; the routing the gateway's layer uses.
///
/// `store_view` is this process's failover watch's view, when the process plays a store role
/// too: told at once of a take-over, so that its writes stop waiting for the lost datacenter
/// without waiting for the watch's next read.
pub fn start(
    regions: Regions,
    control: Arc<dyn ControlPlane>,
    max_body_bytes: usize,
    store_view: Option<SharedView>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(Arc<Routing>, Tasks)> {
    let write_time = regions.write_time;
    // A forwarded write runs in the other region under its own write time; the round trip
    // adds to it.
    let client = reqwest::Client::builder().timeout(write_time * 2).build()?;
    let routing = Arc::new(Routing {
        me: regions.me.clone(),
        directory: Arc::new(RwLock::new(Directory::new(regions.me.clone()))),
        clock: Instant::now(),
        peer_url: regions.peer_url.clone(),
        client: client.clone(),
        write_time,
        max_body_bytes,
        peer_beat_ms: AtomicI64::new(BEAT_UNKNOWN),
        control_answered_ms: AtomicI64::new(NEVER_ANSWERED),
        yielding: AtomicBool::new(false),
    });
    // Not ready until its first health check says so: a peer never seen ready is never taken
    // over (`Keeper`).
    let peer = Arc::new(PeerState::default());
    let watch = tokio::spawn(watch_peer(
        client,
        regions.peer_url.clone(),
        Arc::clone(&peer),
        shutdown.clone(),
    ));
    let renewing = tokio::spawn(watch_peer_renewing(
        Arc::clone(&control),
        regions.peer.clone(),
        Arc::clone(&peer),
        shutdown.clone(),
    ));
    let beats = tokio::spawn(heartbeats(
        Arc::clone(&control),
        Arc::clone(&routing),
        regions.peer.clone(),
        shutdown.clone(),
    ));
    let keeper = Keeper::new(regions.me, regions.peer, regions.failover_after)
        .yield_in_cuts(regions.synchronous);
    let keep = tokio::spawn(keep(
        keeper,
        control,
        Arc::clone(&routing),
        peer,
        store_view,
        shutdown,
    ));
    Ok((routing, vec![watch, renewing, beats, keep]))
}

/// What this process knows of the other region.
#[derive(Default)]
struct PeerState {
    /// Its gateway answered its last health check ready. False until the first: a peer never
    /// seen ready is never taken over (`Keeper`).
    healthy: AtomicBool,
    /// Its lease row, read under `SERIAL` while it fails its checks, shows it renewing.
    renewing: AtomicBool,
}

/// While the other region fails its health checks, reads its lease row every second: if it
/// still renews, it is alive and reaches a majority, cut off from this region only.
async fn watch_peer_renewing(
    control: Arc<dyn ControlPlane>,
    peer_region: Region,
    peer: Arc<PeerState>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    loop {
        let renewing = if peer.healthy.load(Ordering::Relaxed) {
            false
        } else {
            match control.lease_row(&peer_region).await {
                Ok(row) => row.is_some_and(|row| {
                    row.holder == peer_region
                        && row.expires_in.is_some_and(|left| left > RENEWED_LATELY)
                }),
                // Unknown: as if not renewing, which leaves this region renewing.
                Err(e) => {
                    tracing::debug!(error = %e, "region keeper: the other region's lease unread");
                    false
                }
            }
        };
        if peer.renewing.swap(renewing, Ordering::Relaxed) != renewing {
            tracing::warn!(peer = %peer_region, renewing, "the other region's lease renewals, as read here");
        }
        if !pause(Duration::from_millis(RENEW_EVERY.0), &mut shutdown).await {
            return Ok(());
        }
    }
}

async fn watch_peer(
    client: reqwest::Client,
    peer_url: String,
    peer: Arc<PeerState>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let healthy = &peer.healthy;
    let url = format!("{}/readyz", peer_url.trim_end_matches('/'));
    loop {
        let ready = client
            .get(&url)
            .timeout(PEER_CHECK)
            .send()
            .await
            .is_ok_and(|answer| answer.status().is_success());
        if healthy.swap(ready, Ordering::Relaxed) != ready {
            tracing::warn!(peer = %peer_url, ready, "the other region's gateway changed state");
        }
        if !pause(PEER_CHECK, &mut shutdown).await {
            return Ok(());
        }
    }
}

/// Writes this region's heartbeat every second and reads the other region's: the age of
/// the newest one to reach this datacenter, plus the time between two, bounds how far behind
/// reads of that region's tenants here may be (`Staleness-Bound-Ms`).
async fn heartbeats(
    control: Arc<dyn ControlPlane>,
    routing: Arc<Routing>,
    peer: Region,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let every = Duration::from_millis(RENEW_EVERY.0);
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(e) = control.beat(&routing.me, now).await {
            tracing::warn!(error = %e, "region keeper: this region's heartbeat was not written");
        }
        // Kept as is when unread: its age, counted per read, grows meanwhile.
        match control.last_beat(&peer).await {
            Ok(Some(at)) => routing.peer_beat_ms.store(at, Ordering::Relaxed),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "region keeper: the other region's heartbeat unread")
            }
        }
        if !pause(every, &mut shutdown).await {
            return Ok(());
        }
    }
}

async fn keep(
    mut keeper: Keeper,
    control: Arc<dyn ControlPlane>,
    routing: Arc<Routing>,
    peer: Arc<PeerState>,
    store_view: Option<SharedView>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Exported from the start, so that alerts see the first take-over as an increase.
    metrics::counter!("region_failovers_total").increment(0);
    metrics::gauge!("region_yielding").set(0.0);
    let (taking, taken) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    loop {
        if taken.swap(false, Ordering::SeqCst) {
            keeper.took_over();
        }
        let now = routing.now();
        let sight = {
            let directory = routing.directory.read().unwrap_or_else(|p| p.into_inner());
            let held = directory.lease.may_write(now, now);
            metrics::gauge!("region_lease_held").set(if held { 1.0 } else { 0.0 });
            Sight {
                peer_healthy: peer.healthy.load(Ordering::Relaxed),
                peer_renewing: peer.renewing.load(Ordering::Relaxed),
                home_to_any: directory.is_home_to_any(&keeper.me),
                peer_home_to_any: directory.is_home_to_any(&keeper.peer),
                peer_has_run: routing.peer_beat_ms.load(Ordering::Relaxed) != BEAT_UNKNOWN,
            }
        };
        let actions = keeper.tick(now, sight);
        let yielding = keeper.yielding();
        if routing.yielding.swap(yielding, Ordering::Relaxed) != yielding {
            metrics::gauge!("region_yielding").set(if yielding { 1.0 } else { 0.0 });
            tracing::warn!(
                yielding,
                "region keeper: cut off from the other region, which still renews its lease: \
                 this region {} renewing its own (decision 0019)",
                if yielding { "stops" } else { "starts" }
            );
        }
        for action in actions {
            match action {
                // Renewals overlap when the control keyspace is slow, so one slow answer does
                // not delay the next renewal; the lease keeps whichever lasts longest. Each is
                // given up once its answer could no longer extend the lease, so no more than
                // four are ever under way.
                Action::Renew => {
                    let (control, routing) = (Arc::clone(&control), Arc::clone(&routing));
                    tokio::spawn(async move {
                        let renewal = renew(now, control.as_ref(), &routing);
                        match tokio::time::timeout(RENEWAL_USEFUL, renewal).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "region keeper: a renewal failed")
                            }
                            Err(_) => tracing::warn!(
                                "region keeper: a renewal unanswered for 4 s was given up"
                            ),
                        }
                    });
                }
                // One attempt at a time, beside the renewals: a take-over contends with the
                // lost region's last renewals on one row, and may be slow.
                Action::TakeOver { from } if !taking.swap(true, Ordering::SeqCst) => {
                    let (control, routing) = (Arc::clone(&control), Arc::clone(&routing));
                    let (taking, taken) = (Arc::clone(&taking), Arc::clone(&taken));
                    let store_view = store_view.clone();
                    tokio::spawn(async move {
                        match take_over(&from, control.as_ref(), &routing).await {
                            Ok(done) => {
                                taken.store(done, Ordering::SeqCst);
                                if let Some(view) = store_view.filter(|_| done) {
                                    view.nudge();
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "region keeper: a take-over failed")
                            }
                        }
                        taking.store(false, Ordering::SeqCst);
                    });
                }
                Action::TakeOver { .. } => {}
            }
        }
        if !pause(TICK, &mut shutdown).await {
            return Ok(());
        }
    }
}

/// Renews this region's lease (`sent` is when, on the keeper's clock), and reads the homes
/// again when they moved or the lease is lost.
async fn renew(sent: Millis, control: &dyn ControlPlane, routing: &Routing) -> ServiceResult<()> {
    let renewal = control
        .renew(&routing.me, Duration::from_millis(TTL.0))
        .await?;
    routing.control_answered(sent);
    tracing::debug!(
        held = renewal.held,
        epoch = renewal.epoch.0,
        took_ms = routing.now().since(sent).0,
        "region keeper: renewed"
    );
    let reload = {
        let mut directory = routing.directory.write().unwrap_or_else(|p| p.into_inner());
        if renewal.held {
            directory.lease.renewed(sent, TTL, renewal.epoch);
        } else {
            directory.lease.lost();
        }
        directory.stale() || !renewal.held
    };
    if reload {
        reload_homes(control, routing).await?;
    }
    Ok(())
}

/// Takes `from`'s tenants over if its lease has lapsed; whether it did.
///
/// A region that is home to no tenant is left alone: taking its lease row would fence it
/// until an operator fails back, for nothing, and a region still starting up (the other
/// region's first minutes, or a new one) looks lost too.
async fn take_over(
    from: &Region,
    control: &dyn ControlPlane,
    routing: &Routing,
) -> ServiceResult<bool> {
    // A region without its own lease (fenced: failed over and not yet rebuilt, or cut off)
    // takes nothing over: its datacenter may be stale, and it could not write the tenants.
    let now = routing.now();
    let held = {
        let directory = routing.directory.read().unwrap_or_else(|p| p.into_inner());
        directory.lease.may_write(now, now)
    };
    if !held {
        tracing::debug!(from = %from, "region keeper: no take-over without this region's lease");
        return Ok(false);
    }
    let homes = control.homes().await?;
    if !homes.homes.iter().any(|(_, home)| home.region == *from) {
        tracing::debug!(from = %from, "region keeper: the lost region is home to no tenant");
        return Ok(false);
    }
    let taken = control.take_over(from, &routing.me).await?;
    tracing::debug!(from = %from, taken, "region keeper: a take-over attempt");
    if taken {
        tracing::warn!(from = %from, "region keeper: took the other region's tenants over");
        metrics::counter!("region_failovers_total").increment(1);
        reload_homes(control, routing).await?;
    }
    Ok(taken)
}

async fn reload_homes(control: &dyn ControlPlane, routing: &Routing) -> ServiceResult<()> {
    let homes = control.homes().await?;
    let mut directory = routing.directory.write().unwrap_or_else(|p| p.into_inner());
    directory.load(homes.epoch, homes.homes);
    Ok(())
}
