//! The campaign service's events (`loyalty.campaign.<name>.v1` on
//! `member.<tenant>.campaign.<name>`): `template_saved`, `coupon_issued`,
//! `coupons_generated`, `coupons_imported`, `coupon_held`, `coupon_redeemed`,
//! `coupon_released`, `coupon_redemption_undone`, `coupon_expiring_soon`, and for flash sales
//! `flash_sale_created`, `flash_sale_claimed`, `flash_sale_confirmed`,
//! `flash_sale_claim_released`, `flash_sale_claim_lapsed`, and for campaigns
//! `campaign_saved`, `campaign_<step>` (submitted, approved, rejected, paused, resumed,
//! ended), `campaign_rewarded`, `campaign_reward_released`, `campaign_held_out` and
//! `campaign_notification_requested`, and for referrals `referral_recorded`,
//! `referral_qualified` and `referral_reversed`, and `member_checked_in`. They are written to
//! the outbox in the same commit as their change and published in commit order by the
//! shared publisher through [`outbox`]; docs/events.md lists them with their payloads.

use crate::store::CampaignRepository;
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_events::Envelope;
use loyalty_events::envelope::Origin;
use loyalty_events::outbox::{ChangeLog, LogOutbox};
use loyalty_events::publisher::OutboxEvent;
use loyalty_events::trace::{self, TraceContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const SERVICE: &str = "campaign";

/// A campaign event as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignEvent {
    /// A ULID, unique per event; the bus recognises a re-publication by it.
    pub id: String,
    pub tenant: String,
    /// The member it concerns; empty for a tenant-wide change (a template, a batch).
    pub member: String,
    pub name: String,
    pub at: Timestamp,
    /// The payload, JSON.
    pub data: String,
}

impl CampaignEvent {
    pub fn new(
        id: String,
        tenant: &str,
        member: &str,
        name: &str,
        at: Timestamp,
        data: &impl Serialize,
    ) -> Self {
        // The event carries the trace of the request whose write makes it.
        trace::remember(|| [id.clone()]);
        Self {
            id,
            tenant: tenant.into(),
            member: member.into(),
            name: name.into(),
            at,
            // Plain data: serialising it cannot fail.
            data: serde_json::to_string(data).unwrap_or_else(|_| "null".into()),
        }
    }
}

/// An event with its place in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub seq: u64,
    pub event: CampaignEvent,
    /// The trace context of the request that wrote it, as its record carries it.
    #[serde(skip)]
    pub trace: Option<TraceContext>,
}

impl LoggedEvent {
    /// The record the embedded store keeps: the event with its number, then the trace
    /// context of the request that wrote it ([`loyalty_events::trace`]).
    pub fn record(&self) -> ServiceResult<Vec<u8>> {
        trace::encode_traced(self, &self.event.id)
    }

    /// The event of a record [`LoggedEvent::record`] wrote.
    pub fn from_record(record: &[u8]) -> ServiceResult<Self> {
        let (logged, trace) = trace::decode_traced::<Self>(record)?;
        Ok(Self { trace, ..logged })
    }
}

/// The envelope of a logged event.
pub fn envelope(logged: &LoggedEvent) -> Envelope {
    let e = &logged.event;
    let origin = Origin {
        service: SERVICE,
        tenant: &e.tenant,
        member: &e.member,
    };
    Envelope::from_stored(origin, &e.name, e.id.clone(), logged.seq, e.at.0, &e.data)
}

/// The campaign store's outbox as the publisher's.
pub fn outbox(store: Arc<dyn CampaignRepository>) -> LogOutbox<dyn CampaignRepository> {
    LogOutbox::new(SERVICE, store, |logged| OutboxEvent {
        envelope: envelope(logged).with_trace(logged.trace.as_ref()),
        // The event is stamped as its change is written, in the same commit.
        committed_ms: logged.event.at.0,
    })
}

#[async_trait]
impl ChangeLog for dyn CampaignRepository {
    type Change = LoggedEvent;

    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>> {
        self.events_after(seq, limit).await
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        CampaignRepository::position(self, reader).await
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        CampaignRepository::save_position(self, reader, seq).await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        CampaignRepository::log_end(self, from).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redemption_event_is_named_and_routed_by_tenant() {
        let event = CampaignEvent::new(
            "01J00000000000000000000000".into(),
            "acme",
            "m1",
            "coupon_redeemed",
            Timestamp(1_800_000_000_000),
            &serde_json::json!({"codes": ["ABCD"]}),
        );
        let env = envelope(&LoggedEvent {
            seq: 3,
            event,
            trace: None,
        });
        assert_eq!(env.event_type, "loyalty.campaign.coupon_redeemed.v1");
        assert_eq!(env.nats_subject(), "member.acme.campaign.coupon_redeemed");
        assert_eq!(env.sequence, 3);
    }
}
