//! The member service's events: one per change (`loyalty.member.created.v1`, `updated`,
//! `tagged`, `erased`, `merged`, `unmerged`, `order_recorded`, `tier_changed`,
//! `scores_changed`, ...), published on `member.<tenant>.member.<name>`. They are written to
//! the outbox in the same batch as the change, so an acknowledged change always gets its
//! event, and published in commit order by the shared publisher
//! ([`loyalty_events::publisher`]) through [`outbox`]; docs/events.md lists them.
//!
//! No event carries personal data: a consumer that needs a phone number asks the API, which
//! checks its permission and audits the read.

use crate::store::{LoggedEvent, MemberRepository};
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_events::Envelope;
use loyalty_events::envelope::Origin;
use loyalty_events::outbox::{ChangeLog, LogOutbox};
use loyalty_events::publisher::OutboxEvent;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const SERVICE: &str = "member";

/// A member event as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEvent {
    /// A ULID, unique per event; the bus recognises a re-publication by it.
    pub id: String,
    pub tenant: String,
    pub member: String,
    /// `created`, `tagged`, ...
    pub name: String,
    pub at: Timestamp,
    /// The payload, JSON.
    pub data: String,
}

impl MemberEvent {
    pub fn new(
        id: String,
        tenant: &str,
        member: &str,
        name: &str,
        at: Timestamp,
        data: &impl Serialize,
    ) -> Self {
        // The event carries the trace of the request whose write makes it.
        loyalty_events::trace::remember(|| [id.clone()]);
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

/// The member store's outbox as the publisher's: each logged event becomes its envelope.
pub fn outbox(store: Arc<dyn MemberRepository>) -> LogOutbox<dyn MemberRepository> {
    LogOutbox::new(SERVICE, store, |logged| OutboxEvent {
        envelope: envelope(logged).with_trace(logged.trace.as_ref()),
        // The event is stamped as its change is written, in the same batch.
        committed_ms: logged.event.at.0,
    })
}

#[async_trait]
impl ChangeLog for dyn MemberRepository {
    type Change = LoggedEvent;

    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<LoggedEvent>> {
        self.events_after(seq, limit).await
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        MemberRepository::position(self, reader).await
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        MemberRepository::save_position(self, reader, seq).await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        MemberRepository::log_end(self, from).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_event_is_named_and_routed_by_tenant() {
        let event = MemberEvent::new(
            "01J00000000000000000000000".into(),
            "acme",
            "m1",
            "tagged",
            Timestamp(1_800_000_000_000),
            &serde_json::json!({"added": ["vip"], "removed": []}),
        );
        let env = envelope(&LoggedEvent {
            seq: 7,
            event,
            trace: None,
        });
        assert_eq!(env.event_type, "loyalty.member.tagged.v1");
        assert_eq!(env.nats_subject(), "member.acme.member.tagged");
        assert_eq!(env.sequence, 7);
        assert_eq!(env.data_value()["added"][0], "vip");
    }
}
