//! A store process's side of a failover (decision 0019, items 5 and 9). With `[region]` set,
//! every process on the CQL store reads both regions' lease rows each second:
//! - while this region holds the other region's row (that region is failed over, fenced
//!   until rebuilt), writes configured at `EACH_QUORUM` go at `LOCAL_QUORUM`, and the
//!   outbox relay's conditional writes at `LOCAL_SERIAL`, so that a lost datacenter stops
//!   neither the survivor's ledger nor its events; after the failback, the configured
//!   levels apply again;
//! - while this region does not hold its own row, its outbox relays make no passes (see
//!   `loyalty_scylla::failover`), nor until it has held it for [`HELD_READS`] reads in a
//!   row: at start-up, and when a failback hands it back.

use crate::region_keeper::Regions;
use crate::schedule::pause;
use loyalty_region::control::ControlPlane;
use loyalty_region::lease::RENEW_EVERY;
use loyalty_scylla::session::Cluster;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the watch in a process on the CQL store in one of two regions; None otherwise.
pub async fn start(
    process: &crate::roles::Process<'_>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let (Some(regions), Some(scylla)) = (
        Regions::from_settings(&process.config.region)?,
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
    let shutdown = process.shutdown.clone();
    Ok(Some(tokio::spawn(watch(
        regions, control, cluster, shutdown,
    ))))
}

/// Reads of this region's own lease row, a second apart, that must find it held before the
/// relays pass again: longer than the other region's watch takes to see the row handed back
/// and return its relays to `SERIAL`, so the two never relay at once with different levels.
const HELD_READS: u32 = 3;

async fn watch(
    regions: Regions,
    control: Arc<dyn ControlPlane>,
    cluster: Arc<Cluster>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let failover = &cluster.failover;
    let mut held_reads = 0;
    loop {
        // A level stays as it was while a row is unread: a wrong guess either way is worse
        // than a late one.
        match control.lease_holder(&regions.peer).await {
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
        match control.lease_holder(&regions.me).await {
            Ok(holder) => {
                held_reads = match holder.as_ref() == Some(&regions.me) {
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
        if !pause(Duration::from_millis(RENEW_EVERY.0), &mut shutdown).await {
            return Ok(());
        }
    }
}
