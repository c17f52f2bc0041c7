//! Writes that are durable in the commit log but not yet applied to fjall. The writer adds a
//! batch's rows here before it acknowledges them; the applier removes them once fjall holds
//! them. A point read looks here first, so every acknowledged write is visible at once; a range
//! read waits until the applier has caught up with what was committed when it began. Rows of
//! tables that are only ever read by range are not kept here.

use super::Table;
use super::frame::LogOp;
use dashmap::DashMap;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::watch;

/// What a point read finds among the unapplied writes.
pub(super) enum Pending {
    /// The newest committed value of the row.
    Value(Vec<u8>),
    /// The row's newest committed write removed it.
    Removed,
    /// No unapplied write: fjall has the row's committed state.
    Absent,
}

pub(super) struct Unapplied {
    /// `[table][key]` to the LSN of the newest write and its value (`None`: removed).
    rows: DashMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
    /// The LSN of the last durable frame.
    committed: AtomicU64,
    /// The LSN of the last frame applied to fjall.
    applied: watch::Sender<u64>,
    /// Set when the applier stopped on an error: range reads fail instead of waiting forever.
    failed: AtomicBool,
}

fn row_id(table: Table, key: &[u8]) -> Vec<u8> {
    let mut id = Vec::with_capacity(1 + key.len());
    id.push(table as u8);
    id.extend_from_slice(key);
    id
}

impl Unapplied {
    /// Nothing unapplied: fjall holds every frame up to `lsn`.
    pub(super) fn new(lsn: u64) -> Self {
        Self {
            rows: DashMap::new(),
            committed: AtomicU64::new(lsn),
            applied: watch::Sender::new(lsn),
            failed: AtomicBool::new(false),
        }
    }

    pub(super) fn get(&self, table: Table, key: &[u8]) -> Pending {
        match self.rows.get(row_id(table, key).as_slice()) {
            Some(row) => match &row.1 {
                Some(value) => Pending::Value(value.clone()),
                None => Pending::Removed,
            },
            None => Pending::Absent,
        }
    }

    /// The writer's: frame `lsn` is durable; its rows are readable from now on.
    pub(super) fn committed(&self, lsn: u64, ops: &[LogOp]) {
        for op in ops.iter().filter(|op| op.table.is_point_read()) {
            self.rows
                .insert(row_id(op.table, &op.key), (lsn, op.value.clone()));
        }
        self.committed.store(lsn, Ordering::Release);
    }

    /// The applier's: fjall holds frame `lsn`. Rows a later frame wrote again stay.
    pub(super) fn applied(&self, lsn: u64, ops: &[LogOp]) {
        for op in ops.iter().filter(|op| op.table.is_point_read()) {
            self.rows
                .remove_if(row_id(op.table, &op.key).as_slice(), |_, (at, _)| {
                    *at == lsn
                });
        }
        self.applied.send_replace(lsn);
    }

    /// The applier's, when it cannot go on.
    pub(super) fn failed(&self) {
        self.failed.store(true, Ordering::Release);
        self.applied.send_modify(|_| {});
    }

    pub(super) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Frames committed but not yet applied.
    pub(super) fn lag(&self) -> u64 {
        self.committed
            .load(Ordering::Acquire)
            .saturating_sub(*self.applied.borrow())
    }

    /// Waits until fjall holds every write committed when this was called.
    pub(super) async fn caught_up(&self) -> ServiceResult<()> {
        let target = self.committed.load(Ordering::Acquire);
        let mut applied = self.applied.subscribe();
        let stopped =
            || ServiceError::unavailable("the ledger store's applier stopped; restart memberd");
        applied
            .wait_for(|lsn| *lsn >= target || self.is_failed())
            .await
            .map_err(|_| stopped())?;
        if self.is_failed() {
            return Err(stopped());
        }
        Ok(())
    }
}
