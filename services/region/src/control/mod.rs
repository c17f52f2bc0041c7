//! The control keyspace as a port: what the keeper and `memberd region` ask of it. Every call
//! is decided under `SERIAL` (decision 0019), so two regions never both succeed at a change
//! that excludes the other. The CQL adapter is [`cql::CqlControl`] (feature `cql`).

#[cfg(feature = "cql")]
pub mod cql;

use crate::model::{Epoch, Home, Millis, Region};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use std::time::Duration;

/// Every tenant's home, as of one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Homes {
    pub epoch: Epoch,
    pub homes: Vec<(String, Home)>,
}

/// A lease row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The region itself (alive, or lapsing), or the region that took its tenants over.
    pub holder: Region,
    /// How long the row lives yet, in the database's whole seconds (it may lapse up to a
    /// second sooner); None for a row taken over, which lives until it is given back.
    pub expires_in: Option<Millis>,
}

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// The region holds its lease (false: the other region took its tenants over).
    pub held: bool,
    pub epoch: Epoch,
}

#[async_trait]
pub trait ControlPlane: Send + Sync + 'static {
    /// Renews `region`'s lease for `ttl` (or takes it back once it has lapsed), and reads
    /// the homes' epoch.
    async fn renew(&self, region: &Region, ttl: Duration) -> ServiceResult<Renewal>;

    async fn homes(&self) -> ServiceResult<Homes>;

    /// Records that `region` was alive at `at_ms` (wall clock, ms since the epoch): a plain
    /// write in its own datacenter, replicated to the others as data is.
    async fn beat(&self, region: &Region, at_ms: i64) -> ServiceResult<()>;

    /// The newest heartbeat of `region` that has reached this datacenter.
    async fn last_beat(&self, region: &Region) -> ServiceResult<Option<i64>>;

    /// `region`'s lease row, read under `SERIAL`; None once it has lapsed.
    async fn lease_row(&self, region: &Region) -> ServiceResult<Option<LeaseRow>>;

    /// Who holds `region`'s lease row: the region itself (alive, or lapsing), the region
    /// that took its tenants over, or nobody (lapsed).
    async fn lease_holder(&self, region: &Region) -> ServiceResult<Option<Region>> {
        Ok(self.lease_row(region).await?.map(|row| row.holder))
    }

    /// Homes a tenant that has no home yet in `region` (false: it has one already).
    async fn place(&self, tenant: &str, region: &Region) -> ServiceResult<bool>;

    /// Takes `from`'s lease once it has lapsed, and homes its tenants in `to` under a new
    /// epoch; false while `from` still holds its lease. Finishing a take-over that was cut
    /// short (the lease taken, the homes not yet moved) is the same call.
    async fn take_over(&self, from: &Region, to: &Region) -> ServiceResult<bool>;

    /// A planned move's first step: gives `to` its lease back and marks `tenants` moving to
    /// it (no region writes them), under a new epoch.
    async fn start_move(&self, tenants: &[String], to: &Region) -> ServiceResult<Epoch>;

    /// The second step, once the quiet time has passed: every moving tenant is homed where
    /// it was moving to, under a new epoch.
    async fn finish_move(&self) -> ServiceResult<Epoch>;
}
