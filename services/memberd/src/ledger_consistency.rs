//! The ledger's side of a failover (decision 0019, item 5): with
//! `scylla.ledger_write_consistency = "EACH_QUORUM"` and `[region]` set, every ledger process
//! reads the other region's lease row each second, and while this region holds it (the
//! other region is failed over, fenced until rebuilt) writes at `LOCAL_QUORUM`, so that a
//! lost datacenter does not stop the survivor's ledger. After the failback the configured
//! level applies again.

use crate::region_keeper::Regions;
use crate::schedule::pause;
use loyalty_region::control::ControlPlane;
use loyalty_region::lease::RENEW_EVERY;
use loyalty_scylla::config::WriteConsistency;
use loyalty_scylla::session::Cluster;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the watch when the ledger's writes are synchronous across regions; None otherwise
/// (nothing to switch).
pub async fn start(
    process: &crate::roles::Process<'_>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let (Some(regions), Some(scylla)) = (
        Regions::from_settings(&process.config.region)?,
        process.scylla,
    ) else {
        return Ok(None);
    };
    if scylla.config.ledger_write_consistency != WriteConsistency::EachQuorum {
        return Ok(None);
    }
    let control = crate::region_keeper::control_plane(process, "the ledger").await?;
    let cluster = Arc::clone(&scylla.cluster);
    let shutdown = process.shutdown.clone();
    Ok(Some(tokio::spawn(watch(
        regions, control, cluster, shutdown,
    ))))
}

async fn watch(
    regions: Regions,
    control: Arc<dyn ControlPlane>,
    cluster: Arc<Cluster>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let writes = &cluster.ledger_consistency;
    loop {
        match control.lease_holder(&regions.peer).await {
            Ok(holder) => {
                let failed_over = holder.as_ref() == Some(&regions.me);
                if writes.other_region_failed_over(failed_over) {
                    tracing::warn!(
                        peer = %regions.peer,
                        failed_over,
                        "ledger writes now at {:?}",
                        writes.consistency()
                    );
                }
            }
            // The level stays as it was: a wrong guess either way is worse than a late one.
            Err(e) => tracing::warn!(error = %e, "ledger writes: the other region's lease unread"),
        }
        if !pause(Duration::from_millis(RENEW_EVERY.0), &mut shutdown).await {
            return Ok(());
        }
    }
}
