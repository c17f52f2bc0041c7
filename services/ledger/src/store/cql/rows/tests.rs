#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use super::*;
use crate::model::{BalanceView, Deltas, EntryKind, Hold, Lot};
use crate::store::StoredIdempotency;
use crate::transfer::TransferState;
use loyalty_common::ids::{HoldId, IdempotencyKey};
use loyalty_scylla::testing::round_trip;

fn wallet() -> WalletKey {
    wallet_key("acme", "alice").unwrap()
}

fn entry(ms: u64) -> Entry {
    let mut entry = Entry::new(
        EntryId(ulid::Ulid::from_parts(ms, 7)),
        EntryKind::Captured,
        Timestamp(ms as i64),
        Deltas {
            points_held: -40,
            ..Deltas::default()
        },
    );
    entry.idempotency_key = Some(IdempotencyKey::parse("k-1").unwrap());
    entry.hold_id = Some(HoldId(ulid::Ulid::from_parts(ms - 1, 1)));
    entry.reference = Some("till 4".into());
    entry.lots = vec![Lot {
        expires_at: Some(Timestamp(1_800_000_000_000)),
        points: 40,
    }];
    entry
}

fn head() -> WalletHead {
    let mut head = WalletHead::new(wallet(), Timestamp(1_700_000_000_000));
    head.version = 9;
    head.balances.points_available = 60;
    head.balances.points_held = 40;
    head.lots = vec![Lot {
        expires_at: None,
        points: 60,
    }];
    head.holds = vec![Hold {
        hold_id: HoldId(ulid::Ulid::from_parts(5, 5)),
        points: 40,
        taken: vec![],
        expires_at: Timestamp(1_700_000_900_000),
        reference: "till 4".into(),
    }];
    head.due_hint = Some(Timestamp(1_700_000_900_000));
    head
}

const HEAD_COLUMNS: [(&str, &str); 2] = [("version", "bigint"), ("head", "blob")];
const BODY: [(&str, &str); 1] = [("body", "blob")];

#[test]
fn a_head_reads_back_as_written_and_its_version_must_agree() {
    let written = head();
    let binds = (
        to_bigint(written.version, "v").unwrap(),
        encode(&written).unwrap(),
    );
    let row: (Option<i64>, Option<Vec<u8>>) = round_trip(&HEAD_COLUMNS, &binds).unwrap();
    assert_eq!(head_from_row(row).unwrap(), Some(written.clone()));

    let absent: (Option<i64>, Option<Vec<u8>>) =
        round_trip(&HEAD_COLUMNS, &(None::<i64>, None::<Vec<u8>>)).unwrap();
    assert_eq!(head_from_row(absent).unwrap(), None);

    let other_version = (Some(10_i64), Some(encode(&written).unwrap()));
    assert!(head_from_row(other_version).is_err());
    assert!(head_from_row((Some(9), None)).is_err());
}

#[test]
fn entries_and_trackers_read_back_as_written() {
    let written = entry(1_700_000_000_123);
    let row: (Option<Vec<u8>>,) = round_trip(&BODY, &(encode(&written).unwrap(),)).unwrap();
    let read: Entry = decode(&body(row.0, "entry").unwrap()).unwrap();
    assert_eq!(read, written);

    let tracker = crate::model::ReversalTracker {
        target: Some(written.id),
        reversed: 30,
        reversed_bonus: 2,
    };
    let row: (Option<Vec<u8>>,) = round_trip(&BODY, &(encode(&tracker).unwrap(),)).unwrap();
    let read: crate::model::ReversalTracker = decode(&row.0.unwrap()).unwrap();
    assert_eq!(read, tracker);

    let none: (Option<Vec<u8>>,) = round_trip(&BODY, &(None::<Vec<u8>>,)).unwrap();
    assert!(body(none.0, "entry").is_err());
}

#[test]
fn entry_ids_sort_as_the_entries_were_made() {
    let older = entry(1_000).id;
    let newer = entry(2_000).id;
    assert!(entry_id(older) < entry_id(newer));
    let row: (Vec<u8>,) = round_trip(&[("id", "blob")], &(entry_id(newer),)).unwrap();
    assert_eq!(entry_id_from(&row.0).unwrap(), newer);
    assert!(entry_id_from(&[1, 2, 3]).is_err());
}

#[test]
fn an_idempotency_record_reads_back_with_its_entry_ids() {
    let stored = StoredIdempotency {
        fingerprint: "ab12".into(),
        entries: vec![entry(1_000).id, entry(2_000).id],
        balance: BalanceView {
            points_available: 60,
            points_pending: 0,
            points_held: 40,
            expiring_soon_points: 0,
            expiring_soon_at: None,
            stored_value: 0,
            bonus_value: 0,
            low_balance: false,
            version: 9,
        },
        hold: None,
    };
    let row: (Option<Vec<u8>>,) = round_trip(&BODY, &(encode(&stored).unwrap(),)).unwrap();
    let read: StoredIdempotency = decode(&row.0.unwrap()).unwrap();
    assert_eq!(read, stored);
}

#[test]
fn outbox_positions_grow_with_the_version_then_the_entry() {
    let positions = [
        outbox_position(1, 0).unwrap(),
        outbox_position(1, 1).unwrap(),
        outbox_position(1, 65_535).unwrap(),
        outbox_position(2, 0).unwrap(),
    ];
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(
        positions
            .windows(2)
            .all(|w| position_id(w[0]) < position_id(w[1]))
    );
    assert!(outbox_position(1, 65_536).is_err());
    assert!(outbox_position(u64::MAX, 0).is_err());

    let columns = [("id", "blob"), ("body", "blob")];
    let written = entry(3_000);
    let binds = (
        position_id(positions[3]),
        outbox_body(&wallet(), &written).unwrap(),
    );
    let (id, bytes): (Vec<u8>, Option<Vec<u8>>) = round_trip(&columns, &binds).unwrap();
    assert_eq!(position_from_id(&id).unwrap(), positions[3]);
    assert_eq!(
        outbox_from_body(&bytes.unwrap()).unwrap(),
        ((wallet(), written), None)
    );
}

#[test]
fn a_due_row_reads_back_as_the_due_wallet() {
    let item = DueWallet {
        at: Timestamp(1_700_000_123_456),
        wallet: wallet(),
    };
    let (bucket, at, tenant, member) = due_row(&item).unwrap();
    assert_eq!(bucket, 472_222); // 1_700_000_123_456 ms is in hour 472,222 since the epoch.
    let columns = [
        ("bucket_hour", "int"),
        ("at", "timestamp"),
        ("tenant", "text"),
        ("member", "text"),
    ];
    let read: (i32, CqlTimestamp, String, String) =
        round_trip(&columns, &(bucket, at, tenant.clone(), member.clone())).unwrap();
    assert_eq!(read.0, bucket);
    assert_eq!(due_from_row((read.1, read.2, read.3)).unwrap(), item);
    assert!(due_from_row((at, "bad tenant!".into(), member)).is_err());
}

#[test]
fn buckets_split_time_at_hour_and_day_boundaries() {
    assert_eq!(hour_bucket(Timestamp(3_599_999)).unwrap(), 0);
    assert_eq!(hour_bucket(Timestamp(3_600_000)).unwrap(), 1);
    assert_eq!(hour_bucket(Timestamp(-1)).unwrap(), -1);
    assert_eq!(day_bucket(Timestamp(86_399_999)).unwrap(), 0);
    assert_eq!(day_bucket(Timestamp(86_400_000)).unwrap(), 1);
    assert!(hour_bucket(Timestamp(i64::MAX)).is_err());
}

#[test]
fn a_transfer_reads_back_and_its_revision_must_agree() {
    let record = TransferRecord {
        tenant: TenantId::parse("acme").unwrap(),
        transfer_id: "tr0123".into(),
        from: MemberId::parse("alice").unwrap(),
        to: MemberId::parse("bob").unwrap(),
        points: 60,
        fingerprint: "ff".into(),
        state: TransferState::Debited,
        revision: 2,
        created_at: Timestamp(1_700_000_000_000),
        debit: Some(entry(5_000)),
        credit: None,
        failure: None,
    };
    let columns = [("revision", "bigint"), ("body", "blob")];
    let binds = (2_i64, encode(&record).unwrap());
    let row: (Option<i64>, Option<Vec<u8>>) = round_trip(&columns, &binds).unwrap();
    assert_eq!(transfer_from_row(row).unwrap(), record);
    assert!(transfer_from_row((Some(3), Some(encode(&record).unwrap()))).is_err());

    let (day, created_at, tenant, id) = open_transfer_row(&record).unwrap();
    assert_eq!(day, 19_675);
    let open_columns = [
        ("bucket_day", "int"),
        ("created_at", "timestamp"),
        ("tenant", "text"),
        ("id", "text"),
    ];
    let read: (i32, CqlTimestamp, String, String) =
        round_trip(&open_columns, &(day, created_at, tenant, id)).unwrap();
    assert_eq!(
        read,
        (
            19_675,
            CqlTimestamp(1_700_000_000_000),
            "acme".into(),
            "tr0123".into()
        )
    );
}

#[test]
fn unsigned_numbers_are_refused_beyond_bigint_rather_than_wrapped() {
    assert_eq!(to_bigint(7, "v").unwrap(), 7);
    assert!(to_bigint(u64::MAX, "v").is_err());
    assert_eq!(from_bigint(7, "v").unwrap(), 7);
    assert!(from_bigint(-1, "v").is_err());
    assert_eq!(limit(usize::MAX), i32::MAX);
    assert!(rules_key(1) < rules_key(256));
}
