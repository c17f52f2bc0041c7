//! One entity partition: its state (a version and a body, static), written only if nobody
//! wrote since it was read, with its events as outbox rows in the same conditional batch,
//! announced to the relay by a hint first; and the listings that find entities.

use super::ScyllaCampaignStore;
use crate::coupon::Coupon;
use crate::events::CampaignEvent;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::BatchWrite;

/// Outbox rows.
pub const OUTBOX: &str = "o";
/// Events one write may carry: each gets the position `version << 16 | index`.
const EVENTS_PER_WRITE: usize = 1 << 16;

/// A position as a row id that sorts as it reads.
pub fn position_id(position: u64) -> String {
    format!("{position:016x}")
}

fn position_of(id: &str) -> ServiceResult<u64> {
    u64::from_str_radix(id, 16).map_err(|_| ServiceError::internal("a bad outbox position"))
}

/// A row the batch writes beside the state: (kind, id, body).
pub type Row = (&'static str, String, Vec<u8>);

impl ScyllaCampaignStore {
    /// An entity's version and body.
    pub(super) async fn state(
        &self,
        tenant: &str,
        key: &str,
    ) -> ServiceResult<Option<(i64, Vec<u8>)>> {
        let row = self
            .statements
            .state
            .first(self.session(), (tenant.to_string(), key.to_string()))
            .await?;
        Ok(match row {
            Some((Some(version), body)) => Some((version, body.unwrap_or_default())),
            _ => None,
        })
    }

    /// Writes a new entity (version 1) with its events; false if it exists.
    pub(super) async fn create(
        &self,
        tenant: &str,
        key: &str,
        body: Vec<u8>,
        events: &[CampaignEvent],
    ) -> ServiceResult<bool> {
        self.commit(tenant, key, None, body, Vec::new(), events)
            .await
    }

    /// Writes the entity's next state over `version`, with its events; false if it moved.
    pub(super) async fn replace(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
        body: Vec<u8>,
        events: &[CampaignEvent],
    ) -> ServiceResult<bool> {
        self.commit(tenant, key, Some(version), body, Vec::new(), events)
            .await
    }

    /// The conditional batch: the state at the next version, `rows`, and the events as
    /// outbox rows (hinted to the relay first: a hint without its commit is harmless).
    pub(super) async fn commit(
        &self,
        tenant: &str,
        key: &str,
        version: Option<i64>,
        body: Vec<u8>,
        rows: Vec<Row>,
        events: &[CampaignEvent],
    ) -> ServiceResult<bool> {
        if events.len() >= EVENTS_PER_WRITE {
            return Err(ServiceError::internal("too many events for one write"));
        }
        let s = &self.statements;
        let (t, k) = (tenant.to_string(), key.to_string());
        let next = version.unwrap_or(0) + 1;
        let mut batch = BatchWrite::default();
        match version {
            None => batch.push(&s.create, (next, body, t.clone(), k.clone())),
            Some(v) => batch.push(&s.replace, (next, body, t.clone(), k.clone(), v)),
        }
        for (kind, id, row_body) in rows {
            batch.push(
                &s.put_row,
                (t.clone(), k.clone(), kind.to_string(), id, row_body),
            );
        }
        let base = u64::try_from(next).unwrap_or(0) << 16;
        for (i, event) in events.iter().enumerate() {
            let id = position_id(base | i as u64);
            batch.push(
                &s.put_row,
                (
                    t.clone(),
                    k.clone(),
                    OUTBOX.to_string(),
                    id,
                    // The event, then the trace context of the request that wrote it.
                    loyalty_events::trace::encode_traced(event, &event.id)?,
                ),
            );
        }
        if !events.is_empty() {
            self.relay
                .hint(tenant, key, base | (events.len() as u64 - 1))
                .await?;
        }
        batch.apply(self.session(), None).await
    }

    /// The entity's outbox rows after `after`, oldest first.
    pub(super) async fn outbox(
        &self,
        tenant: &str,
        key: &str,
        after: u64,
        limit: usize,
    ) -> ServiceResult<Vec<(u64, Vec<u8>)>> {
        let rows = self
            .statements
            .outbox_after
            .rows(
                self.session(),
                (
                    tenant.to_string(),
                    key.to_string(),
                    position_id(after),
                    i32::try_from(limit).unwrap_or(i32::MAX),
                ),
            )
            .await?;
        rows.into_iter()
            .map(|(id, body)| Ok((position_of(&id)?, body.unwrap_or_default())))
            .collect()
    }

    /// Names listed under `list`, after `after`, in name order.
    pub(super) async fn listed(
        &self,
        tenant: &str,
        list: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        let mut names = Vec::new();
        let mut from = after.unwrap_or_default().to_string();
        while names.len() < limit {
            let page = (limit - names.len()).min(1_000);
            let rows = self
                .statements
                .list_after
                .rows(
                    self.session(),
                    (
                        tenant.to_string(),
                        list.to_string(),
                        from.clone(),
                        page as i32,
                    ),
                )
                .await?;
            let done = rows.len() < page;
            names.extend(rows.into_iter().map(|(name,)| name));
            match names.last() {
                Some(last) if !done => from = last.clone(),
                _ => break,
            }
        }
        Ok(names)
    }

    /// Lists a member's coupon (and its lapse time for the sweep) before it is written.
    pub(super) async fn list_coupon(&self, tenant: &str, coupon: &Coupon) -> ServiceResult<()> {
        let Some(member) = &coupon.member else {
            return Ok(());
        };
        self.statements
            .list_add
            .run(
                self.session(),
                (
                    tenant.to_string(),
                    format!("member:{member}"),
                    coupon.code.clone(),
                ),
            )
            .await?;
        self.add_expiry(tenant, coupon).await
    }
}
