//! `memberd audit verify` against a store an intruder edited: altering, deleting or reordering
//! an audit record, or cutting the newest off, makes it fail and name the record.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_common::Timestamp;
use loyalty_identity::audit::{AuditEvent, Outcome};
use loyalty_identity::audit_log::AuditLog;
use loyalty_identity::store::embedded::EmbeddedIdentityStore;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Five records in tenant acme's chain, written by the identity service's own appender.
async fn five_records(data: &Path) {
    let store = EmbeddedIdentityStore::open(&data.join("identity")).unwrap();
    let log = AuditLog::start(Arc::new(store));
    for n in 1..=5 {
        let event = AuditEvent {
            actor: "staff:01J00000000000000000000000".into(),
            action: "POST /v1/tenants/{tenant}/members/{member}/adjustments".into(),
            target: format!("/v1/tenants/acme/members/m{n}/adjustments"),
            outcome: Outcome::Allowed,
            request_id: format!("req-{n}"),
            at: Timestamp(1_800_000_000_000 + n),
        };
        log.record("acme", event).await.unwrap();
    }
    log.close().await;
}

/// `memberd audit verify` on `data`: exit success and what it printed.
fn verify(data: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_memberd"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .env("MEMBERD_TELEMETRY__FILTER", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The intruder: edits the `audit` keyspace directly (`<tenant> NUL <seq, big-endian>`).
fn tamper(data: &Path, edit: impl FnOnce(&fjall::Keyspace)) {
    let db = fjall::Database::builder(data.join("identity"))
        .open()
        .unwrap();
    let audit = db
        .keyspace("audit", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    edit(&audit);
    db.persist(fjall::PersistMode::SyncAll).unwrap();
}

fn key(seq: u64) -> Vec<u8> {
    [b"acme\0".as_slice(), &seq.to_be_bytes()].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_any_record_is_found_and_named() {
    let intact = tempfile::tempdir().unwrap();
    five_records(intact.path()).await;
    let (ok, out) = verify(intact.path());
    assert!(ok, "{out}");
    assert!(out.contains("acme: 5 records, chain intact"), "{out}");

    type Edit = Box<dyn FnOnce(&fjall::Keyspace)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "altered",
            Box::new(|audit| {
                let mut row = audit.get(key(3)).unwrap().unwrap().to_vec();
                // The request id, stored as its bytes: the same length, another value.
                let at = row.windows(5).position(|w| w == b"req-3").unwrap();
                row[at + 4] = b'x';
                audit.insert(key(3), row).unwrap();
            }),
            "BROKEN at record 3: altered",
        ),
        (
            "deleted",
            Box::new(|audit| audit.remove(key(2)).unwrap()),
            "BROKEN at record 2: missing",
        ),
        (
            "reordered",
            Box::new(|audit| {
                let two = audit.get(key(2)).unwrap().unwrap();
                let three = audit.get(key(3)).unwrap().unwrap();
                audit.insert(key(2), three).unwrap();
                audit.insert(key(3), two).unwrap();
            }),
            "BROKEN at record 2",
        ),
        (
            "cut short",
            Box::new(|audit| audit.remove(key(5)).unwrap()),
            "BROKEN at record 5: missing",
        ),
    ];
    for (what, edit, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        five_records(dir.path()).await;
        tamper(dir.path(), edit);
        let (ok, out) = verify(dir.path());
        assert!(!ok, "{what}: verify passed: {out}");
        assert!(out.contains(expected), "{what}: {out}");
    }
}

#[test]
fn verify_says_what_to_do_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_memberd"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("no identity store"), "{err}");
}
