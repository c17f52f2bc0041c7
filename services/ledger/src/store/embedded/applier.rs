//! The applier thread: it writes committed frames into fjall behind the commit log, at lower CPU
//! priority than request handling, and checkpoints: once fjall has synced everything up to an
//! LSN, the log's segments up to it are deleted.
//!
//! Each fjall batch also records the LSN of its last frame (`commit_log/applied`), atomically
//! with its rows, so a restart replays exactly the frames fjall does not hold.

use super::crash_point::CrashPoint;
use super::frame::LogOp;
use super::log::discard_through;
use super::pending::Unapplied;
use super::{Table, Tables};
use fjall::{Database, PersistMode};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The key in `commit_log` of the last frame fjall holds.
pub(super) const APPLIED: &[u8] = b"applied";
/// Most frames folded into one fjall batch.
const MAX_FRAMES: usize = 64;

/// A durable frame for the applier.
pub(super) struct Frame {
    pub lsn: u64,
    pub ops: Vec<LogOp>,
}

pub(super) struct Applier {
    pub db: Database,
    pub tables: Tables,
    pub unapplied: Arc<Unapplied>,
    pub log_dir: PathBuf,
    /// How often fjall is synced and the log trimmed.
    pub checkpoint_every: Duration,
    /// The last LSN fjall holds durably: at start, what recovery replayed and synced.
    pub checkpointed: u64,
}

/// Adds the frames' rows and their last LSN to one batch.
pub(super) fn batch_of(db: &Database, tables: &Tables, frames: &[Frame]) -> fjall::OwnedWriteBatch {
    let mut batch = db.batch().durability(None);
    for frame in frames {
        for op in &frame.ops {
            let table = tables.get(op.table);
            match &op.value {
                Some(value) => batch.insert(table, op.key.as_slice(), value.as_slice()),
                None => batch.remove(table, op.key.as_slice()),
            }
        }
    }
    if let Some(last) = frames.last() {
        batch.insert(
            tables.get(Table::CommitLog),
            APPLIED,
            last.lsn.to_be_bytes(),
        );
    }
    batch
}

impl Applier {
    pub(super) fn run(mut self, rx: Receiver<Frame>) {
        let mut applied = self.checkpointed;
        let mut checkpointed = Instant::now();
        loop {
            let first = match rx.recv_timeout(self.checkpoint_every) {
                Ok(frame) => frame,
                Err(RecvTimeoutError::Timeout) => {
                    self.checkpoint(applied);
                    checkpointed = Instant::now();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut frames = vec![first];
            while frames.len() < MAX_FRAMES {
                match rx.try_recv() {
                    Ok(frame) => frames.push(frame),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            if let Err(err) = batch_of(&self.db, &self.tables, &frames).commit() {
                tracing::error!(error = %err, "applying the commit log to the store failed; restart memberd to replay it");
                self.unapplied.failed();
                return;
            }
            metrics::histogram!("ledger_store_apply_seconds")
                .record(started.elapsed().as_secs_f64());
            for frame in &frames {
                self.unapplied.applied(frame.lsn, &frame.ops);
                applied = frame.lsn;
            }
            metrics::gauge!("ledger_store_apply_lag_frames").set(self.unapplied.lag() as f64);
            if checkpointed.elapsed() >= self.checkpoint_every {
                self.checkpoint(applied);
                checkpointed = Instant::now();
            }
        }
        // The writer is gone: sync what was applied, so the next start replays little.
        self.checkpoint(applied);
    }

    /// Syncs fjall, then deletes the log segments whose frames it now holds durably. Nothing
    /// to do when no frame was applied since the last checkpoint: an idle store syncs nothing.
    fn checkpoint(&mut self, applied: u64) {
        if applied == self.checkpointed {
            return;
        }
        let started = Instant::now();
        CrashPoint::CheckpointStarting.reached();
        if let Err(err) = self.db.persist(PersistMode::SyncAll) {
            tracing::warn!(error = %err, "syncing the store for a checkpoint failed; the log is kept");
            return;
        }
        CrashPoint::CheckpointSynced.reached();
        self.checkpointed = applied;
        let synced = started.elapsed();
        match discard_through(&self.log_dir, applied) {
            Ok(segments) => {
                let took = started.elapsed();
                metrics::histogram!("ledger_store_checkpoint_seconds").record(took.as_secs_f64());
                tracing::debug!(
                    lsn = applied,
                    sync_millis = synced.as_secs_f64() * 1e3,
                    millis = took.as_secs_f64() * 1e3,
                    segments,
                    "ledger checkpoint"
                );
            }
            Err(err) => tracing::warn!(error = %err, "trimming the commit log failed; it is kept"),
        }
    }
}
