//! The low-water bucket of a bucketed index (`due_wallets`, `open_transfers`): where its reader
//! starts, so a scan does not begin at the epoch (decision 0012, point 8).
//!
//! Writers lower the mark before they write a row below it (in practice only the first row
//! ever, or a clock far behind), and readers raise it past buckets they found empty that are
//! old enough to get no more rows. Both changes are conditional on the value they saw, so a
//! writer's lowering is never undone by a reader that scanned before it. A mark that is
//! missing means no row was ever written.

use super::statements::LedgerStatements;
use crate::statements::unavailable;
use loyalty_common::error::ServiceResult;
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
