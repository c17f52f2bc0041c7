//! The service's readers of its own outbox (bonus payouts, results, draw payouts, the mall's
//! refunds and credits): each reads the events after its saved position a page at a time and
//! saves the position once a page is handled, so a crash reads at most a page again, which
//! every reader's handling, keyed in the ledger or counted once, makes harmless.

use super::Campaigns;
use crate::events::CampaignEvent;
use loyalty_common::error::ServiceResult;
use std::ops::AddAssign;

/// Events read per store call.
const PAGE: usize = 500;

impl Campaigns {
    /// Runs `handle` on every event after reader `reader`'s position, in order, moving the
    /// position on after each page; the sum of what it answered. An error stops the
    /// reading where it is: the page it happened in is read again next time.
    pub(super) async fn read_outbox<T, F, Fut>(&self, reader: &str, handle: F) -> ServiceResult<T>
    where
        T: Default + AddAssign,
        F: Fn(CampaignEvent) -> Fut,
        Fut: Future<Output = ServiceResult<T>>,
    {
        let mut total = T::default();
        loop {
            let from = self.store.position(reader).await?;
            let page = self.store.events_after(from, PAGE).await?;
            let Some(last) = page.last().map(|l| l.seq) else {
                return Ok(total);
            };
            let full = page.len() == PAGE;
            for logged in page {
                total += handle(logged.event).await?;
            }
            self.store.save_position(reader, last).await?;
            if !full {
                return Ok(total);
            }
        }
    }
}
