//! Scheduler leases on the cluster: of the replicas of one service, the one holding a
//! scheduler's lease runs it (decision 0018). A lease is a row with a TTL in the service's
//! `scheduler_leases` table, taken with `IF NOT EXISTS` and renewed with `IF holder = ?`, so
//! that two processes never both believe they hold it; a holder that dies lets it lapse.
//!
//! The row is named per datacenter (`<scheduler>@<datacenter>`): the conditional writes run at
//! `scylla.serial_consistency` (LOCAL_SERIAL by default), which decides among one
//! datacenter's replicas only, so each region keeps its own holder.

use crate::session::Cluster;
use crate::statements::AppliedRow;
use loyalty_common::error::ServiceResult;
use std::sync::Arc;
use std::time::Duration;

crate::statements! {
    pub struct LeaseStatements {
        take_scheduler_lease: "INSERT INTO {keyspace}.scheduler_leases (scheduler, holder) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            => (String, String, i32) => AppliedRow,
        renew_scheduler_lease: "UPDATE {keyspace}.scheduler_leases USING TTL ? SET holder = ? WHERE scheduler = ? IF holder = ?"
            => (i32, String, String, String) => AppliedRow,
        release_scheduler_lease: "DELETE FROM {keyspace}.scheduler_leases WHERE scheduler = ? IF holder = ?"
            => (String, String) => AppliedRow,
    }
}

/// One scheduler's lease in one keyspace, as one process asks for it.
pub struct CqlLease {
    cluster: Arc<Cluster>,
    statements: LeaseStatements,
    /// The row's key: the scheduler's name and this process's datacenter.
    row: String,
    holder: String,
    ttl_secs: i32,
}

impl CqlLease {
    /// The lease of `scheduler` in `keyspace`, asked for as `holder` (unique per process),
    /// lapsing `ttl` after its last renewal.
    pub async fn prepare(
        cluster: Arc<Cluster>,
        keyspace: &str,
        datacenter: &str,
        scheduler: &str,
        holder: &str,
        ttl: Duration,
    ) -> ServiceResult<Self> {
        let statements = LeaseStatements::prepare(&cluster.session, keyspace).await?;
        Ok(Self {
            cluster,
            statements,
            row: format!("{scheduler}@{datacenter}"),
            holder: holder.to_string(),
            ttl_secs: i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX),
        })
    }

    /// Renews the lease if this process holds it, else takes it if nobody does; whether this
    /// process holds it now.
    pub async fn hold(&self) -> ServiceResult<bool> {
        let session = &self.cluster.session;
        let renewed = self
            .statements
            .renew_scheduler_lease
            .applied(
                session,
                (
                    self.ttl_secs,
                    self.holder.clone(),
                    self.row.clone(),
                    self.holder.clone(),
                ),
            )
            .await?;
        if renewed {
            return Ok(true);
        }
        self.statements
            .take_scheduler_lease
            .applied(
                session,
                (self.row.clone(), self.holder.clone(), self.ttl_secs),
            )
            .await
    }

    /// Gives the lease up (on shutdown), so another replica takes it at its next ask instead
    /// of after the TTL; whether this process held it.
    pub async fn release(&self) -> ServiceResult<bool> {
        self.statements
            .release_scheduler_lease
            .applied(
                &self.cluster.session,
                (self.row.clone(), self.holder.clone()),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_the_migrations_of_every_keyspace_with_schedulers() {
        for migrations in [
            loyalty_ledger::schema::MIGRATIONS,
            loyalty_member::schema::MIGRATIONS,
            loyalty_campaign::schema::MIGRATIONS,
        ] {
            let problems =
                crate::cql_check::check_statements(migrations, &LeaseStatements::definitions());
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }
}
