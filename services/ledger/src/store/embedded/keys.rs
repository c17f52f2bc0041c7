//! Key layout of the embedded store. A wallet's rows share one prefix, the partition key, so
//! a wallet's entries are one contiguous range, as rows of one ScyllaDB partition are.
//!
//! Every wallet key starts with 4 bytes of a stable hash of the wallet, as ScyllaDB orders
//! partitions by the token of their key. fjall compares keys by a 4-byte inline prefix before
//! it follows the pointer to the rest, so keys that differ in their first 4 bytes compare
//! without a cache miss; with the tenant first, every key of a tenant would share them.

use crate::model::WalletKey;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};

/// Row kinds inside a wallet partition (the clustering key's first part).
pub(super) const ENTRY: &[u8] = b"e";
pub(super) const IDEMPOTENCY: &[u8] = b"i";
pub(super) const REVERSAL: &[u8] = b"r";

/// Bytes of the wallet hash that begin every wallet key.
const TOKEN_BYTES: usize = 4;

/// Joins parts with NUL. Token ids never contain NUL, so NUL separates them safely; a binary
/// id (16 bytes, may hold NUL) is only ever the last part, whose length is fixed.
pub(super) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part);
    }
    out
}

/// The wallet's token: a stable hash (XXH3, fixed by its specification), part of the on-disk
/// format, so it must never change.
fn token(w: &WalletKey) -> [u8; TOKEN_BYTES] {
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    hasher.update(w.tenant.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(w.member.as_str().as_bytes());
    let hash = hasher.digest().to_be_bytes();
    [hash[0], hash[1], hash[2], hash[3]]
}

pub(super) fn wallet_key(w: &WalletKey) -> Vec<u8> {
    let mut out = token(w).to_vec();
    out.extend_from_slice(&key(&[
        w.tenant.as_str().as_bytes(),
        w.member.as_str().as_bytes(),
    ]));
    out
}

pub(super) fn row_key(w: &WalletKey, kind: &[u8], id: &[u8]) -> Vec<u8> {
    let mut out = wallet_key(w);
    out.push(0);
    out.extend_from_slice(&key(&[kind, id]));
    out
}

/// Whether `k` is the key of a wallet's idempotency record: the third NUL-separated part after
/// the token (tenant, member, kind) is [`IDEMPOTENCY`]; no part before it can hold a NUL.
pub(super) fn is_idempotency_row(k: &[u8]) -> bool {
    k.get(TOKEN_BYTES..)
        .and_then(|rest| rest.split(|b| *b == 0).nth(2))
        == Some(IDEMPOTENCY)
}

pub(super) fn due_key(at: Timestamp, wallet: &WalletKey) -> Vec<u8> {
    [
        (at.0.max(0) as u64).to_be_bytes().as_slice(),
        &wallet_key(wallet),
    ]
    .concat()
}

/// The time and wallet of a due-index key; `None` for a key of another shape.
pub(super) fn parse_due_key(k: &[u8]) -> ServiceResult<Option<(Timestamp, WalletKey)>> {
    let Some((at, rest)) = k.split_first_chunk::<8>() else {
        return Ok(None);
    };
    let Some(rest) = rest.get(TOKEN_BYTES..) else {
        return Ok(None);
    };
    let mut parts = rest.splitn(2, |b| *b == 0);
    let (Some(t), Some(m)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let wallet = WalletKey {
        tenant: TenantId::parse(String::from_utf8_lossy(t).into_owned())?,
        member: MemberId::parse(String::from_utf8_lossy(m).into_owned())?,
    };
    Ok(Some((Timestamp(u64::from_be_bytes(*at) as i64), wallet)))
}

pub(super) fn transfer_key(tenant: &TenantId, id: &str) -> Vec<u8> {
    key(&[tenant.as_str().as_bytes(), id.as_bytes()])
}

pub(super) fn rules_key(tenant: &TenantId, version: u64) -> Vec<u8> {
    key(&[tenant.as_str().as_bytes(), &version.to_be_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(t: &str, m: &str) -> WalletKey {
        WalletKey {
            tenant: TenantId::parse(t).unwrap(),
            member: MemberId::parse(m).unwrap(),
        }
    }

    #[test]
    fn the_token_is_stable() {
        // Part of the on-disk format: a change here makes existing stores unreadable.
        assert_eq!(
            wallet_key(&wallet("acme", "alice"))[..4],
            token(&wallet("acme", "alice"))
        );
        assert_eq!(
            hex::encode(token(&wallet("acme", "alice"))),
            TOKEN_ACME_ALICE
        );
    }

    const TOKEN_ACME_ALICE: &str = "ced386ba";

    #[test]
    fn rows_of_a_wallet_share_its_prefix_and_no_other_wallet_s() {
        let a = wallet("acme", "al");
        let b = wallet("acme", "alice");
        let row = row_key(&a, ENTRY, &[0xff; 16]);
        assert!(row.starts_with(&wallet_key(&a)));
        assert!(!row_key(&b, ENTRY, &[0; 16]).starts_with(&row_key(&a, ENTRY, b"")));
    }

    #[test]
    fn idempotency_rows_are_told_from_every_other_row() {
        let w = wallet("acme", "alice");
        assert!(is_idempotency_row(&row_key(&w, IDEMPOTENCY, b"till-7:42")));
        assert!(!is_idempotency_row(&row_key(&w, ENTRY, &[0; 16])));
        assert!(!is_idempotency_row(&row_key(&w, REVERSAL, b"i")));
        assert!(!is_idempotency_row(&wallet_key(&w)));
        assert!(!is_idempotency_row(b"ab"));
    }

    #[test]
    fn due_keys_round_trip_whatever_bytes_the_token_holds() {
        for m in ["alice", "bob", "carol", "m-0", "m-1", "m-2", "m-3"] {
            let w = wallet("acme", m);
            let at = Timestamp(1_700_000_000_000);
            assert_eq!(parse_due_key(&due_key(at, &w)).unwrap(), Some((at, w)));
        }
        assert_eq!(parse_due_key(b"short").unwrap(), None);
    }
}
