//! A store process's side of a failover (decision 0019, items 5 and 9). With `[region]` set,
//! every process on the CQL store reads both regions' lease rows each second:
//! - while this region holds the other region's row (that region is failed over, fenced
//!   until rebuilt), writes configured at `EACH_QUORUM` go at `LOCAL_QUORUM`, and the
//!   outbox relay's conditional writes at `LOCAL_SERIAL`, so that a lost datacenter stops
//!   neither the survivor's ledger nor its events; after the failback, the configured
//!   levels apply again;
//! - while this region does not hold its own row, its outbox relays make no passes (see
//!   `loyalty_scylla::failover`), nor until it has held it for [`HELD_READS`] reads in a
//!   row: at start-up, and when a failback hands it back;
//! - the homes and this region's lease as that row's remaining time to live allows, for the
//!   background work of the campaign service (its outbox readers, sweeps and triggers), which
//!   does only the tenants homed here, and only while the lease holds
//!   ([`loyalty_region::background`]).

use crate::region_keeper::Regions;
use crate::schedule::pause;
use loyalty_common::error::ServiceResult;
use loyalty_region::background::SharedView;
use loyalty_region::control::{ControlPlane, Homes, LeaseRow};
use loyalty_region::lease::{RENEW_EVERY, TTL};
use loyalty_region::{Millis, Region};
use loyalty_scylla::session::Cluster;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The watch's task, and the view of the homes and the lease it keeps.
pub type Watch = (tokio::task::JoinHandle<anyhow::Result<()>>, SharedView);

/// Starts the watch in a process on the CQL store in one of two regions; None otherwise.
pub async fn start(process: &crate::roles::Process<'_>) -> anyhow::Result<Option<Watch>> {
    let (Some(regions), Some(scylla)) = (
        Regions::from_settings(&process.config.region, &process.config.scylla)?,
        process.scylla,
    ) else {
        return Ok(None);
    };
    let control =
        crate::region_keeper::control_plane(process, "the store's failover watch").await?;
    let cluster = Arc::clone(&scylla.cluster);
    cluster.failover.own_lease_held(false);
    tracing::info!(
        region = %regions.me,
        "outbox relays wait until this region has held its lease for {HELD_READS} reads in a row"
    );
    let view = SharedView::new(regions.me.clone(), regions.peer.clone());
    let shutdown = process.shutdown.clone();
    let task = tokio::spawn(watch(regions, control, cluster, view.clone(), shutdown));
    Ok(Some((task, view)))
}

/// Reads of this region's own lease row, a second apart, that must find it held before the
/// relays pass again: longer than the other region's watch takes to see the row handed back
/// and return its relays to `SERIAL`, so the two never relay at once with different levels.
const HELD_READS: u32 = 3;

async fn watch(
    regions: Regions,
    control: Arc<dyn ControlPlane>,
    cluster: Arc<Cluster>,
    view: SharedView,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let failover = &cluster.failover;
    let mut held_reads = 0;
    loop {
        let homes = control.homes().await;
        let sent = view.now();
        let own = control.lease_row(&regions.me).await;
        let peer = control.lease_holder(&regions.peer).await;
        update_view(&regions, &view, homes, sent, &own, &peer);
        // A level stays as it was while a row is unread: a wrong guess either way is worse
        // than a late one.
        match peer {
            Ok(holder) => {
                let failed_over = holder.as_ref() == Some(&regions.me);
                if failover.other_region_failed_over(failed_over) {
                    tracing::warn!(
                        peer = %regions.peer,
                        failed_over,
                        "ledger writes now at {:?}, other writes at {:?}, the outbox relay's at {:?}",
                        failover.ledger_writes.consistency(),
                        failover.writes.consistency(),
                        failover.relay_writes.serial_consistency(),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "failover watch: the other region's lease unread"),
        }
        match own {
            Ok(row) => {
                held_reads = match row.is_some_and(|row| row.holder == regions.me) {
                    true => held_reads + 1,
                    false => 0,
                };
                let held = held_reads >= HELD_READS;
                if failover.own_lease_held(held) {
                    tracing::warn!(region = %regions.me, held, "outbox relays pass only while this region holds its lease");
                }
            }
            Err(e) => tracing::warn!(error = %e, "failover watch: this region's lease unread"),
        }
        // A take-over by this process's own keeper is read at once: until then the writes
        // here wait for the lost datacenter.
        let next_read = pause(Duration::from_millis(RENEW_EVERY.0), &mut shutdown);
        tokio::select! {
            go_on = next_read => if !go_on {
                return Ok(());
            },
            () = view.nudged() => {}
        }
    }
}

/// Puts what one round read into `view`. Without the homes, the lease is left to lapse on its
/// own: the background work stops rather than guess.
fn update_view(
    regions: &Regions,
    view: &SharedView,
    homes: ServiceResult<Homes>,
    sent: Millis,
    own: &ServiceResult<Option<LeaseRow>>,
    peer: &ServiceResult<Option<Region>>,
) {
    let homes = match homes {
        Ok(homes) => homes,
        Err(e) => {
            tracing::warn!(error = %e, "failover watch: the homes unread");
            return;
        }
    };
    let epoch = homes.epoch;
    view.update(|v| {
        v.homes_read(epoch, homes.homes);
        if let Ok(row) = own {
            // This region's own row always has a time to live; one without lives as long.
            let held = row
                .as_ref()
                .filter(|row| row.holder == regions.me)
                .map(|row| row.expires_in.unwrap_or(TTL));
            v.own_row_read(sent, held, epoch);
        }
        if let Ok(holder) = peer {
            v.peer_row_read(holder.as_ref() == Some(&regions.me));
        }
    });
}
