//! The lucky-draw half of the campaign store's port: a draw with what it has awarded, its
//! members' counts per limit period and its entries, all moved together by one write per
//! entry. The store decides an entry's outcome from its roll at the moment it writes it, so
//! no prize is ever won past its stock or the draw's budget, however many entries race.

use crate::draw::DrawState;
use crate::draw::entry::{Entry, EntryState};
use crate::events::CampaignEvent;
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

/// How a new entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Written, with the outcome its roll gave.
    Yes(Box<Entry>),
    /// An entry of the draw has its id (the stored one).
    Exists(Box<Entry>),
    /// The member entered the draw's limit in the entry's period: nothing was written.
    MemberLimit,
    NoDraw,
}

/// How a change of an entry's state ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntrySettled {
    Yes(Box<Entry>),
    NotFrom(Box<Entry>),
    Missing,
}

/// Makes the events an entry is written with, once its outcome is known.
pub type EntryEvents = std::sync::Arc<dyn Fn(&Entry) -> Vec<CampaignEvent> + Send + Sync>;

#[async_trait]
pub trait DrawRepository: Send + Sync + 'static {
    /// Stores a new draw with `events`; the stored one instead if its id is taken.
    async fn create_draw(
        &self,
        tenant: &TenantId,
        draw: &DrawState,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Option<DrawState>>;
    async fn draw(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<DrawState>>;
    async fn entry_of(
        &self,
        tenant: &TenantId,
        draw: &str,
        id: &str,
    ) -> ServiceResult<Option<Entry>>;
    /// Writes a new entry with the outcome its roll gives now (its prize counted as won),
    /// if no entry of the draw has its id and its member is under the draw's limit in its
    /// period, with the events `events` makes of it.
    async fn enter(&self, entry: &Entry, events: EntryEvents) -> ServiceResult<Entered>;
    /// Moves an entry in state `from` to `next`, giving its prize and its member's count
    /// back when the new state does not count, with `events`.
    async fn settle_entry(
        &self,
        tenant: &TenantId,
        from: EntryState,
        next: &Entry,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<EntrySettled>;
    /// Drawn entries of every tenant due before `before_ms`, at most `limit`.
    async fn due_entries(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Entry>>;
}

/// `entry` with the outcome `state` gives its roll, counted in `state`.
pub fn decide(state: &mut DrawState, entry: &Entry) -> Entry {
    let outcome = state.outcome(entry.roll);
    if let Some(prize) = &outcome.prize {
        state.count(prize, true);
    }
    Entry {
        outcome,
        ..entry.clone()
    }
}
