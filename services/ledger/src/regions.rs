//! The ledger's background work in two regions (decision 0019): its housekeeping (pending
//! points activated, holds and lots expired, reminders) and its recovery of transfers cut
//! short write wallets as client requests do, so they follow the rule client writes follow.
//! A tenant's work is done in its home region, only while that region holds its lease, and
//! nowhere while the tenant moves; in one region all of it is this process's.
//!
//! Each piece runs in a write scope as a client write does: under the epoch of its tenant's
//! home, so a wallet a newer home has written refuses it, and with a deadline inside the
//! lease, so no statement of it reaches the store after the lease may have lapsed. Without
//! this, a region cut off from the other drove on, after the healing, a transfer it had
//! started in the cut: its conditional write was checked in its own datacenter (whose
//! wallet was stale) and written to both, and the survivor's wallet held the transfer twice.

use crate::service::Ledger;
use loyalty_common::ids::TenantId;
use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
use loyalty_region::background::{Handling, WORK_TIME};
use loyalty_region::route::Refusal;
use std::time::Duration;

impl Ledger {
    /// Whether this region may do any background work now (it holds its lease).
    pub(crate) fn may_work(&self) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|regions| regions.read(|view, now| view.may_run(now)))
    }

    /// Runs `work`, a piece of `tenant`'s background work, if it is this region's now: in
    /// the write scope of the tenant's home. None when it is not (another region's tenant,
    /// one on the move, or this region's lease not held): it is left as it is, for its home
    /// or a later round.
    pub(crate) async fn as_background<T>(
        &self,
        tenant: &TenantId,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let Some(regions) = &self.regions else {
            return Some(work.await);
        };
        let (handling, epoch) = regions.read(|view, now| {
            let handling = view.handling(tenant.as_str(), now);
            (handling, view.home_epoch(tenant.as_str()))
        });
        match handling {
            Handling::Here => {
                let scope = WriteScope {
                    epoch: epoch.map(|epoch| epoch.0),
                    deadline: Some(
                        tokio::time::Instant::now() + Duration::from_millis(WORK_TIME.0),
                    ),
                };
                Some(WRITE_SCOPE.scope(scope, work).await)
            }
            Handling::Elsewhere => None,
            Handling::Wait(why) => {
                if why == Refusal::Unknown {
                    tracing::warn!(
                        tenant = tenant.as_str(),
                        "the tenant has no home region: its ledger housekeeping waits until it \
                         is placed (memberd region place)"
                    );
                }
                None
            }
        }
    }
}
