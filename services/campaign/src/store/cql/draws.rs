//! Lucky draws on ScyllaDB: one entity partition per draw (`draw:<id>`), its state (the draw,
//! what it awarded, its seed; JSON) static, its entries (`e`) and its members' counts per
//! period (`m`) as rows. Every entry and every change of one is a conditional batch on the
//! draw's version, with the outcome decided on the state that batch is conditional on, so
//! racing entries never win a prize past its stock. Drawn entries are listed in `due`.

use super::indexes::DRAW_ENTRIES;
use super::sales::back_off;
use super::{ScyllaCampaignStore, decode, encode};
use crate::draw::DrawState;
use crate::draw::entry::{Entry, EntryState};
use crate::events::CampaignEvent;
use crate::store::draws::{DrawRepository, Entered, EntryEvents, EntrySettled, decide};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

const ENTRY: &str = "e";
const MEMBER: &str = "m";
/// Tries of one write against others on the same draw before the caller is asked to retry.
const MAX_TRIES: u32 = 200;

fn draw_key(id: &str) -> String {
    format!("draw:{id}")
}

fn member_row(e: &Entry) -> String {
    format!("{}/{}", e.member, e.period)
}

fn due_id(e: &Entry) -> String {
    format!("{}/{}", e.draw, e.id)
}

fn to_json(state: &DrawState) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(state).map_err(ServiceError::internal)
}

fn from_json(body: &[u8]) -> ServiceResult<DrawState> {
    serde_json::from_slice(body).map_err(ServiceError::internal)
}

fn busy() -> ServiceError {
    ServiceError::unavailable("the draw is busy: retry with the same entry id")
}

impl ScyllaCampaignStore {
    async fn draw_state(
        &self,
        tenant: &str,
        draw: &str,
    ) -> ServiceResult<Option<(i64, DrawState)>> {
        match self.state(tenant, &draw_key(draw)).await? {
            Some((version, body)) => Ok(Some((version, from_json(&body)?))),
            None => Ok(None),
        }
    }

    async fn read_entry(&self, tenant: &str, draw: &str, id: &str) -> ServiceResult<Option<Entry>> {
        match self.row_of(tenant, &draw_key(draw), ENTRY, id).await? {
            Some(body) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    async fn entered(&self, e: &Entry) -> ServiceResult<u32> {
        match self
            .row_of(&e.tenant, &draw_key(&e.draw), MEMBER, &member_row(e))
            .await?
        {
            Some(body) => decode(&body),
            None => Ok(0),
        }
    }

    /// One try of an entry: None if another write on the draw came first.
    async fn try_enter(
        &self,
        entry: &Entry,
        events: &EntryEvents,
    ) -> ServiceResult<Option<Entered>> {
        let t = &entry.tenant;
        // The draw's version first, for the reason the flash sale's claims give.
        let Some((version, mut state)) = self.draw_state(t, &entry.draw).await? else {
            return Ok(Some(Entered::NoDraw));
        };
        if let Some(stored) = self.read_entry(t, &entry.draw, &entry.id).await? {
            return Ok(Some(Entered::Exists(Box::new(stored))));
        }
        let entered = self.entered(entry).await?;
        if state.draw.limit.is_some_and(|l| entered >= l.count) {
            return Ok(Some(Entered::MemberLimit));
        }
        let decided = decide(&mut state, entry);
        let rows = vec![
            (ENTRY, decided.id.clone(), encode(&decided)?),
            (MEMBER, member_row(&decided), encode(&(entered + 1))?),
        ];
        let body = to_json(&state)?;
        let done = self
            .commit(
                t,
                &draw_key(&entry.draw),
                Some(version),
                body,
                rows,
                &events(&decided),
            )
            .await?;
        Ok(done.then_some(Entered::Yes(Box::new(decided))))
    }

    /// One try of a change of an entry: None if another write on the draw came first.
    async fn try_settle_entry(
        &self,
        tenant: &str,
        from: EntryState,
        next: &Entry,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<EntrySettled>> {
        let Some((version, mut state)) = self.draw_state(tenant, &next.draw).await? else {
            return Ok(Some(EntrySettled::Missing));
        };
        let Some(stored) = self.read_entry(tenant, &next.draw, &next.id).await? else {
            return Ok(Some(EntrySettled::Missing));
        };
        if stored.state != from {
            return Ok(Some(EntrySettled::NotFrom(Box::new(stored))));
        }
        let mut rows = Vec::new();
        if from.counts() && !next.state.counts() {
            if let Some(prize) = &stored.outcome.prize {
                state.count(prize, false);
            }
            let entered = self.entered(&stored).await?.saturating_sub(1);
            rows.push((MEMBER, member_row(&stored), encode(&entered)?));
        }
        rows.push((ENTRY, next.id.clone(), encode(next)?));
        let body = to_json(&state)?;
        let done = self
            .commit(
                tenant,
                &draw_key(&next.draw),
                Some(version),
                body,
                rows,
                events,
            )
            .await?;
        Ok(done.then_some(EntrySettled::Yes(Box::new(next.clone()))))
    }
}

#[async_trait]
impl DrawRepository for ScyllaCampaignStore {
    async fn create_draw(
        &self,
        tenant: &TenantId,
        draw: &DrawState,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Option<DrawState>> {
        let t = tenant.as_str();
        if self
            .create(t, &draw_key(&draw.draw.id), to_json(draw)?, &events)
            .await?
        {
            return Ok(None);
        }
        match self.draw_state(t, &draw.draw.id).await? {
            Some((_, stored)) => Ok(Some(stored)),
            None => Err(busy()),
        }
    }

    async fn draw(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<DrawState>> {
        Ok(self.draw_state(tenant.as_str(), id).await?.map(|(_, s)| s))
    }

    async fn entry_of(
        &self,
        tenant: &TenantId,
        draw: &str,
        id: &str,
    ) -> ServiceResult<Option<Entry>> {
        self.read_entry(tenant.as_str(), draw, id).await
    }

    async fn enter(&self, entry: &Entry, events: EntryEvents) -> ServiceResult<Entered> {
        if let Some(due) = entry.due_ms {
            self.due_add(DRAW_ENTRIES, due, &entry.tenant, &due_id(entry))
                .await?;
        }
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_enter(entry, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn settle_entry(
        &self,
        tenant: &TenantId,
        from: EntryState,
        next: &Entry,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<EntrySettled> {
        let t = tenant.as_str();
        if let Some(due) = next.due_ms {
            self.due_add(DRAW_ENTRIES, due, t, &due_id(next)).await?;
        }
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_settle_entry(t, from, next, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn due_entries(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Entry>> {
        let mut found = Vec::new();
        for (at, tenant, id) in self.due_before(DRAW_ENTRIES, before_ms, limit).await? {
            let Some((draw, entry)) = id.split_once('/') else {
                continue;
            };
            match self.read_entry(&tenant, draw, entry).await? {
                Some(e) if e.due_ms == Some(at) => found.push(e),
                _ => self.due_remove(DRAW_ENTRIES, at, &tenant, &id).await?,
            }
        }
        Ok(found)
    }
}
