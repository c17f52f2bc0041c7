//! The service's background work in two regions (decision 0019): its outbox readers, sweeps
//! and triggers write as client requests do (points through the ledger, coupons and orders in
//! its store), so they follow the rule client writes follow. A tenant's work is done in its
//! home region, only while that region holds its lease, and nowhere while the tenant moves.
//! In one region all of it is this process's.

use super::Campaigns;
use loyalty_common::error::ServiceResult;
use loyalty_region::background::Handling;
use loyalty_region::route::Refusal;

impl Campaigns {
    /// What to do now with `tenant`'s background work.
    pub(super) fn handling(&self, tenant: &str) -> Handling {
        let Some(regions) = &self.regions else {
            return Handling::Here;
        };
        let handling = regions.read(|view, now| view.handling(tenant, now));
        if handling == Handling::Wait(Refusal::Unknown) {
            tracing::warn!(
                tenant,
                "the tenant has no home region: its campaign work waits until it is placed \
                 (memberd region place)"
            );
        }
        handling
    }

    /// Whether `tenant`'s background work is this region's now: for the sweeps, which find
    /// what is due again on their next round.
    pub(super) fn works_here(&self, tenant: &str) -> bool {
        self.handling(tenant) == Handling::Here
    }

    /// The names a piece of work saves its progress under: this region's (`<name>@<region>`)
    /// and the other region's, or `name` alone in one region.
    pub(super) fn progress_names(&self, name: &str) -> (String, Option<String>) {
        match &self.regions {
            None => (name.to_string(), None),
            Some(regions) => regions.read(|view, _| {
                let named = |region| format!("{name}@{region}");
                (named(view.region()), Some(named(view.peer())))
            }),
        }
    }

    /// Whether this region does the other region's work too: it took the other's tenants
    /// over, and every one of them has been moved here. Its outbox readers and sweeps with
    /// progress of their own then start from the other region's progress when that is
    /// behind, and move it along with their own.
    pub(super) fn covers_peer(&self) -> bool {
        self.regions
            .as_ref()
            .is_some_and(|regions| regions.read(|view, _| view.covers_peer()))
    }

    /// Whether this service runs in one of two regions.
    pub fn in_two_regions(&self) -> bool {
        self.regions.is_some()
    }

    /// Whether this region does the other's work too (see `covers_peer`): for the trigger
    /// feeds (`crate::trigger_feed`).
    pub fn covers_other_region(&self) -> bool {
        self.covers_peer()
    }

    /// The tenants moving from the other region to this one: for the trigger feeds, which
    /// read again what the other region may have left of theirs once they have arrived.
    pub fn tenants_moving_here(&self) -> Vec<String> {
        let Some(regions) = &self.regions else {
            return Vec::new();
        };
        regions.read(|view, _| view.moving_from_peer())
    }

    /// Whether `tenant` is homed in this region and not moving (always, in one region).
    pub fn homed_here(&self, tenant: &str) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|regions| regions.read(|view, _| view.homed_here(tenant)))
    }

    /// Saves how far trigger feed `durable` has settled every event (a change-log sequence)
    /// as this region's progress, and with `for_peer` as the other region's too.
    pub async fn save_trigger_progress(
        &self,
        durable: &str,
        settled: u64,
        for_peer: bool,
    ) -> ServiceResult<()> {
        let (mine, theirs) = self.progress_names(durable);
        self.store.save_position(&mine, settled).await?;
        match theirs {
            Some(theirs) if for_peer => self.store.save_position(&theirs, settled).await,
            _ => Ok(()),
        }
    }

    /// How far the other region's trigger feed `durable` had settled every event, as it
    /// last saved (0: never; and in one region).
    pub async fn peer_trigger_progress(&self, durable: &str) -> ServiceResult<u64> {
        match self.progress_names(durable) {
            (_, Some(theirs)) => self.store.position(&theirs).await,
            (_, None) => Ok(0),
        }
    }

    /// Whether this region may do any background work now (it holds its lease).
    pub(super) fn may_work(&self) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|regions| regions.read(|view, now| view.may_run(now)))
    }
}
