//! Lucky draws in the embedded store: a draw's state (JSON), members' counts per period,
//! entries, and drawn entries by when they are due, each entry moved under the store's one
//! writer with its events.

use super::{EmbeddedCampaignStore, Inner, encode, key, storage, time_part};
use crate::draw::DrawState;
use crate::draw::entry::{Entry, EntryState};
use crate::events::CampaignEvent;
use crate::store::draws::{DrawRepository, Entered, EntryEvents, EntrySettled, decide};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

fn draw_key(tenant: &str, draw: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), draw.as_bytes()])
}

fn entry_key(tenant: &str, draw: &str, id: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), draw.as_bytes(), id.as_bytes()])
}

fn member_key(e: &Entry) -> Vec<u8> {
    key(&[
        e.tenant.as_bytes(),
        e.draw.as_bytes(),
        e.member.as_bytes(),
        e.period.as_bytes(),
    ])
}

fn due_key(e: &Entry, due: i64) -> Vec<u8> {
    key(&[
        &time_part(due),
        e.tenant.as_bytes(),
        e.draw.as_bytes(),
        e.id.as_bytes(),
    ])
}

impl Inner {
    /// Draws are kept as JSON: their prizes' kinds are internally tagged enums.
    fn draw_state(&self, tenant: &str, draw: &str) -> ServiceResult<Option<DrawState>> {
        self.draws
            .get(draw_key(tenant, draw))
            .map_err(storage)?
            .map(|v| serde_json::from_slice(&v).map_err(ServiceError::internal))
            .transpose()
    }

    fn put_draw(&self, batch: &mut fjall::OwnedWriteBatch, tenant: &str, s: &DrawState) {
        // Plain data: serialising it cannot fail.
        let json = serde_json::to_vec(s).unwrap_or_default();
        batch.insert(&self.draws, draw_key(tenant, &s.draw.id), json);
    }

    fn count_member(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        entry: &Entry,
        up: bool,
    ) -> ServiceResult<u32> {
        let row = member_key(entry);
        let entered = Self::get::<u32>(&self.draw_members, &row)?.unwrap_or(0);
        let next = if up {
            entered.saturating_add(1)
        } else {
            entered.saturating_sub(1)
        };
        batch.insert(&self.draw_members, row, encode(&next)?);
        Ok(entered)
    }
}

#[async_trait]
impl DrawRepository for EmbeddedCampaignStore {
    async fn create_draw(
        &self,
        tenant: &TenantId,
        draw: &DrawState,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Option<DrawState>> {
        let (tenant, draw) = (tenant.to_string(), draw.clone());
        self.write_locked(move |inner| {
            if let Some(stored) = inner.draw_state(&tenant, &draw.draw.id)? {
                return Ok(Some(stored));
            }
            let mut batch = inner.batch();
            inner.put_draw(&mut batch, &tenant, &draw);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(None)
        })
        .await
    }

    async fn draw(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<DrawState>> {
        self.settled().await?;
        self.inner.draw_state(tenant.as_str(), id)
    }

    async fn entry_of(
        &self,
        tenant: &TenantId,
        draw: &str,
        id: &str,
    ) -> ServiceResult<Option<Entry>> {
        self.settled().await?;
        Inner::get(
            &self.inner.draw_entries,
            &entry_key(tenant.as_str(), draw, id),
        )
    }

    async fn enter(&self, entry: &Entry, events: EntryEvents) -> ServiceResult<Entered> {
        let entry = entry.clone();
        self.write_locked(move |inner| {
            let row = entry_key(&entry.tenant, &entry.draw, &entry.id);
            if let Some(stored) = Inner::get::<Entry>(&inner.draw_entries, &row)? {
                return Ok(Entered::Exists(Box::new(stored)));
            }
            let Some(mut state) = inner.draw_state(&entry.tenant, &entry.draw)? else {
                return Ok(Entered::NoDraw);
            };
            let entered = Inner::get::<u32>(&inner.draw_members, &member_key(&entry))?;
            if let Some(limit) = state.draw.limit
                && entered.unwrap_or(0) >= limit.count
            {
                return Ok(Entered::MemberLimit);
            }
            let entry = decide(&mut state, &entry);
            let mut batch = inner.batch();
            inner.put_draw(&mut batch, &entry.tenant, &state);
            inner.count_member(&mut batch, &entry, true)?;
            batch.insert(&inner.draw_entries, row, encode(&entry)?);
            if let Some(due) = entry.due_ms {
                batch.insert(&inner.draw_due, due_key(&entry, due), []);
            }
            let seq = inner.log(&mut batch, events(&entry))?;
            inner.commit(batch, seq)?;
            Ok(Entered::Yes(Box::new(entry)))
        })
        .await
    }

    async fn settle_entry(
        &self,
        tenant: &TenantId,
        from: EntryState,
        next: &Entry,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<EntrySettled> {
        let next = next.clone();
        let row = entry_key(tenant.as_str(), &next.draw, &next.id);
        self.write_locked(move |inner| {
            let Some(stored) = Inner::get::<Entry>(&inner.draw_entries, &row)? else {
                return Ok(EntrySettled::Missing);
            };
            if stored.state != from {
                return Ok(EntrySettled::NotFrom(Box::new(stored)));
            }
            let mut batch = inner.batch();
            if from.counts() && !next.state.counts() {
                let Some(mut state) = inner.draw_state(&stored.tenant, &stored.draw)? else {
                    return Err(ServiceError::internal("an entry of a draw that is gone"));
                };
                if let Some(prize) = &stored.outcome.prize {
                    state.count(prize, false);
                    inner.put_draw(&mut batch, &stored.tenant, &state);
                }
                inner.count_member(&mut batch, &stored, false)?;
            }
            if let Some(due) = stored.due_ms {
                batch.remove(&inner.draw_due, due_key(&stored, due));
            }
            if let Some(due) = next.due_ms {
                batch.insert(&inner.draw_due, due_key(&next, due), []);
            }
            batch.insert(&inner.draw_entries, row, encode(&next)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(EntrySettled::Yes(Box::new(next)))
        })
        .await
    }

    async fn due_entries(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Entry>> {
        self.settled().await?;
        let end = time_part(before_ms);
        let mut found = Vec::new();
        for guard in self.inner.draw_due.range(..end.to_vec()).take(limit) {
            let row = guard.key().map_err(storage)?;
            let mut parts = row.get(9..).unwrap_or_default().splitn(3, |b| *b == 0);
            let (Some(tenant), Some(draw), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(ServiceError::internal("bad draw due key"));
            };
            if let Some(e) = Inner::get(&self.inner.draw_entries, &key(&[tenant, draw, id]))? {
                found.push(e);
            }
        }
        Ok(found)
    }
}
