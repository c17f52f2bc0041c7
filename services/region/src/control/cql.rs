//! The control keyspace on ScyllaDB: conditional writes under `SERIAL` (the cluster's
//! `serial_writes` profile, which a failover never switches) and reads at `SERIAL`, so every
//! answer is the majority's. Heartbeats are plain writes at `LOCAL_QUORUM`.
//!
//! A change of the homes is one conditional batch on the `homes` partition: the epoch, read
//! first, is the condition (`IF epoch = ?`), so two concurrent changes never both apply and
//! the loser reads again.

use super::{ControlPlane, Homes, LeaseRow, Renewal};
use crate::model::{Epoch, Home, Millis, Region};
use async_trait::async_trait;
use loyalty_common::error::{ServiceError, ServiceResult};
use loyalty_scylla::session::Cluster;
use loyalty_scylla::statements::{AppliedRow, BatchWrite};
use scylla::statement::Consistency;
use std::sync::Arc;
use std::time::Duration;

/// The one partition of `homes`.
const SCOPE: &str = "homes";
/// Attempts at a change of the homes that loses to concurrent ones.
const ATTEMPTS: usize = 10;

loyalty_scylla::statements! {
    pub struct ControlStatements {
        renew_lease: "UPDATE {keyspace}.region_leases USING TTL ? SET holder = ? WHERE region = ? IF holder = ?"
            => (i32, String, String, String) => AppliedRow,
        take_lease: "INSERT INTO {keyspace}.region_leases (region, holder) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            => (String, String, i32) => AppliedRow,
        take_over_lease: "INSERT INTO {keyspace}.region_leases (region, holder) VALUES (?, ?) IF NOT EXISTS"
            => (String, String) => AppliedRow,
        give_back_lease: "DELETE FROM {keyspace}.region_leases WHERE region = ? IF holder != ?"
            => (String, String) => AppliedRow,
        lease_row: "SELECT holder, TTL(holder) FROM {keyspace}.region_leases WHERE region = ?"
            => (String,) => (Option<String>, Option<i32>),
        homes: "SELECT epoch, tenant, home, moving_to FROM {keyspace}.homes WHERE scope = ?"
            => (String,) => (Option<i64>, Option<String>, Option<String>, Option<String>),
        first_epoch: "UPDATE {keyspace}.homes SET epoch = ? WHERE scope = ? IF epoch = null"
            => (i64, String) => AppliedRow,
        next_epoch: "UPDATE {keyspace}.homes SET epoch = ? WHERE scope = ? IF epoch = ?"
            => (i64, String, i64) => AppliedRow,
        beat: "UPDATE {keyspace}.heartbeats SET at_ms = ? WHERE region = ?"
            => (i64, String) => (),
        last_beat: "SELECT at_ms FROM {keyspace}.heartbeats WHERE region = ?"
            => (String,) => (Option<i64>,),
        set_home: "UPDATE {keyspace}.homes SET home = ?, moving_to = ? WHERE scope = ? AND tenant = ?"
            => (String, Option<String>, String, String) => (),
    }
}

/// A tenant's row as read: its home, and where it is moving to.
struct Row {
    tenant: String,
    home: String,
    moving_to: Option<String>,
}

pub struct CqlControl {
    cluster: Arc<Cluster>,
    statements: ControlStatements,
}

fn epoch_of(value: Option<i64>) -> ServiceResult<Epoch> {
    let value = value.unwrap_or(0);
    u64::try_from(value)
        .map(Epoch)
        .map_err(|_| ServiceError::internal("the homes' epoch is negative: a corrupt row"))
}

fn region(name: &str) -> ServiceResult<Region> {
    Region::parse(name).map_err(|e| ServiceError::internal(format!("a stored home: {e}")))
}

impl CqlControl {
    /// The control keyspace `keyspace` (`<prefix>_regions`) on `cluster`.
    pub async fn prepare(cluster: Arc<Cluster>, keyspace: &str) -> ServiceResult<Self> {
        let mut statements = ControlStatements::prepare(&cluster.session, keyspace).await?;
        let serial = Some(cluster.serial_writes.clone());
        let st = &mut statements;
        for conditional in [
            &mut st.renew_lease.prepared,
            &mut st.take_lease.prepared,
            &mut st.take_over_lease.prepared,
            &mut st.give_back_lease.prepared,
        ] {
            conditional.set_execution_profile_handle(serial.clone());
        }
        st.beat
            .prepared
            .set_execution_profile_handle(Some(cluster.local_writes.clone()));
        st.lease_row.prepared.set_consistency(Consistency::Serial);
        st.homes.prepared.set_consistency(Consistency::Serial);
        Ok(Self {
            cluster,
            statements,
        })
    }

    async fn rows(&self) -> ServiceResult<(Epoch, Vec<Row>)> {
        let read = self
            .statements
            .homes
            .rows(&self.cluster.session, (SCOPE.to_string(),))
            .await?;
        let epoch = epoch_of(read.first().and_then(|r| r.0))?;
        let rows = read
            .into_iter()
            .filter_map(|(_, tenant, home, moving_to)| {
                Some(Row {
                    tenant: tenant?,
                    home: home?,
                    moving_to,
                })
            })
            .collect();
        Ok((epoch, rows))
    }

    /// Applies `changes` (tenant, home, moving to) under the next epoch, if the epoch is
    /// still `epoch`: whether it applied.
    async fn change(
        &self,
        epoch: Epoch,
        changes: Vec<(String, String, Option<String>)>,
    ) -> ServiceResult<bool> {
        let st = &self.statements;
        let next = i64::try_from(epoch.next().0)
            .map_err(|_| ServiceError::internal("the homes' epoch is past bigint"))?;
        let mut batch = BatchWrite::default();
        if epoch == Epoch(0) {
            batch.push(&st.first_epoch, (next, SCOPE.to_string()));
        } else {
            batch.push(&st.next_epoch, (next, SCOPE.to_string(), next - 1));
        }
        for (tenant, home, moving_to) in changes {
            batch.push(&st.set_home, (home, moving_to, SCOPE.to_string(), tenant));
        }
        batch
            .apply(&self.cluster.session, Some(&self.cluster.serial_writes))
            .await
    }

    /// Reads the homes and applies what `plan` makes of them, again while another change
    /// wins the race; the new epoch, or None when `plan` had nothing to change.
    async fn change_with(
        &self,
        plan: impl Fn(&[Row]) -> Vec<(String, String, Option<String>)>,
    ) -> ServiceResult<Option<Epoch>> {
        for _ in 0..ATTEMPTS {
            let (epoch, rows) = self.rows().await?;
            let changes = plan(&rows);
            if changes.is_empty() {
                return Ok(None);
            }
            if self.change(epoch, changes).await? {
                return Ok(Some(epoch.next()));
            }
        }
        Err(ServiceError::unavailable(
            "the tenants' homes kept changing under this change; retry",
        ))
    }
}

#[async_trait]
impl ControlPlane for CqlControl {
    async fn renew(&self, region: &Region, ttl: Duration) -> ServiceResult<Renewal> {
        let st = &self.statements;
        let session = &self.cluster.session;
        let ttl = i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX);
        let me = region.as_str().to_string();
        let renewed = st
            .renew_lease
            .applied(session, (ttl, me.clone(), me.clone(), me.clone()))
            .await?;
        let held = renewed
            || st
                .take_lease
                .applied(session, (me.clone(), me, ttl))
                .await?;
        let (epoch, _) = self.rows().await?;
        Ok(Renewal { held, epoch })
    }

    async fn homes(&self) -> ServiceResult<Homes> {
        let (epoch, rows) = self.rows().await?;
        let homes = rows
            .into_iter()
            .map(|row| {
                let home = Home {
                    region: region(&row.home)?,
                    epoch,
                    moving: row.moving_to.is_some(),
                };
                Ok((row.tenant, home))
            })
            .collect::<ServiceResult<_>>()?;
        Ok(Homes { epoch, homes })
    }

    async fn beat(&self, region: &Region, at_ms: i64) -> ServiceResult<()> {
        let values = (at_ms, region.as_str().to_string());
        self.statements
            .beat
            .run(&self.cluster.session, values)
            .await
    }

    async fn last_beat(&self, region: &Region) -> ServiceResult<Option<i64>> {
        let row = self
            .statements
            .last_beat
            .first(&self.cluster.session, (region.as_str().to_string(),))
            .await?;
        Ok(row.and_then(|(at,)| at))
    }

    async fn lease_row(&self, region: &Region) -> ServiceResult<Option<LeaseRow>> {
        let row = self
            .statements
            .lease_row
            .first(&self.cluster.session, (region.as_str().to_string(),))
            .await?;
        let Some((Some(holder), ttl)) = row else {
            return Ok(None);
        };
        Ok(Some(LeaseRow {
            holder: self::region(&holder)?,
            expires_in: ttl.map(|secs| Millis(u64::try_from(secs).unwrap_or(0) * 1_000)),
        }))
    }

    async fn place(&self, tenant: &str, region: &Region) -> ServiceResult<bool> {
        let placed = self
            .change_with(|rows| {
                if rows.iter().any(|r| r.tenant == tenant) {
                    return Vec::new();
                }
                vec![(tenant.to_string(), region.to_string(), None)]
            })
            .await?;
        Ok(placed.is_some())
    }

    async fn take_over(&self, from: &Region, to: &Region) -> ServiceResult<bool> {
        let st = &self.statements;
        let session = &self.cluster.session;
        let (from, to) = (from.as_str().to_string(), to.as_str().to_string());
        let taken = st
            .take_over_lease
            .applied(session, (from.clone(), to.clone()))
            .await?;
        if !taken {
            // Taken by this region already (a take-over cut short), or still held.
            let holder = st.lease_row.first(session, (from.clone(),)).await?;
            if holder.and_then(|(h, _)| h).as_deref() != Some(to.as_str()) {
                return Ok(false);
            }
        }
        self.change_with(|rows| {
            rows.iter()
                .filter(|r| r.home == from && r.moving_to.is_none())
                .map(|r| (r.tenant.clone(), to.clone(), None))
                .collect()
        })
        .await?;
        Ok(true)
    }

    async fn start_move(&self, tenants: &[String], to: &Region) -> ServiceResult<Epoch> {
        let to = to.as_str().to_string();
        self.statements
            .give_back_lease
            .applied(&self.cluster.session, (to.clone(), to.clone()))
            .await?;
        let moved = self
            .change_with(|rows| {
                rows.iter()
                    .filter(|r| tenants.contains(&r.tenant) && r.moving_to.is_none())
                    .map(|r| (r.tenant.clone(), r.home.clone(), Some(to.clone())))
                    .collect()
            })
            .await?;
        match moved {
            Some(epoch) => Ok(epoch),
            None => Ok(self.rows().await?.0),
        }
    }

    async fn finish_move(&self) -> ServiceResult<Epoch> {
        let moved = self
            .change_with(|rows| {
                rows.iter()
                    .filter_map(|r| Some((r.tenant.clone(), r.moving_to.clone()?, None)))
                    .collect()
            })
            .await?;
        match moved {
            Some(epoch) => Ok(epoch),
            None => Ok(self.rows().await?.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_the_migrations() {
        let problems = loyalty_scylla::cql_check::check_statements(
            crate::schema::MIGRATIONS,
            &ControlStatements::definitions(),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
