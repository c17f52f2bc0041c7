//! Rows of the identity tables and the domain types they hold. Versioned records are JSON in
//! `body` (low volume, and readable when an operator needs to look) with their version
//! beside it for the write conditions; audit records are postcard (one per audited act).

use crate::audit::{AuditEvent, AuditRecord, ChainHead, Outcome};
use crate::model::{ApiKey, Session, Staff, Tenant};
use crate::rbac::PolicyRule;
use crate::store::{StoredKey, StoredReply};
use loyalty_common::error::ServiceResult;
use loyalty_common::{ServiceError, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The partition key of the single-partition tables (tenant_list, revoked_session_days,
/// audit_tenants, policy, signing_keys).
pub const ALL: &str = "all";

/// The longest TTL ScyllaDB accepts (20 years), in seconds.
const MAX_TTL_SECS: i64 = 630_720_000;
const DAY_MILLIS: i64 = 86_400_000;

/// A record written under a condition on its version.
pub trait Versioned: Serialize + DeserializeOwned {
    const WHAT: &'static str;
    fn version(&self) -> u64;
}

macro_rules! versioned {
    ($($t:ty => $what:literal),*) => {
        $(impl Versioned for $t {
            const WHAT: &'static str = $what;
            fn version(&self) -> u64 {
                self.version
            }
        })*
    };
}
versioned!(Tenant => "tenant", Staff => "staff member", Session => "session", ApiKey => "API key");

/// A version as CQL's bigint.
pub fn cql_version(version: u64) -> ServiceResult<i64> {
    i64::try_from(version)
        .map_err(|_| ServiceError::internal(format!("version {version} is past bigint")))
}

/// `(version, body)` of a record.
pub fn versioned_row<T: Versioned>(record: &T) -> ServiceResult<(i64, Vec<u8>)> {
    Ok((cql_version(record.version())?, encode(record)?))
}

/// The record of a `(version, body)` row; a body whose version differs from the row's was
/// not written by this adapter.
pub fn from_versioned_row<T: Versioned>((version, body): (i64, Vec<u8>)) -> ServiceResult<T> {
    let record: T = decode(T::WHAT, &body)?;
    if cql_version(record.version())? != version {
        return Err(ServiceError::internal(format!(
            "a stored {} says version {} in a row of version {version}",
            T::WHAT,
            record.version()
        )));
    }
    Ok(record)
}

pub fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(ServiceError::internal)
}

pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> ServiceResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ServiceError::internal(format!("a stored {what} cannot be read: {e}")))
}

/// A ULID id as its blob (16 big-endian bytes).
pub fn id_blob(id: ulid::Ulid) -> Vec<u8> {
    id.to_bytes().to_vec()
}

/// Seconds from `now` until `until` plus `grace_secs`, as a TTL: at least a second (0
/// would mean no TTL at all), and at most what ScyllaDB accepts. A time already past keeps
/// the row for the grace only.
pub fn ttl_secs(until: Timestamp, now: Timestamp, grace_secs: i64) -> i32 {
    let remaining = until.0.saturating_sub(now.0).max(0) / 1000;
    let ttl = remaining.saturating_add(grace_secs).clamp(1, MAX_TTL_SECS);
    i32::try_from(ttl).unwrap_or(i32::MAX)
}

/// The day (since the Unix epoch, UTC) an instant falls on.
pub fn day_of(at: Timestamp) -> i32 {
    let day = at.0.div_euclid(DAY_MILLIS);
    i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX })
}

/// The first instant after `day`.
pub fn end_of_day(day: i32) -> Timestamp {
    Timestamp((i64::from(day) + 1).saturating_mul(DAY_MILLIS))
}

/// An audit sequence number as CQL's bigint.
pub fn cql_seq(seq: u64) -> ServiceResult<i64> {
    i64::try_from(seq)
        .map_err(|_| ServiceError::internal(format!("audit sequence {seq} is past bigint")))
}

fn hash_blob(hex_text: &str) -> ServiceResult<Vec<u8>> {
    hex::decode(hex_text)
        .map_err(|e| ServiceError::internal(format!("an audit hash is not hex: {e}")))
}

/// `(head_seq, head_hash)` of a bucket's static head.
pub fn head_binds(head: &ChainHead) -> ServiceResult<(i64, Vec<u8>)> {
    Ok((cql_seq(head.seq)?, hash_blob(&head.hash)?))
}

/// A bucket's static head: none when the bucket has never been written.
pub fn head_from_row(row: (Option<i64>, Option<Vec<u8>>)) -> ServiceResult<Option<ChainHead>> {
    match row {
        (Some(seq), Some(hash)) => Ok(Some(ChainHead {
            seq: u64::try_from(seq)
                .map_err(|_| ServiceError::internal(format!("an audit head has sequence {seq}")))?,
            hash: hex::encode(hash),
        })),
        (None, None) => Ok(None),
        _ => Err(ServiceError::internal(
            "an audit bucket's head has a sequence or a hash, not both; it was altered",
        )),
    }
}

/// An audit record as stored: postcard, the hashes as bytes, about half the bytes of JSON.
/// The tenant and sequence number are the row's key (and are covered by the hash).
#[derive(Serialize, serde::Deserialize)]
struct StoredRecord {
    actor: String,
    action: String,
    target: String,
    /// 0 allowed, 1 denied, 2 failed, with the code of the last two.
    outcome: u8,
    outcome_code: String,
    request_id: String,
    at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// `(seq, record)` of an audit row.
pub fn record_row(record: &AuditRecord) -> ServiceResult<(i64, Vec<u8>)> {
    let (outcome, outcome_code) = match &record.event.outcome {
        Outcome::Allowed => (0, String::new()),
        Outcome::Denied(code) => (1, code.clone()),
        Outcome::Failed(code) => (2, code.clone()),
    };
    let stored = StoredRecord {
        actor: record.event.actor.clone(),
        action: record.event.action.clone(),
        target: record.event.target.clone(),
        outcome,
        outcome_code,
        request_id: record.event.request_id.clone(),
        at: record.event.at.0,
        prev_hash: hash_blob(&record.prev_hash)?,
        hash: hash_blob(&record.hash)?,
    };
    let bytes = postcard::to_allocvec(&stored).map_err(ServiceError::internal)?;
    Ok((cql_seq(record.seq)?, bytes))
}

/// The audit record of `tenant` in a `(seq, record)` row.
pub fn record_from_row(tenant: &str, (seq, bytes): (i64, Vec<u8>)) -> ServiceResult<AuditRecord> {
    let unreadable = |why: String| {
        ServiceError::internal(format!(
            "audit record {seq} of {tenant} cannot be read ({why}); it was altered"
        ))
    };
    let stored: StoredRecord =
        postcard::from_bytes(&bytes).map_err(|e| unreadable(e.to_string()))?;
    let outcome = match stored.outcome {
        0 => Outcome::Allowed,
        1 => Outcome::Denied(stored.outcome_code),
        2 => Outcome::Failed(stored.outcome_code),
        other => return Err(unreadable(format!("outcome {other}"))),
    };
    Ok(AuditRecord {
        tenant: tenant.to_string(),
        seq: u64::try_from(seq).map_err(|_| unreadable("a negative sequence".into()))?,
        event: AuditEvent {
            actor: stored.actor,
            action: stored.action,
            target: stored.target,
            outcome,
            request_id: stored.request_id,
            at: Timestamp(stored.at),
        },
        prev_hash: hex::encode(stored.prev_hash),
        hash: hex::encode(stored.hash),
    })
}

/// A policy rule as its clustering key: its JSON (fields in declaration order, so one rule
/// always encodes the same).
pub fn rule_key(rule: &PolicyRule) -> ServiceResult<String> {
    serde_json::to_string(rule).map_err(ServiceError::internal)
}

pub fn rule_from_key(key: &str) -> ServiceResult<PolicyRule> {
    decode("policy rule", key.as_bytes())
}

/// `(kid, body)` of a signing key.
pub fn key_row(key: &StoredKey) -> ServiceResult<(String, Vec<u8>)> {
    Ok((key.kid.clone(), encode(key)?))
}

pub fn key_from_row((body,): (Vec<u8>,)) -> ServiceResult<StoredKey> {
    decode("signing key", &body)
}

pub fn reply_from_row((body,): (Vec<u8>,)) -> ServiceResult<StoredReply> {
    decode("reply", &body)
}

#[cfg(test)]
mod tests;
