//! The low-water bucket of a bucketed index (`due_wallets`, `open_transfers`): where its reader
//! starts, so a scan does not begin at the epoch (decision 0012, point 8).
//!
//! Writers lower the mark before they write a row below it (in practice only the first row
//! ever, or a clock far behind), and readers raise it past buckets they found empty that are
//! old enough to get no more rows. Both changes are conditional on the value they saw, so a
//! writer's lowering is never undone by a reader that scanned before it. A mark that is
//! missing means no row was ever written.

use super::statements::LedgerStatements;
use loyalty_common::error::ServiceResult;
use loyalty_scylla::statements::unavailable;
use scylla::client::session::Session;
use std::sync::Mutex;

/// Rounds of "read, change if still so" before a writer gives up (each one lost to another
/// writer or reader changing the mark in between).
const ATTEMPTS: usize = 8;

pub(super) struct LowWater {
    name: &'static str,
    /// The mark as last read or written here: `None` until read; `Some(None)` for no mark.
    known: Mutex<Option<Option<i32>>>,
}

impl LowWater {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            known: Mutex::new(None),
        }
    }

    fn known(&self) -> Option<Option<i32>> {
        *self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, mark: Option<Option<i32>>) {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = mark;
    }

    /// The stored mark, read afresh (a reader must start at or below any writer's lowering).
    pub(super) async fn read(
        &self,
        session: &Session,
        statements: &LedgerStatements,
    ) -> ServiceResult<Option<i32>> {
        let row = statements
            .low_water
            .first(session, (self.name.to_string(),))
            .await?;
        let mark = row.and_then(|(bucket,)| bucket);
        self.remember(Some(mark));
        Ok(mark)
    }

    /// Makes sure readers start at or below `bucket`, before a row is written there. Free
    /// (no round trip) when the mark this process knows is already at or below it.
    pub(super) async fn cover(
        &self,
        session: &Session,
        statements: &LedgerStatements,
        bucket: i32,
    ) -> ServiceResult<()> {
        let mut mark = match self.known() {
            Some(mark) => mark,
            None => self.read(session, statements).await?,
        };
        for _ in 0..ATTEMPTS {
            let applied = match mark {
                Some(mark) if mark <= bucket => return Ok(()),
                Some(_) => {
                    statements
                        .low_water_lower
                        .applied(session, (bucket, self.name.to_string(), bucket))
                        .await?
                }
                None => {
                    statements
                        .low_water_create
                        .applied(session, (self.name.to_string(), bucket))
                        .await?
                }
            };
            if applied {
                self.remember(Some(Some(bucket)));
                return Ok(());
            }
            mark = self.read(session, statements).await?;
        }
        Err(unavailable(
            &format!("low-water mark of {}", self.name),
            "it kept changing while being lowered; retry",
        ))
    }

    /// Moves the mark from `from` (the value a scan started at) up to `to`; a mark changed
    /// since is left as it is.
    pub(super) async fn raise(
        &self,
        session: &Session,
        statements: &LedgerStatements,
        from: i32,
        to: i32,
    ) -> ServiceResult<()> {
        if to <= from {
            return Ok(());
        }
        let applied = statements
            .low_water_raise
            .applied(session, (to, self.name.to_string(), from))
            .await?;
        self.remember(applied.then_some(Some(to)));
        Ok(())
    }
}

/// Where the next scan may start, learnt by a scan from the mark: past the buckets it found
/// empty before the first one with rows, but never at or past `settled_below` (buckets from
/// there on may still get rows).
pub(super) struct EmptyPrefix {
    next_start: i32,
    open: bool,
    settled_below: i32,
}

impl EmptyPrefix {
    pub(super) fn new(start: i32, settled_below: i32) -> Self {
        Self {
            next_start: start,
            open: true,
            settled_below,
        }
    }

    /// Records one scanned bucket, in ascending order.
    pub(super) fn saw(&mut self, bucket: i32, empty: bool) {
        if self.open && empty && bucket < self.settled_below {
            self.next_start = bucket + 1;
        } else {
            self.open = false;
        }
    }

    pub(super) fn next_start(&self) -> i32 {
        self.next_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(start: i32, settled_below: i32, buckets: &[(i32, bool)]) -> i32 {
        let mut prefix = EmptyPrefix::new(start, settled_below);
        for (bucket, empty) in buckets {
            prefix.saw(*bucket, *empty);
        }
        prefix.next_start()
    }

    #[test]
    fn the_next_scan_starts_past_settled_empty_buckets_only() {
        // Nothing scanned: where it was.
        assert_eq!(scan(10, 20, &[]), 10);
        // Empty up to a bucket with rows: that bucket.
        assert_eq!(scan(10, 20, &[(10, true), (11, true), (12, false)]), 12);
        // Empty after a bucket with rows does not count.
        assert_eq!(scan(10, 20, &[(10, false), (11, true)]), 10);
        // Empty throughout: up to the first bucket that may still get rows, no further.
        let all_empty: Vec<(i32, bool)> = (10..=22).map(|b| (b, true)).collect();
        assert_eq!(scan(10, 20, &all_empty), 20);
        // A mark already at or past the settled buckets stays.
        assert_eq!(scan(20, 20, &[(20, true), (21, true)]), 20);
    }
}
