//! Rows of the ledger's tables and the domain values they hold. Bodies are postcard, as in the
//! embedded store (compact, cheap to encode); rule sets stay JSON there and here, since their
//! internally tagged enums need a self-describing format.
//!
//! CQL has no unsigned integers: versions, revisions and positions go to `bigint` and are
//! refused above `i64::MAX` rather than wrapped.

use crate::model::{Entry, WalletHead, WalletKey};
use crate::store::DueWallet;
use crate::transfer::TransferRecord;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{EntryId, MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use loyalty_events::trace::{self, TraceContext};
use scylla::value::CqlTimestamp;

/// Row kinds of a wallet partition (its first clustering column).
pub const ENTRY: &str = "e";
pub const IDEMPOTENCY: &str = "i";
pub const REVERSAL: &str = "r";
pub const OUTBOX: &str = "o";

/// Row kinds of a tenant's rules partition.
pub const RULE_SET: &str = "v";
pub const RULES_IDEMPOTENCY: &str = "i";

const HOUR_MILLIS: i64 = 3_600_000;
const DAY_MILLIS: i64 = 24 * HOUR_MILLIS;
/// Entries one commit may carry: the low 16 bits of an outbox position.
const ENTRIES_PER_COMMIT: u64 = 1 << 16;

pub use loyalty_scylla::body::{decode, encode};

/// A body column that must be there: a row without one is corrupt.
pub fn body(column: Option<Vec<u8>>, what: &str) -> ServiceResult<Vec<u8>> {
    column.ok_or_else(|| ServiceError::internal(format!("a stored {what} has no body")))
}

/// A u64 as a `bigint`.
pub fn to_bigint(value: u64, what: &str) -> ServiceResult<i64> {
    i64::try_from(value)
        .map_err(|_| ServiceError::internal(format!("{what} {value} exceeds bigint")))
}

/// A `bigint` as the u64 it was written from.
pub fn from_bigint(value: i64, what: &str) -> ServiceResult<u64> {
    u64::try_from(value)
        .map_err(|_| ServiceError::internal(format!("stored {what} {value} is negative")))
}

/// A `LIMIT ?` from a caller's count (a count beyond `int` reads `int`'s maximum).
pub fn limit(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// The partition key of a wallet.
pub fn partition(wallet: &WalletKey) -> (String, String) {
    (
        wallet.tenant.as_str().to_string(),
        wallet.member.as_str().to_string(),
    )
}

pub fn wallet_key(tenant: &str, member: &str) -> ServiceResult<WalletKey> {
    Ok(WalletKey {
        tenant: TenantId::parse(tenant).map_err(stored_id)?,
        member: MemberId::parse(member).map_err(stored_id)?,
    })
}

fn stored_id(err: ServiceError) -> ServiceError {
    ServiceError::internal(format!("a stored id is malformed: {}", err.message))
}

/// The head read back: `None` for a wallet that does not exist. The static version must be
/// the head's own, since both are written by the same statement.
pub fn head_from_row(row: (Option<i64>, Option<Vec<u8>>)) -> ServiceResult<Option<WalletHead>> {
    match row {
        (None, None) => Ok(None),
        (Some(version), Some(bytes)) => {
            let head = crate::store::decode_head(&bytes)?;
            if from_bigint(version, "wallet version")? != head.version {
                return Err(ServiceError::internal(format!(
                    "wallet version {version} differs from its head's {}",
                    head.version
                )));
            }
            Ok(Some(head))
        }
        _ => Err(ServiceError::internal(
            "a wallet has a version or a head but not both",
        )),
    }
}

/// An entry's clustering id: its 16 ULID bytes, which sort as the entries were made.
pub fn entry_id(id: EntryId) -> Vec<u8> {
    id.to_bytes().to_vec()
}

pub fn entry_id_from(bytes: &[u8]) -> ServiceResult<EntryId> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| ServiceError::internal("a stored entry id is not 16 bytes"))?;
    Ok(EntryId(ulid::Ulid::from_bytes(bytes)))
}

/// The position of a commit's `index`th outbox row: ordered by head version, then by entry,
/// so positions increase within the partition in commit order.
pub fn outbox_position(version: u64, index: usize) -> ServiceResult<u64> {
    let index = u64::try_from(index)
        .ok()
        .filter(|i| *i < ENTRIES_PER_COMMIT)
        .ok_or_else(|| {
            ServiceError::internal("more entries in one commit than outbox positions")
        })?;
    version
        .checked_mul(ENTRIES_PER_COMMIT)
        .map(|high| high | index)
        .ok_or_else(|| ServiceError::internal("wallet version too large for outbox positions"))
}

/// A position as a clustering id: 8 big-endian bytes, which sort as the numbers do.
pub fn position_id(position: u64) -> Vec<u8> {
    position.to_be_bytes().to_vec()
}

pub fn position_from_id(bytes: &[u8]) -> ServiceResult<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| ServiceError::internal("a stored outbox position is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// What an outbox row (and so a change of the log) carries: the change without its sequence
/// number, which the relay gives it, and the trace context of the request that wrote it.
pub fn outbox_body(wallet: &WalletKey, entry: &Entry) -> ServiceResult<Vec<u8>> {
    trace::encode_traced(&(wallet, entry), entry.id)
}

pub fn outbox_from_body(body: &[u8]) -> ServiceResult<((WalletKey, Entry), Option<TraceContext>)> {
    trace::decode_traced(body)
}

/// The hour bucket of a time (hours since the epoch), for `due_wallets`.
pub fn hour_bucket(at: Timestamp) -> ServiceResult<i32> {
    bucket(at, HOUR_MILLIS)
}

/// The day bucket of a time (days since the epoch), for `open_transfers`.
pub fn day_bucket(at: Timestamp) -> ServiceResult<i32> {
    bucket(at, DAY_MILLIS)
}

fn bucket(at: Timestamp, width: i64) -> ServiceResult<i32> {
    i32::try_from(at.0.div_euclid(width))
        .map_err(|_| ServiceError::internal(format!("time {} is out of range", at.0)))
}

/// The `due_wallets` row of a due wallet (also its primary key, to delete it).
pub fn due_row(item: &DueWallet) -> ServiceResult<(i32, CqlTimestamp, String, String)> {
    let (tenant, member) = partition(&item.wallet);
    Ok((
        hour_bucket(item.at)?,
        CqlTimestamp(item.at.0),
        tenant,
        member,
    ))
}

pub fn due_from_row(row: (CqlTimestamp, String, String)) -> ServiceResult<DueWallet> {
    let (at, tenant, member) = row;
    Ok(DueWallet {
        at: Timestamp(at.0),
        wallet: wallet_key(&tenant, &member)?,
    })
}

/// The `open_transfers` row of a transfer (also its primary key, to delete it).
pub fn open_transfer_row(
    record: &TransferRecord,
) -> ServiceResult<(i32, CqlTimestamp, String, String)> {
    Ok((
        day_bucket(record.created_at)?,
        CqlTimestamp(record.created_at.0),
        record.tenant.as_str().to_string(),
        record.transfer_id.clone(),
    ))
}

/// A transfer read back, checked against its partition's revision column.
pub fn transfer_from_row(row: (Option<i64>, Option<Vec<u8>>)) -> ServiceResult<TransferRecord> {
    let (revision, bytes) = row;
    let record: TransferRecord = decode(&body(bytes, "transfer")?)?;
    let revision = from_bigint(revision.unwrap_or(-1), "transfer revision")?;
    if revision != record.revision {
        return Err(ServiceError::internal(format!(
            "transfer {} has revision {revision} but its record says {}",
            record.transfer_id, record.revision
        )));
    }
    Ok(record)
}

/// A rule set's clustering key: its version, 8 big-endian bytes.
pub fn rules_key(version: u64) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests;
