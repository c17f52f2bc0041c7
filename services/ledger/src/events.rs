//! The ledger's events: one per committed entry, named after its kind
//! (`loyalty.ledger.earned.v1`, ...), published on `member.<tenant>.ledger.<kind>` by the
//! shared publisher ([`loyalty_events::publisher`]) from the change log ([`outbox`]).

use crate::model::Entry;
use crate::store::{Change, ChangeFeed};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_events::Envelope;
use loyalty_events::envelope::Origin;
use loyalty_events::outbox::{ChangeLog, LogOutbox};
use loyalty_events::publisher::OutboxEvent;
use serde::Serialize;
use std::sync::Arc;

pub const SERVICE: &str = "ledger";

/// The ledger's change log as the publisher's outbox: each change becomes its event.
pub fn outbox(feed: Arc<dyn ChangeFeed>) -> LogOutbox<dyn ChangeFeed> {
    LogOutbox::new(SERVICE, feed, |change| OutboxEvent {
        envelope: envelope(change).with_trace(change.trace.as_ref()),
        committed_ms: change.entry.at.0,
    })
}

#[async_trait]
impl ChangeLog for dyn ChangeFeed {
    type Change = Change;

    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<Change>> {
        ChangeFeed::changes_after(self, seq, limit).await
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        ChangeFeed::position(self, reader).await
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        ChangeFeed::save_position(self, reader, seq).await
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        ChangeFeed::log_end(self, from).await
    }
}

/// The payload (`data`) of every ledger event.
#[derive(Debug, Serialize)]
pub struct LedgerEventData<'a> {
    pub tenant: &'a str,
    pub member: &'a str,
    pub entry: &'a Entry,
}

/// The event for one committed change. Its id is the entry's id, so a re-publication of the
/// same change is recognised as a copy.
pub fn envelope(change: &Change) -> Envelope {
    let tenant = change.wallet.tenant.as_str();
    let member = change.wallet.member.as_str();
    let entry = &change.entry;
    let data = LedgerEventData {
        tenant,
        member,
        entry,
    };
    let time = chrono::DateTime::from_timestamp_millis(entry.at.0).unwrap_or_default();
    Envelope::new(
        Origin {
            service: SERVICE,
            tenant,
            member,
        },
        entry.kind.as_str(),
        entry.id.to_string(),
        change.seq,
        time,
        // An entry is plain data: serialising it cannot fail.
        serde_json::value::to_raw_value(&data)
            .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Deltas, EntryKind, WalletKey};
    use loyalty_common::Timestamp;
    use loyalty_common::ids::{EntryId, MemberId, TenantId};

    #[test]
    fn an_earned_entry_becomes_an_earned_event() {
        let id = EntryId(ulid::Ulid::from_parts(1_700_000_000_000, 7));
        let deltas = Deltas {
            points_available: 25,
            ..Deltas::default()
        };
        let change = Change {
            seq: 42,
            wallet: WalletKey {
                tenant: TenantId::parse("acme").unwrap(),
                member: MemberId::parse("alice").unwrap(),
            },
            entry: Entry::new(id, EntryKind::Earned, Timestamp(1_700_000_000_000), deltas),
            trace: None,
        };
        let e = envelope(&change);
        assert_eq!(e.event_type, "loyalty.ledger.earned.v1");
        assert_eq!(e.nats_subject(), "member.acme.ledger.earned");
        assert_eq!(e.id, id.to_string());
        assert_eq!(e.sequence, 42);
        assert_eq!(e.subject, "alice");
        assert_eq!(e.time.timestamp_millis(), 1_700_000_000_000);
        let data = e.data_value();
        assert_eq!(data["entry"]["deltas"]["points_available"], 25);
        assert_eq!(data["entry"]["kind"], "earned");
        assert_eq!(data["member"], "alice");
    }

    /// The JSON payload and `events.v1.LedgerEntry` (proto/events/v1/events.proto) name the
    /// same fields: a field added to one must be added to the other.
    #[test]
    fn entry_json_has_the_fields_of_the_protobuf_schema() {
        let id = EntryId(ulid::Ulid::from_parts(1, 1));
        let entry = Entry::new(id, EntryKind::Earned, Timestamp(1), Deltas::default());
        let json = serde_json::to_value(&entry).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        let mut proto = [
            "id",
            "kind",
            "at",
            "deltas",
            "idempotency_key",
            "order_id",
            "hold_id",
            "target",
            "reason",
            "counterparty",
            "rules_version",
            "reference",
            "lots",
        ];
        proto.sort_unstable();
        assert_eq!(keys, proto);
        let mut delta_keys: Vec<&str> = json["deltas"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        delta_keys.sort_unstable();
        assert_eq!(
            delta_keys,
            [
                "bonus_value",
                "points_available",
                "points_held",
                "points_pending",
                "stored_value"
            ]
        );
    }

    /// docs/events.md is the partners' contract: every event the ledger can publish is in its
    /// table of types.
    #[test]
    fn every_event_name_is_documented() {
        let docs = include_str!("../../../docs/events.md");
        let mut names = std::collections::HashSet::new();
        for kind in EntryKind::ALL {
            let n = kind.as_str();
            assert!(names.insert(n), "two kinds share the event name {n}");
            assert!(
                docs.contains(&format!("`{n}`")),
                "docs/events.md does not document the event {n}"
            );
        }
    }
}
