//! The audit log's chain: each tenant's records are numbered from 1 and each carries the hash
//! of the one before, so altering a record breaks its hash, deleting one leaves a gap in the
//! numbers, reordering breaks the links, and cutting the end off no longer matches the head
//! (the newest sequence and hash, stored apart from the records).

use loyalty_common::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How an audited act ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "code")]
pub enum Outcome {
    Allowed,
    /// Refused by authorization, with the error code.
    Denied(String),
    /// Failed for another reason, with the error code.
    Failed(String),
}

/// What is recorded about one act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `staff:<id>`, `key:<id>`, `system`, or `service:memberd` (the platform's own work in
    /// another process).
    pub actor: String,
    /// What was done, e.g. `ledger.earn` or `member.read_unmasked`.
    pub action: String,
    /// What it was done to, e.g. `member:acme/alice`.
    pub target: String,
    pub outcome: Outcome,
    pub request_id: String,
    pub at: Timestamp,
}

/// One record of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub tenant: String,
    pub seq: u64,
    pub event: AuditEvent,
    /// The previous record's hash (hex); all zeros for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) of everything above.
    pub hash: String,
}

/// The newest record of a tenant's chain, kept apart from the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

/// The `prev_hash` of a tenant's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a record's content: tenant, sequence, event and previous hash, as JSON in a
/// fixed field order.
fn hash_of(tenant: &str, seq: u64, event: &AuditEvent, prev_hash: &str) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        tenant: &'a str,
        seq: u64,
        event: &'a AuditEvent,
        prev_hash: &'a str,
    }
    let content = Hashed {
        tenant,
        seq,
        event,
        prev_hash,
    };
    // Plain data: serialising it cannot fail.
    let bytes = serde_json::to_vec(&content).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

impl AuditRecord {
    /// The record that follows `head` (or starts the chain) for `event`.
    pub fn next(tenant: &str, head: Option<&ChainHead>, event: AuditEvent) -> Self {
        let (seq, prev_hash) = match head {
            Some(head) => (head.seq + 1, head.hash.clone()),
            None => (1, GENESIS.to_string()),
        };
        let hash = hash_of(tenant, seq, &event, &prev_hash);
        Self {
            tenant: tenant.into(),
            seq,
            event,
            prev_hash,
            hash,
        }
    }

    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Where a chain stops being trustworthy, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {seq} of tenant {tenant}: {reason}")]
pub struct Broken {
    pub tenant: String,
    /// The first record that does not check out (or the one that is missing).
    pub seq: u64,
    pub reason: String,
}

/// Checks a tenant's records, oldest first, against each other and against the stored head.
/// Returns how many records checked out, or the first one that does not.
pub fn verify<'a>(
    tenant: &str,
    records: impl IntoIterator<Item = &'a AuditRecord>,
    head: Option<&ChainHead>,
) -> Result<u64, Broken> {
    let broken = |seq: u64, reason: String| Broken {
        tenant: tenant.into(),
        seq,
        reason,
    };
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS.to_string();
    for record in records {
        if record.seq != expected_seq {
            let reason = if record.seq > expected_seq {
                format!("missing: the next record kept is {}", record.seq)
            } else {
                format!(
                    "out of order: record {} comes after {}",
                    record.seq,
                    expected_seq - 1
                )
            };
            return Err(broken(expected_seq, reason));
        }
        if record.tenant != tenant {
            return Err(broken(
                record.seq,
                format!("belongs to tenant {}", record.tenant),
            ));
        }
        if record.prev_hash != prev_hash {
            return Err(broken(
                record.seq,
                "does not follow the record before it (its previous hash differs)".into(),
            ));
        }
        if hash_of(tenant, record.seq, &record.event, &record.prev_hash) != record.hash {
            return Err(broken(
                record.seq,
                "altered: its content no longer matches its hash".into(),
            ));
        }
        prev_hash = record.hash.clone();
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    match head {
        Some(head) if head.seq != last => Err(broken(
            last + 1,
            format!(
                "missing: the head says the chain ends at {}, the records at {last}",
                head.seq
            ),
        )),
        Some(head) if head.hash != prev_hash => Err(broken(
            last,
            "the newest record does not match the stored head".into(),
        )),
        None if last > 0 => Err(broken(last, "records without a stored head".into())),
        _ => Ok(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            actor: "staff:01".into(),
            action: "ledger.adjust".into(),
            target: format!("member:acme/m{n}"),
            outcome: Outcome::Allowed,
            request_id: format!("req-{n}"),
            at: Timestamp(1_800_000_000_000 + n as i64),
        }
    }

    fn chain(n: u64) -> (Vec<AuditRecord>, ChainHead) {
        let mut records: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let head = records.last().map(AuditRecord::head);
            records.push(AuditRecord::next("acme", head.as_ref(), event(i)));
        }
        let head = records.last().map(AuditRecord::head).unwrap();
        (records, head)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (records, head) = chain(5);
        assert_eq!(verify("acme", &records, Some(&head)), Ok(5));
        assert_eq!(verify("acme", &[], None), Ok(0));
    }

    #[test]
    fn altering_deleting_reordering_or_truncating_names_the_record() {
        let (records, head) = chain(5);
        let check = |r: &[AuditRecord], h: Option<&ChainHead>| verify("acme", r, h).unwrap_err();

        let mut altered = records.clone();
        altered[2].event.outcome = Outcome::Denied("FORBIDDEN".into());
        let b = check(&altered, Some(&head));
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("altered"), "{b}");

        let mut deleted = records.clone();
        deleted.remove(1);
        let b = check(&deleted, Some(&head));
        assert_eq!((b.seq, b.reason.contains("missing")), (2, true), "{b}");

        let mut reordered = records.clone();
        reordered.swap(1, 2);
        let b = check(&reordered, Some(&head));
        assert_eq!(b.seq, 2, "{b}");

        let truncated = &records[..4];
        let b = check(truncated, Some(&head));
        assert_eq!((b.seq, b.reason.contains("head")), (5, true), "{b}");

        // Rewriting a record and every hash after it still fails against the stored head.
        let mut rewritten: Vec<AuditRecord> = records[..2].to_vec();
        for i in 3..=5 {
            let mut e = event(i);
            e.actor = "staff:intruder".into();
            let prev = rewritten.last().map(AuditRecord::head);
            rewritten.push(AuditRecord::next("acme", prev.as_ref(), e));
        }
        let b = check(&rewritten, Some(&head));
        assert!(b.reason.contains("head"), "{b}");
    }
}
