//! Between the member tables' rows and the member service's types: blobs in postcard,
//! versions as `bigint`, outbox positions as fixed-width hex text (a clustering `id` whose
//! text order is number order), buckets from a hash of the member id.

use super::statements::{KeyedStaticsRow, StaticsRow};
use crate::events::MemberEvent;
use crate::facts::MemberFacts;
use crate::orders::Order;
use crate::profile::{IndexKind, StoredProfile};
use crate::store::{Versioned, history_cursor};
use crate::vault::StoredTenantKey;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_events::trace::{self, TraceContext};

/// Buckets of `members_by_tenant` and of each segment generation (decision 0012).
pub const BUCKETS: i32 = 16;
/// Clustering kinds of a member partition.
pub const HISTORY: &str = "h";
pub const OUTBOX: &str = "o";
/// Outbox positions within one commit: `(revision << 16) | index`.
const EVENTS_PER_COMMIT: u64 = 1 << 16;

pub use loyalty_scylla::body::{decode, encode};

fn corrupt(what: &str) -> ServiceError {
    ServiceError::internal(format!("member store: a corrupt row ({what})"))
}

/// A version as stored (versions are small; one past `i64::MAX` is refused, not wrapped).
pub fn stored_version(version: u64) -> ServiceResult<i64> {
    i64::try_from(version).map_err(|_| ServiceError::internal("a version past i64::MAX"))
}

fn read_version(version: Option<i64>, what: &str) -> ServiceResult<u64> {
    version
        .map(|v| u64::try_from(v).map_err(|_| corrupt(what)))
        .transpose()
        .map(|v| v.unwrap_or(0))
}

/// A member's profile and facts from the statics of its partition.
pub fn member_of(
    row: StaticsRow,
) -> ServiceResult<(Option<StoredProfile>, Option<Versioned<MemberFacts>>)> {
    let (profile, _, facts, facts_version) = row;
    let profile = profile.map(|b| decode::<StoredProfile>(&b)).transpose()?;
    let facts = match facts {
        Some(bytes) => Some(Versioned {
            version: read_version(facts_version, "facts version")?,
            value: decode::<MemberFacts>(&bytes)?,
        }),
        None => None,
    };
    Ok((profile, facts))
}

/// As [`member_of`], with the partition's member id.
pub fn keyed_member_of(
    row: KeyedStaticsRow,
) -> ServiceResult<(
    String,
    Option<StoredProfile>,
    Option<Versioned<MemberFacts>>,
)> {
    let (_, member, profile, profile_version, facts, facts_version) = row;
    let (profile, facts) = member_of((profile, profile_version, facts, facts_version))?;
    Ok((member, profile, facts))
}

/// What a member write binds for its statics: the profile blob, the facts blob.
pub fn facts_blob(facts: &Versioned<MemberFacts>) -> ServiceResult<Vec<u8>> {
    encode(&facts.value)
}

/// The bucket of a member id (a stable hash: every process must agree).
pub fn bucket(member: &str) -> i32 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(member.as_bytes());
    i32::from(digest[0]) % BUCKETS
}

/// An outbox row's clustering id.
pub fn position_id(position: u64) -> String {
    format!("{position:016x}")
}

pub fn position_of_id(id: &str) -> ServiceResult<u64> {
    if id.len() != 16 {
        return Err(corrupt("outbox id"));
    }
    u64::from_str_radix(id, 16).map_err(|_| corrupt("outbox id"))
}

/// The outbox positions of a commit's `events` events: after it, the partition's revision
/// (the sum of its profile and facts versions) is `revision`, which every earlier commit
/// with events kept lower.
pub fn positions(revision: u64, events: usize) -> ServiceResult<Vec<u64>> {
    let events = u64::try_from(events).map_err(ServiceError::internal)?;
    if events >= EVENTS_PER_COMMIT {
        return Err(ServiceError::internal(
            "more than 65,535 events in one member write",
        ));
    }
    let base = revision
        .checked_mul(EVENTS_PER_COMMIT)
        .ok_or_else(|| ServiceError::internal("a member revision past the outbox's range"))?;
    Ok((0..events).map(|i| base | i).collect())
}

/// An outbox row's body: the event, then the trace context of the request that wrote it.
pub fn event_body(event: &MemberEvent) -> ServiceResult<Vec<u8>> {
    trace::encode_traced(event, &event.id)
}

pub fn event_of(body: &[u8]) -> ServiceResult<(MemberEvent, Option<TraceContext>)> {
    trace::decode_traced(body)
}

/// An order's history row: its cursor (the clustering id) and body.
pub fn history_row(order: &Order) -> ServiceResult<(String, Vec<u8>)> {
    Ok((history_cursor(order), encode(order)?))
}

pub fn order_of(body: Option<Vec<u8>>) -> ServiceResult<Order> {
    decode(&body.ok_or_else(|| corrupt("order without a body"))?)
}

/// A blind index's `kind` column.
pub fn index_kind(kind: IndexKind) -> String {
    kind.label().to_string()
}

pub fn tenant_key_row(key: &StoredTenantKey) -> ServiceResult<(i32, Vec<u8>)> {
    let version = i32::try_from(key.version)
        .map_err(|_| ServiceError::internal("a tenant key version past i32::MAX"))?;
    Ok((version, key.sealed.clone()))
}

pub fn tenant_key_of(row: (i32, Option<Vec<u8>>)) -> ServiceResult<StoredTenantKey> {
    let (version, sealed) = row;
    Ok(StoredTenantKey {
        version: u32::try_from(version).map_err(|_| corrupt("tenant key version"))?,
        sealed: sealed.ok_or_else(|| corrupt("tenant key without its sealed bytes"))?,
    })
}

/// A generation as stored.
pub fn generation(generation: u64) -> ServiceResult<i64> {
    i64::try_from(generation).map_err(|_| ServiceError::internal("a generation past i64::MAX"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;
    use loyalty_common::Timestamp;
    use loyalty_scylla::testing::round_trip;

    const STATICS: &[(&str, &str)] = &[
        ("profile", "blob"),
        ("profile_version", "bigint"),
        ("facts", "blob"),
        ("facts_version", "bigint"),
    ];

    fn profile() -> StoredProfile {
        StoredProfile {
            tenant: "acme".into(),
            member_id: "m1".into(),
            sealed: [("name".to_string(), vec![1, 2, 3])].into_iter().collect(),
            key: None,
            indexes: vec![(IndexKind::Phone, [7; 32])],
            updated_at: Timestamp(1_800_000_000_000),
            erased_at: None,
            merged_into: None,
            version: 3,
            birthday: Some([5; 32]),
        }
    }

    #[test]
    fn a_member_reads_back_from_its_statics() {
        let facts = Versioned {
            version: 5,
            value: MemberFacts::new("m1", Timestamp(1_800_000_000_000)),
        };
        let written = (
            Some(encode(&profile()).unwrap()),
            Some(stored_version(3).unwrap()),
            Some(facts_blob(&facts).unwrap()),
            Some(stored_version(5).unwrap()),
        );
        let row: StaticsRow = round_trip(STATICS, &written).unwrap();
        let (p, f) = member_of(row).unwrap();
        assert_eq!(p, Some(profile()));
        assert_eq!(f, Some(facts));

        // A partition with neither (only history rows): both absent.
        let empty: StaticsRow = round_trip(
            STATICS,
            &(None::<Vec<u8>>, None::<i64>, None::<Vec<u8>>, None::<i64>),
        )
        .unwrap();
        assert_eq!(member_of(empty).unwrap(), (None, None));

        let keyed: KeyedStaticsRow = round_trip(
            &[
                ("tenant", "text"),
                ("member", "text"),
                STATICS[0],
                STATICS[1],
                STATICS[2],
                STATICS[3],
            ],
            &(
                "acme".to_string(),
                "m1".to_string(),
                written.0,
                written.1,
                written.2,
                written.3,
            ),
        )
        .unwrap();
        let (member, p, f) = keyed_member_of(keyed).unwrap();
        assert_eq!(
            (member.as_str(), p.is_some(), f.map(|f| f.version)),
            ("m1", true, Some(5))
        );
    }

    #[test]
    fn a_negative_version_is_a_corrupt_row() {
        let facts = facts_blob(&Versioned {
            version: 1,
            value: MemberFacts::new("m1", Timestamp(0)),
        })
        .unwrap();
        assert!(member_of((None, None, Some(facts), Some(-1))).is_err());
    }

    #[test]
    fn outbox_ids_sort_as_their_positions() {
        let ps = positions(3, 2).unwrap();
        assert_eq!(ps, vec![3 << 16, (3 << 16) | 1]);
        let later = positions(4, 1).unwrap();
        assert!(position_id(ps[1]) < position_id(later[0]));
        let row: (String, Option<Vec<u8>>) = round_trip(
            &[("id", "text"), ("body", "blob")],
            &(position_id(ps[1]), Some(vec![9u8])),
        )
        .unwrap();
        assert_eq!(position_of_id(&row.0).unwrap(), ps[1]);
        assert!(position_of_id("xyz").is_err());
        assert!(positions(1, 1 << 16).is_err());
        assert!(positions(u64::MAX, 1).is_err());
    }

    #[test]
    fn orders_and_events_read_back_from_their_bodies() {
        let order = Order {
            order_id: "o-1".into(),
            member: "m1".into(),
            at: Timestamp(1_800_000_000_000),
            at_given: true,
            total: 1200,
            lines: vec![],
            store: Some("s1".into()),
            channel: None,
            refund_of: None,
            points: Some(12),
            recorded_at: Timestamp(1_800_000_000_001),
        };
        let (cursor, body) = history_row(&order).unwrap();
        assert_eq!(cursor, history_cursor(&order));
        let row: (Option<Vec<u8>>,) = round_trip(&[("body", "blob")], &(Some(body),)).unwrap();
        assert_eq!(order_of(row.0).unwrap(), order);
        assert!(order_of(None).is_err());

        let event = MemberEvent::new(
            "e1".into(),
            "acme",
            "m1",
            "tagged",
            Timestamp(5),
            &serde_json::json!({"a": 1}),
        );
        assert_eq!(
            event_of(&event_body(&event).unwrap()).unwrap(),
            (event, None)
        );
    }

    #[test]
    fn tenant_keys_read_back() {
        let key = StoredTenantKey {
            version: 2,
            sealed: vec![4, 5],
        };
        let row = tenant_key_row(&key).unwrap();
        let read: (i32, Option<Vec<u8>>) = round_trip(
            &[("version", "int"), ("sealed", "blob")],
            &(row.0, Some(row.1)),
        )
        .unwrap();
        assert_eq!(tenant_key_of(read).unwrap(), key);
        assert!(tenant_key_of((-1, Some(vec![]))).is_err());
        assert!(
            tenant_key_row(&StoredTenantKey {
                version: u32::MAX,
                sealed: vec![]
            })
            .is_err()
        );
    }

    #[test]
    fn buckets_are_stable_and_in_range() {
        for member in ["m1", "m2", "", "a-much-longer-member-id"] {
            let b = bucket(member);
            assert!((0..BUCKETS).contains(&b));
            assert_eq!(b, bucket(member));
        }
        assert!(generation(u64::MAX).is_err());
        assert_eq!(index_kind(IndexKind::Email), "email");
    }
}
