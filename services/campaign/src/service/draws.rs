//! Lucky draws: head office creates one; a member enters it, paying its cost in points. The
//! entry is written with the outcome its roll gives (taking the prize's unit and the
//! member's limit), then its cost is held and taken in the ledger under keys of the entry,
//! and it is `paid`: a coupon prize is issued then, a points prize paid from the outbox
//! ([`Campaigns::pay_draws`]), a gift announced for the ERP. Points the ledger refuses void
//! the entry, giving the prize back; an entry cut short is taken on by a retry with the
//! same entry id, or voided by the sweep after the grace time, its cost given back.

use super::Campaigns;
use super::mall::{period_of, refused, wallet};
use super::mall_refunds::{Taken, give_back};
use crate::code;
use crate::draw::entry::{Entry, EntryState};
use crate::draw::{DrawState, LuckyDraw, Outcome, PrizeKind};
use crate::events::CampaignEvent;
use crate::store::{Entered, EntrySettled};
use loyalty_common::ServiceError;
use loyalty_common::clock::Clock;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as ledger_pb;
use serde::Deserialize;
use std::sync::Arc;

/// The outbox reader that pays points prizes and gives voided entries' costs back.
pub const READER: &str = "draw-payouts";
/// Entries handled per store call by the sweep.
const PAGE: usize = 500;

fn not_found(draw: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::DrawNotFound,
        format!("no lucky draw {draw}: create it first"),
    )
}

/// The ledger key of one step of an entry.
fn key(step: &str, entry: &Entry) -> String {
    super::mall::step_key(&format!("draw-{step}"), parts(entry))
}

fn parts(entry: &Entry) -> (&str, &str, &str) {
    (&entry.tenant, &entry.draw, &entry.id)
}

/// What an entry's events say of it. Until the draw has ended, the roll is the entry's
/// alone to know; the seed that proves it is published then.
fn entry_data(entry: &Entry) -> serde_json::Value {
    serde_json::json!({"draw": entry.draw, "entry": entry.id, "state": entry.state.label(),
        "roll": entry.roll, "drawn": entry.outcome.drawn, "prize": entry.outcome.prize,
        "reason": entry.outcome.reason, "cost_points": entry.cost_points,
        "hold_id": entry.hold_id, "coupon": entry.coupon})
}

/// The event named `name` of `entry`, stamped by `clock`.
fn entry_event(clock: &dyn Clock, entry: &Entry, name: &str) -> CampaignEvent {
    CampaignEvent::new(
        clock.new_ulid().to_string(),
        &entry.tenant,
        &entry.member,
        name,
        clock.now(),
        &entry_data(entry),
    )
}

impl Campaigns {
    /// Creates a lucky draw with a fresh secret seed (its SHA-256 in the answer and the
    /// `lucky_draw_created` event). Creating it again with the same settings answers with
    /// it; with others is `ALREADY_EXISTS`.
    pub async fn create_draw(
        &self,
        tenant: &TenantId,
        draw: LuckyDraw,
    ) -> ServiceResult<DrawState> {
        draw.validate()?;
        for prize in &draw.prizes {
            if let PrizeKind::Coupon { template } = &prize.kind {
                self.active_template(tenant, template).await?;
            }
        }
        let state = DrawState::new(draw);
        let event = self.event(
            tenant.as_str(),
            "",
            "lucky_draw_created",
            &serde_json::json!({"draw": state.draw, "seed_sha256": state.seed_sha256}),
        );
        match self.store.create_draw(tenant, &state, vec![event]).await? {
            None => Ok(state),
            Some(stored) if stored.draw == state.draw => Ok(stored),
            Some(_) => Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "a lucky draw {} exists with other settings: choose another id",
                    state.draw.id
                ),
            )),
        }
    }

    /// A draw with what it has awarded. Its seed is kept from the answer until it has
    /// ended (`None`), then published so every roll can be checked.
    pub async fn lucky_draw(&self, tenant: &TenantId, id: &str) -> ServiceResult<DrawState> {
        code::check_id("draw", id)?;
        let mut state = self
            .store
            .draw(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if state.draw.ends_ms.is_none_or(|end| self.now_ms() < end) {
            state.seed.clear();
        }
        Ok(state)
    }

    pub async fn draw_entry(
        &self,
        tenant: &TenantId,
        draw: &str,
        id: &str,
    ) -> ServiceResult<Entry> {
        code::check_id("entry_id", id)?;
        self.store.entry_of(tenant, draw, id).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::DrawEntryNotFound,
                format!("no entry {id} in this draw"),
            )
        })
    }

    /// Enters `member` in a running draw under `entry_id` (the caller's idempotency key):
    /// its cost is taken and its prize is the member's. The same id answers with the entry,
    /// finishing it if it was cut short.
    pub async fn enter_draw(
        &self,
        tenant: &TenantId,
        (draw_id, entry_id): (&str, &str),
        member: &MemberId,
    ) -> ServiceResult<Entry> {
        code::check_id("entry_id", entry_id)?;
        let state = self
            .store
            .draw(tenant, draw_id)
            .await?
            .ok_or_else(|| not_found(draw_id))?;
        if let Some(stored) = self.store.entry_of(tenant, draw_id, entry_id).await? {
            return self
                .resume_entry(tenant, same_member(stored, member)?)
                .await;
        }
        let now = self.now_ms();
        if !state.draw.open_at(now) {
            return Err(ServiceError::new(
                ErrorCode::DrawNotOpen,
                format!("lucky draw {draw_id} takes entries from its start until its end"),
            ));
        }
        let entry = Entry {
            id: entry_id.to_string(),
            tenant: tenant.to_string(),
            draw: draw_id.to_string(),
            member: member.to_string(),
            period: period_of(state.draw.limit, &state.draw.time_zone, now),
            roll: state.roll(entry_id),
            outcome: Outcome {
                drawn: None,
                prize: None,
                reason: None,
            },
            cost_points: state.draw.cost_points,
            state: EntryState::Drawn,
            hold_id: None,
            coupon: None,
            created_ms: now,
            updated_ms: now,
            due_ms: Some(now + self.saga_grace_ms),
        };
        let clock = Arc::clone(&self.clock);
        let events =
            Arc::new(move |e: &Entry| vec![entry_event(clock.as_ref(), e, "draw_entry_drawn")]);
        match self.store.enter(&entry, events).await? {
            Entered::Yes(drawn) => self.pay_entry(tenant, *drawn).await,
            Entered::Exists(stored) => {
                self.resume_entry(tenant, same_member(*stored, member)?)
                    .await
            }
            Entered::MemberLimit => Err(ServiceError::new(
                ErrorCode::DrawLimitReached,
                format!(
                    "lucky draw {draw_id}: the member's entries for {} are used",
                    entry.period
                ),
            )),
            Entered::NoDraw => Err(not_found(draw_id)),
        }
    }

    async fn resume_entry(&self, tenant: &TenantId, entry: Entry) -> ServiceResult<Entry> {
        match entry.state {
            EntryState::Drawn => self.pay_entry(tenant, entry).await,
            _ => Ok(entry),
        }
    }

    /// Takes a drawn entry's cost (held, then taken, each under a key of the entry), issues
    /// a coupon prize, and marks it paid; voids it when the ledger refuses the points.
    async fn pay_entry(&self, tenant: &TenantId, entry: Entry) -> ServiceResult<Entry> {
        let mut paid = entry.clone();
        paid.state = EntryState::Paid;
        paid.updated_ms = self.now_ms();
        paid.due_ms = None;
        if entry.cost_points > 0 {
            let ledger = self.ledger("taking a draw's cost")?;
            let held = ledger.redeem(hold_request(&entry)).await;
            let hold = match held {
                Ok(written) => written.hold.map(|h| h.hold_id).unwrap_or_default(),
                Err(e) if refused(e.code) => {
                    self.settle_entry(tenant, &entry, EntryState::Voided, None)
                        .await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            ledger
                .capture_hold(ledger_pb::HoldActionRequest {
                    wallet: Some(wallet(&entry.tenant, &entry.member)),
                    idempotency_key: key("capture", &entry),
                    hold_id: hold.clone(),
                })
                .await?;
            paid.hold_id = Some(hold);
        }
        let state = self
            .store
            .draw(tenant, &entry.draw)
            .await?
            .ok_or_else(|| not_found(&entry.draw))?;
        let prize = entry
            .outcome
            .prize
            .as_ref()
            .and_then(|id| state.draw.prizes.iter().find(|p| &p.id == id));
        if let Some(PrizeKind::Coupon { template }) = prize.map(|p| &p.kind) {
            let member = MemberId::parse(entry.member.as_str())?;
            paid.coupon = Some(
                self.issue(tenant, template, &member, &key("coupon", &entry))
                    .await?
                    .code,
            );
        }
        self.settle_entry(tenant, &entry, EntryState::Paid, Some(paid))
            .await
    }

    async fn settle_entry(
        &self,
        tenant: &TenantId,
        entry: &Entry,
        to: EntryState,
        next: Option<Entry>,
    ) -> ServiceResult<Entry> {
        let next = next.unwrap_or_else(|| Entry {
            state: to,
            updated_ms: self.now_ms(),
            due_ms: None,
            ..entry.clone()
        });
        let event = entry_event(
            self.clock.as_ref(),
            &next,
            &format!("draw_entry_{}", to.label()),
        );
        match self
            .store
            .settle_entry(tenant, entry.state, &next, vec![event])
            .await?
        {
            EntrySettled::Yes(e) | EntrySettled::NotFrom(e) => Ok(*e),
            EntrySettled::Missing => self.draw_entry(tenant, &entry.draw, &entry.id).await,
        }
    }

    /// Voids every entry left drawn (its cost never taken, or taken and not recorded)
    /// longer than the grace time ago: its prize goes back, its cost is given back by
    /// [`Campaigns::pay_draws`]; how many.
    pub async fn sweep_entries(&self) -> ServiceResult<u64> {
        let mut voided = 0;
        loop {
            let due = self.store.due_entries(self.now_ms(), PAGE).await?;
            let mut moved = 0;
            for entry in due {
                if !self.works_here(&entry.tenant) {
                    continue;
                }
                let tenant = TenantId::parse(entry.tenant.as_str())?;
                let mut next = Entry {
                    state: EntryState::Voided,
                    updated_ms: self.now_ms(),
                    due_ms: None,
                    ..entry.clone()
                };
                if entry.cost_points > 0 {
                    // The hold it may have made, found by its key (or made now, and given
                    // back with the rest).
                    match self
                        .ledger("voiding an entry")?
                        .redeem(hold_request(&entry))
                        .await
                    {
                        Ok(written) => next.hold_id = written.hold.map(|h| h.hold_id),
                        Err(e) if refused(e.code) => {}
                        Err(_) => continue,
                    }
                }
                let after = self
                    .settle_entry(&tenant, &entry, EntryState::Voided, Some(next))
                    .await?;
                moved += u64::from(after.state == EntryState::Voided);
            }
            voided += moved;
            if moved == 0 {
                return Ok(voided);
            }
        }
    }

    /// Pays the points prizes of entries paid, and gives voided entries' costs back, from the
    /// outbox since the last call; how many entries it acted on.
    pub async fn pay_draws(&self) -> ServiceResult<u64> {
        let Some(ledger) = &self.ledger else {
            return Ok(0);
        };
        let ledger = ledger.as_ref();
        self.read_outbox(READER, |event| async move {
            Ok(u64::from(self.settle_draw_event(ledger, &event).await?))
        })
        .await
    }

    async fn settle_draw_event(
        &self,
        ledger: &dyn LedgerClient,
        event: &CampaignEvent,
    ) -> ServiceResult<bool> {
        #[derive(Deserialize)]
        struct Data {
            draw: String,
            entry: String,
            prize: Option<String>,
            hold_id: Option<String>,
        }
        let voided = event.name == "draw_entry_voided";
        if !voided && event.name != "draw_entry_paid" {
            return Ok(false);
        }
        let Ok(data) = serde_json::from_str::<Data>(&event.data) else {
            tracing::error!(event = %event.id, "a draw entry's event without its entry");
            return Ok(false);
        };
        let parts = (
            event.tenant.as_str(),
            data.draw.as_str(),
            data.entry.as_str(),
        );
        if voided {
            let taken = Taken {
                saga: "draw",
                parts,
                hold: data.hold_id.as_deref(),
                paid_entry: None,
            };
            give_back(ledger, event, taken).await?;
            return Ok(true);
        }
        let tenant = TenantId::parse(event.tenant.as_str())?;
        let Some(state) = self.store.draw(&tenant, &data.draw).await? else {
            return Ok(false);
        };
        let points = data
            .prize
            .and_then(|id| state.draw.prizes.into_iter().find(|p| p.id == id))
            .and_then(|p| match p.kind {
                PrizeKind::Points { points } => Some(points),
                _ => None,
            });
        let Some(points) = points else {
            return Ok(false);
        };
        let adjust = ledger_pb::AdjustRequest {
            wallet: Some(wallet(&event.tenant, &event.member)),
            idempotency_key: super::mall::step_key("draw-prize", parts),
            points,
            reason: format!("lucky draw {} prize", data.draw),
        };
        super::adjust_opening(ledger, adjust).await?;
        Ok(true)
    }
}

/// The ledger's hold of an entry's cost, under a key of the entry.
fn hold_request(entry: &Entry) -> ledger_pb::RedeemRequest {
    ledger_pb::RedeemRequest {
        wallet: Some(wallet(&entry.tenant, &entry.member)),
        idempotency_key: key("hold", entry),
        points: entry.cost_points,
        reference: format!("draw:{}/{}", entry.draw, entry.id),
        capture: false,
    }
}

/// A stored entry answers a retry only for the member it was made for.
fn same_member(stored: Entry, member: &MemberId) -> ServiceResult<Entry> {
    if stored.member == member.as_str() {
        return Ok(stored);
    }
    Err(ServiceError::new(
        ErrorCode::IdempotencyConflict,
        format!(
            "entry id {} was used for another member: use a new id for each entry",
            stored.id
        ),
    ))
}
