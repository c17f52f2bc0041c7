#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use super::*;
use crate::model::{TotpEnrolment, Username};
use crate::opaque::SecretHash;
use crate::policy::{LoginFailures, SecurityPolicy};
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId, TenantId};
use loyalty_scylla::testing::round_trip;

/// What an internal error says in the logs (the caller sees "internal error").
fn cause(err: ServiceError) -> String {
    assert_eq!(err.code, loyalty_common::ErrorCode::Internal);
    err.source
        .map(|source| source.to_string())
        .unwrap_or_default()
}

const VERSIONED: &[(&str, &str)] = &[("version", "bigint"), ("body", "blob")];

/// A record written as its `(version, body)` row and read back through the driver.
fn stored<T: Versioned>(record: &T) -> T {
    let row: (i64, Vec<u8>) = round_trip(VERSIONED, &versioned_row(record).unwrap()).unwrap();
    from_versioned_row(row).unwrap()
}

fn tenant() -> Tenant {
    Tenant {
        id: TenantId::parse("acme").unwrap(),
        name: "Acme".into(),
        brands: vec![],
        stores: vec![],
        policy: SecurityPolicy::default(),
        time_zone: None,
        created_at: Timestamp(1_800_000_000_000),
        version: 3,
    }
}

#[test]
fn versioned_records_read_back_as_written() {
    let tenant = tenant();
    assert_eq!(stored(&tenant), tenant);

    let staff = Staff {
        id: StaffId(ulid::Ulid::new()),
        tenant: "acme".into(),
        username: Username::parse("Ann").unwrap(),
        display_name: "Ann Lee".into(),
        password_hash: "$argon2id$...".into(),
        must_change_password: true,
        totp: Some(TotpEnrolment {
            secret: vec![1, 2, 3],
            confirmed: true,
            last_step: Some(42),
        }),
        failures: LoginFailures {
            count: 2,
            locked_until: Some(Timestamp(5)),
        },
        disabled: false,
        sessions_ended_at: None,
        created_at: Timestamp(1),
        version: 1,
    };
    assert_eq!(stored(&staff), staff);

    let session = Session {
        id: SessionId(ulid::Ulid::new()),
        staff: staff.id,
        tenant: "acme".into(),
        created_at: Timestamp(0),
        expires_at: Timestamp(100),
        revoked_at: Some(Timestamp(5)),
        refresh: SecretHash::of("now"),
        replaced: vec![SecretHash::of("before")],
        version: 7,
    };
    assert_eq!(stored(&session), session);

    let key = ApiKey {
        id: ApiKeyId(ulid::Ulid::new()),
        tenant: TenantId::parse("acme").unwrap(),
        name: "till".into(),
        hash: SecretHash::of("secret"),
        roles: vec!["clerk".into()],
        created_at: Timestamp(1),
        created_by: "staff:1".into(),
        expires_at: None,
        last_used_at: Some(Timestamp(9)),
        revoked_at: None,
        version: 2,
    };
    assert_eq!(stored(&key), key);
}

#[test]
fn a_body_of_another_version_than_its_row_is_refused() {
    let (_, body) = versioned_row(&tenant()).unwrap();
    let err = cause(from_versioned_row::<Tenant>((4, body)).unwrap_err());
    assert!(err.contains("says version 3"), "{err}");
    let err = cause(from_versioned_row::<Tenant>((3, b"{".to_vec())).unwrap_err());
    assert!(err.contains("tenant cannot be read"), "{err}");
}

#[test]
fn versions_past_bigint_are_an_error_not_a_wrap() {
    assert_eq!(cql_version(7).unwrap(), 7);
    assert!(cql_version(u64::MAX).is_err());
    assert!(cql_seq(1 << 63).is_err());
}

#[test]
fn ids_are_their_sixteen_bytes() {
    let id = ulid::Ulid::new();
    let blob: (Vec<u8>,) = round_trip(&[("id", "blob")], &(id_blob(id),)).unwrap();
    assert_eq!(blob.0, id.to_bytes());
}

fn record(seq: u64, outcome: Outcome) -> AuditRecord {
    let event = AuditEvent {
        actor: "staff:1".into(),
        action: "ledger.earn".into(),
        target: format!("member:acme/m{seq}"),
        outcome,
        request_id: format!("r{seq}"),
        at: Timestamp(seq as i64),
    };
    let head = (seq > 1).then(|| ChainHead {
        seq: seq - 1,
        hash: "ab".repeat(32),
    });
    AuditRecord::next("acme", head.as_ref(), event)
}

#[test]
fn audit_records_read_back_as_written_with_every_outcome() {
    let columns = &[("seq", "bigint"), ("record", "blob")];
    for (seq, outcome) in [
        (1, Outcome::Allowed),
        (2, Outcome::Denied("FORBIDDEN".into())),
        (3, Outcome::Failed("UNAVAILABLE".into())),
    ] {
        let written = record(seq, outcome);
        let row: (i64, Vec<u8>) = round_trip(columns, &record_row(&written).unwrap()).unwrap();
        assert_eq!(row.0, seq as i64);
        let read = record_from_row("acme", row).unwrap();
        assert_eq!(read, written);
    }
}

#[test]
fn an_altered_audit_record_is_reported_not_misread() {
    let (seq, mut bytes) = record_row(&record(1, Outcome::Allowed)).unwrap();
    bytes.truncate(bytes.len() / 2);
    let err = cause(record_from_row("acme", (seq, bytes)).unwrap_err());
    assert!(err.contains("audit record 1 of acme"), "{err}");
    assert!(err.contains("altered"), "{err}");
    let err = cause(
        record_row(&AuditRecord {
            hash: "not hex".into(),
            ..record(1, Outcome::Allowed)
        })
        .unwrap_err(),
    );
    assert!(err.contains("not hex"), "{err}");
}

#[test]
fn a_bucket_head_reads_back_and_an_unwritten_one_is_none() {
    let columns = &[("head_seq", "bigint"), ("head_hash", "blob")];
    let head = record(5, Outcome::Allowed).head();
    let row: (Option<i64>, Option<Vec<u8>>) =
        round_trip(columns, &head_binds(&head).unwrap()).unwrap();
    assert_eq!(head_from_row(row).unwrap(), Some(head));
    let none: (Option<i64>, Option<Vec<u8>>) =
        round_trip(columns, &(None::<i64>, None::<Vec<u8>>)).unwrap();
    assert_eq!(head_from_row(none).unwrap(), None);
    assert!(head_from_row((Some(1), None)).is_err());
}

#[test]
fn policy_rules_are_their_json_and_back() {
    let rule = PolicyRule::grant("staff:1", "clerk", "acme/s01");
    let key: (String,) = round_trip(&[("rule", "text")], &(rule_key(&rule).unwrap(),)).unwrap();
    assert_eq!(
        key.0,
        r#"{"ptype":"g","values":["staff:1","clerk","acme/s01"]}"#
    );
    assert_eq!(rule_from_key(&key.0).unwrap(), rule);
}

#[test]
fn signing_keys_and_replies_read_back_as_written() {
    let key = StoredKey {
        kid: "k1".into(),
        pkcs8: vec![1, 2, 3],
        created_at: Timestamp(1),
        retired_at: Some(Timestamp(2)),
    };
    let (kid, body) = key_row(&key).unwrap();
    assert_eq!(kid, "k1");
    let row: (Vec<u8>,) = round_trip(&[("body", "blob")], &(body,)).unwrap();
    assert_eq!(key_from_row(row).unwrap(), key);

    let reply = StoredReply {
        request_hash: "ab".into(),
        status: 201,
        body: serde_json::json!({"id": "x"}),
        withheld: vec!["secret".into()],
        at: Timestamp(3),
    };
    let row: (Vec<u8>,) = round_trip(&[("body", "blob")], &(encode(&reply).unwrap(),)).unwrap();
    assert_eq!(reply_from_row(row).unwrap(), reply);
}

#[test]
fn ttls_run_to_the_time_plus_grace_within_what_scylladb_accepts() {
    let now = Timestamp(1_000_000);
    assert_eq!(ttl_secs(Timestamp(1_000_000 + 60_000), now, 10), 70);
    // Already past: kept for the grace only; never 0, which would mean "no TTL".
    assert_eq!(ttl_secs(Timestamp(0), now, 10), 10);
    assert_eq!(ttl_secs(Timestamp(0), now, 0), 1);
    assert_eq!(ttl_secs(Timestamp(i64::MAX), now, 10), 630_720_000);
    let ttl: (i32,) = round_trip(&[("[ttl]", "int")], &(ttl_secs(now, now, 5),)).unwrap();
    assert_eq!(ttl.0, 5);
}

#[test]
fn expiry_days_are_utc_days_since_the_epoch() {
    assert_eq!(day_of(Timestamp(0)), 0);
    assert_eq!(day_of(Timestamp(86_399_999)), 0);
    assert_eq!(day_of(Timestamp(86_400_000)), 1);
    assert_eq!(day_of(Timestamp(-1)), -1);
    assert_eq!(end_of_day(0), Timestamp(86_400_000));
    let day: (i32,) = round_trip(
        &[("expiry_day", "int")],
        &(day_of(Timestamp(1_800_000_000_000)),),
    )
    .unwrap();
    assert_eq!(day.0, 20_833);
}
