//! A Bloom filter of every wallet idempotency key in the store. Nearly every write on the earn
//! path carries a new key, and checking it would otherwise be a read of fjall (which waits on
//! fjall's version lock whenever a flush or compaction installs a new version); with the filter
//! a new key is answered from memory.
//!
//! The filter is not persisted. At start-up a background thread adds every key fjall holds
//! (after the commit log's replay), while the writer adds every key it commits; until the scan
//! ends the filter answers "maybe", so reads fall back to fjall and stay correct.

use super::keys::is_idempotency_row;
use super::storage;
use fastbloom::AtomicBloomFilter;
use fjall::Keyspace;
use loyalty_common::error::ServiceResult;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The false-positive rate at the configured number of keys; past it the rate rises and more
/// checks read fjall, which costs time, never correctness.
const FALSE_POSITIVES: f64 = 0.01;

pub(super) struct KeyFilter {
    bloom: AtomicBloomFilter,
    ready: AtomicBool,
}

/// A stable hash of the row key, so the filter does not depend on a seeded hasher.
fn hash(row: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(row)
}

impl KeyFilter {
    /// A filter sized for `expected` keys (about 1.2 bytes each).
    pub(super) fn new(expected: usize) -> Self {
        Self {
            bloom: AtomicBloomFilter::with_false_pos(FALSE_POSITIVES)
                .expected_items(expected.max(1024)),
            ready: AtomicBool::new(false),
        }
    }

    /// The writer's, for every idempotency record it commits, before it acknowledges it.
    pub(super) fn add(&self, row: &[u8]) {
        self.bloom.insert_hash(hash(row));
    }

    /// False only when no idempotency record with this row key exists.
    pub(super) fn may_hold(&self, row: &[u8]) -> bool {
        !self.ready.load(Ordering::Acquire) || self.bloom.contains_hash(hash(row))
    }

    /// Adds every idempotency key in `rows`, then starts answering "absent".
    pub(super) fn fill_from(&self, rows: &Keyspace) -> ServiceResult<()> {
        let started = Instant::now();
        let mut keys = 0u64;
        for guard in rows.iter() {
            let k = guard.key().map_err(storage)?;
            if is_idempotency_row(&k) {
                self.add(&k);
                keys += 1;
            }
        }
        self.ready.store(true, Ordering::Release);
        tracing::info!(
            keys,
            millis = started.elapsed().as_millis() as u64,
            "ledger idempotency filter ready"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_maybe_until_filled_then_absent_for_new_keys() {
        let filter = KeyFilter::new(1000);
        assert!(filter.may_hold(b"anything"), "not filled yet: maybe");
        filter.ready.store(true, Ordering::Release);
        filter.add(b"known");
        assert!(filter.may_hold(b"known"));
        let unknown = (0..1000)
            .filter(|i| !filter.may_hold(format!("new-{i}").as_bytes()))
            .count();
        assert!(
            unknown > 950,
            "{unknown} of 1000 new keys answered from memory"
        );
    }
}
