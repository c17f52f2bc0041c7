//! `memberd region`: the tenants' homes of two regions (decision 0019), as the operator sees
//! and moves them in the control keyspace. Each command asks the majority (`SERIAL`), so it
//! answers the same in either region, and refuses what could let two regions write a tenant.

use crate::config::MemberdConfig;
use crate::storage::Storage;
use anyhow::{Context, bail};
use loyalty_region::Region;
use loyalty_region::control::ControlPlane;
use loyalty_region::control::cql::CqlControl;
use loyalty_region::keeper::MOVE_QUIET;
use loyalty_scylla::config::CONTROL_SERVICE;
use std::sync::Arc;
use std::time::Duration;

/// The control keyspace of the cluster `[scylla]` names, migrated.
pub async fn control(config: &MemberdConfig) -> anyhow::Result<CqlControl> {
    if config.storage != Storage::Scylla {
        bail!("memberd region works on the CQL store: set storage = \"scylla\" and [scylla]");
    }
    let cluster = loyalty_scylla::session::connect(&config.scylla).await?;
    loyalty_scylla::migrate::require_current(
        &cluster,
        &config.scylla,
        CONTROL_SERVICE,
        loyalty_region::schema::MIGRATIONS,
    )
    .await?;
    let keyspace = config.scylla.keyspace(CONTROL_SERVICE);
    Ok(CqlControl::prepare(Arc::new(cluster), &keyspace).await?)
}

pub fn region(name: &str) -> anyhow::Result<Region> {
    Region::parse(name).context("a region's name")
}

/// The homes, one line per tenant, after a line with their epoch.
pub async fn status(control: &dyn ControlPlane) -> anyhow::Result<String> {
    let homes = control.homes().await?;
    let mut out = format!("homes at epoch {}\n", homes.epoch.0);
    for (tenant, home) in &homes.homes {
        let moving = if home.moving { " (moving)" } else { "" };
        out.push_str(&format!("{tenant}\t{}{moving}\n", home.region));
    }
    Ok(out)
}

/// Homes a tenant that has none yet.
pub async fn place(control: &dyn ControlPlane, tenant: &str, to: &Region) -> anyhow::Result<()> {
    if !control.place(tenant, to).await? {
        let homes = control.homes().await?;
        let home = homes.homes.iter().find(|(t, _)| t == tenant);
        let at = home.map_or_else(|| "?".to_string(), |(_, h)| h.region.to_string());
        bail!("{tenant} is homed in {at} already: move it with `memberd region move`");
    }
    Ok(())
}

/// Moves every tenant of `from` to `to`, once `from`'s lease has lapsed.
pub async fn failover(
    control: &dyn ControlPlane,
    from: &Region,
    to: &Region,
) -> anyhow::Result<()> {
    if from == to {
        bail!("--from and --to name the same region");
    }
    if !control.take_over(from, to).await? {
        let holder = control.lease_holder(from).await?;
        match holder {
            Some(holder) if holder == *from => bail!(
                "region {from} still holds its lease: it renewed within the last 5 s, so it is \
                 running and may be writing. Stop its processes or cut it off from the other \
                 region and the witness, then run this again"
            ),
            Some(holder) => bail!("region {from}'s tenants were taken over by {holder} already"),
            None => bail!("region {from}'s lease lapsed just now; run this again"),
        }
    }
    Ok(())
}

/// Moves `tenants` to `to` in two steps, with the quiet time between (progress on stderr).
/// A region that was failed away from must have been rebuilt first (`rebuilt`).
pub async fn move_home(
    control: &dyn ControlPlane,
    tenants: &[String],
    to: &Region,
    rebuilt: bool,
) -> anyhow::Result<()> {
    let homes = control.homes().await?;
    for tenant in tenants {
        if !homes.homes.iter().any(|(t, _)| t == tenant) {
            bail!("{tenant} has no home yet: place it with `memberd region place`");
        }
    }
    let holder = control.lease_holder(to).await?;
    if holder.as_ref().is_some_and(|h| h != to) && !rebuilt {
        bail!(
            "region {to} was failed away from: its datacenter may hold writes the other region \
             never saw. Rebuild its nodes from the other region's datacenter \
             (docs/operations/failover.md), then run this again with --rebuilt"
        );
    }
    let marked = control.start_move(tenants, to).await?;
    eprintln!(
        "memberd: {} tenant(s) marked moving to {to} (epoch {}); written nowhere for {} s",
        tenants.len(),
        marked.0,
        MOVE_QUIET.0 / 1000
    );
    tokio::time::sleep(Duration::from_millis(MOVE_QUIET.0)).await;
    let done = control.finish_move().await?;
    eprintln!("memberd: homed in {to} (epoch {})", done.0);
    Ok(())
}
