//! The service's readers of its own outbox (bonus payouts, results, draw payouts, the mall's
//! refunds and credits): each reads the events after its saved position a page at a time and
//! saves the position once a page is handled, so a crash reads at most a page again, which
//! every reader's handling, keyed in the ledger or counted once, makes harmless.
//!
//! In two regions (decision 0019) both regions' change logs hold every tenant's events, and
//! each region's reader keeps a position of its own (`<reader>@<region>`). It handles the
//! events of the tenants homed in its region, passes by those of the other region's (whose
//! own reader handles them), and stops at an event no region may handle now (its tenant is
//! moving, or this region's lease lapses) until it may. A region that has taken the other's
//! tenants over starts its reader where the other region's stopped, when that is earlier, so
//! that what the lost region left unhandled is handled here; and while it covers for the
//! other region, it moves that region's position along with its own, so a failback resumes
//! there rather than at the loss.

use super::Campaigns;
use crate::events::CampaignEvent;
use loyalty_common::error::ServiceResult;
use loyalty_region::background::Handling;
use std::ops::AddAssign;

/// Events read per store call.
const PAGE: usize = 500;

impl Campaigns {
    /// Runs `handle` on every event after reader `reader`'s position that is this region's to
    /// handle, in order, moving the position on after each page; the sum of what it answered.
    /// An error stops the reading where it is: the page it happened in is read again next
    /// time.
    pub(super) async fn read_outbox<T, F, Fut>(&self, reader: &str, handle: F) -> ServiceResult<T>
    where
        T: Default + AddAssign,
        F: Fn(CampaignEvent) -> Fut,
        Fut: Future<Output = ServiceResult<T>>,
    {
        let (mine, theirs) = match self.progress_names(reader) {
            (mine, Some(theirs)) => (mine, theirs),
            (_, None) => return self.read_pages(reader, reader, &handle).await,
        };
        if !self.may_work() {
            return Ok(T::default());
        }
        let covering = self.covers_peer();
        if covering {
            let their_position = self.position_of(&theirs, reader).await?;
            if their_position < self.position_of(&mine, reader).await? {
                tracing::warn!(
                    reader = mine,
                    from = their_position,
                    "reading the outbox again from where the other region's reader stopped"
                );
                self.store.save_position(&mine, their_position).await?;
            }
        }
        let total = self.read_pages(&mine, reader, &handle).await?;
        // Every event up to here was handled in this region, as long as it covered for the
        // other one all along (checked again now: a failback may have begun meanwhile).
        if covering && self.covers_peer() {
            let position = self.position_of(&mine, reader).await?;
            self.store.save_position(&theirs, position).await?;
        }
        Ok(total)
    }

    /// The position saved as `name`; before the first, the one saved as `legacy` (the
    /// reader's name in one region, which every region's reader starts from).
    async fn position_of(&self, name: &str, legacy: &str) -> ServiceResult<u64> {
        match self.store.position(name).await? {
            0 if name != legacy => self.store.position(legacy).await,
            position => Ok(position),
        }
    }

    async fn read_pages<T, F, Fut>(&self, name: &str, legacy: &str, handle: &F) -> ServiceResult<T>
    where
        T: Default + AddAssign,
        F: Fn(CampaignEvent) -> Fut,
        Fut: Future<Output = ServiceResult<T>>,
    {
        let mut total = T::default();
        loop {
            let from = self.position_of(name, legacy).await?;
            let page = self.store.events_after(from, PAGE).await?;
            let full = page.len() == PAGE;
            let mut last = from;
            let mut waiting = false;
            for logged in page {
                match self.handling(&logged.event.tenant) {
                    Handling::Here => total += handle(logged.event).await?,
                    Handling::Elsewhere => {}
                    Handling::Wait(_) => {
                        waiting = true;
                        break;
                    }
                }
                last = logged.seq;
            }
            if last > from {
                self.store.save_position(name, last).await?;
            }
            if waiting || !full {
                return Ok(total);
            }
        }
    }
}
