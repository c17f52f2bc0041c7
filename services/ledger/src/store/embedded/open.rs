//! Opening the embedded store: fjall, then the commit log's recovery and the replay into fjall of
//! the frames it does not hold, then the writer and applier threads.

use super::applier::{APPLIED, Applier, Frame, batch_of};
use super::cache::CommittedCache;
use super::filter::KeyFilter;
use super::log::{self, CommitLog};
use super::pending::Unapplied;
use super::writer::Writer;
use super::{
    EmbeddedStore, FLUSH_AND_COMPACTION_THREADS, MAX_BATCH, Reads, StoreOptions, TAIL_CHANGES,
    Table, Tables, frame, priority, storage, tail,
};
use fjall::{Database, PersistMode};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Frames the writer may run ahead of the applier before it waits for it.
const APPLIER_QUEUE: usize = 65_536;
/// Frames replayed into fjall per batch at start-up.
const REPLAY_BATCH: usize = 64;

fn unavailable(err: impl std::fmt::Display) -> ServiceError {
    ServiceError::unavailable(err.to_string())
}

/// The LSN of the last frame whose effects fjall holds (0: none yet).
fn applied_lsn(tables: &Tables) -> ServiceResult<u64> {
    match tables.get(Table::CommitLog).get(APPLIED).map_err(storage)? {
        Some(v) => Ok(u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
            ServiceError::internal("the store's applied LSN is malformed")
        })?)),
        None => Ok(0),
    }
}

/// The sequence number of the last change record (0: none).
fn last_change_seq(tables: &Tables) -> ServiceResult<u64> {
    match tables.changes.last_key_value() {
        Some(guard) => {
            let k = guard.key().map_err(storage)?;
            Ok(u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| ServiceError::internal("bad change key"))?,
            ))
        }
        None => Ok(0),
    }
}

/// Writes the recovered frames into fjall and syncs it.
fn replay(db: &Database, tables: &Tables, frames: Vec<(u64, Vec<u8>)>) -> ServiceResult<usize> {
    let count = frames.len();
    let mut decoded = Vec::with_capacity(REPLAY_BATCH);
    for (lsn, payload) in frames {
        let ops = frame::decode(&payload).map_err(unavailable)?;
        decoded.push(Frame { lsn, ops });
        if decoded.len() == REPLAY_BATCH {
            batch_of(db, tables, &decoded).commit().map_err(storage)?;
            decoded.clear();
        }
    }
    if !decoded.is_empty() {
        batch_of(db, tables, &decoded).commit().map_err(storage)?;
    }
    db.persist(PersistMode::SyncAll).map_err(storage)?;
    Ok(count)
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` with default options and starts its writer.
    pub fn open(dir: &Path) -> ServiceResult<Self> {
        Self::open_with(dir, &StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`, replays its commit log, and starts its writer and
    /// applier threads.
    pub fn open_with(dir: &Path, options: &StoreOptions) -> ServiceResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ServiceError::unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("ledger");
        let db = Database::builder(&path)
            .worker_threads(FLUSH_AND_COMPACTION_THREADS)
            .open()
            .map_err(|e| {
                ServiceError::unavailable(format!(
                    "cannot open the store at {} ({e}); is another memberd using this --data-dir?",
                    path.display()
                ))
            })?;
        priority::lower_threads_named("fjall:", FLUSH_AND_COMPACTION_THREADS);
        let tables = Tables::open(&db).map_err(storage)?;

        let started = Instant::now();
        let log_dir = dir.join("ledger-log");
        let mut recovered = log::recover(&log_dir, applied_lsn(&tables)?).map_err(unavailable)?;
        if recovered.torn_bytes > 0 {
            tracing::warn!(
                bytes = recovered.torn_bytes,
                "dropped a torn final frame of the ledger's commit log (a write cut by a crash, never acknowledged)"
            );
        }
        let replayed = replay(&db, &tables, std::mem::take(&mut recovered.frames))?;
        tracing::info!(
            frames = replayed,
            millis = started.elapsed().as_millis() as u64,
            "ledger commit log recovered"
        );
        let segment_bytes = options.log_segment_mib.max(1) * 1024 * 1024;
        let log = CommitLog::continue_after(&recovered, segment_bytes).map_err(|e| {
            unavailable(format!(
                "cannot open the ledger's commit log in {}: {e}",
                log_dir.display()
            ))
        })?;
        let unapplied = Arc::new(Unapplied::new(log.next_lsn() - 1));
        let reads = Reads {
            tables: tables.clone(),
            unapplied: Arc::clone(&unapplied),
        };

        let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel(APPLIER_QUEUE);
        let applier = Applier {
            db,
            tables: tables.clone(),
            unapplied: Arc::clone(&unapplied),
            log_dir,
            checkpoint_every: Duration::from_secs(options.checkpoint_secs.max(1)),
            checkpointed: log.next_lsn() - 1,
        };
        std::thread::Builder::new()
            .name("ledger-apply".into())
            .spawn(move || {
                priority::lower_this_thread();
                applier.run(frames_rx)
            })
            .map_err(ServiceError::internal)?;

        let filter = Arc::new(KeyFilter::new(options.idempotency_filter_keys));
        let (filling, rows) = (Arc::clone(&filter), tables.rows.clone());
        std::thread::Builder::new()
            .name("ledger-filter".into())
            .spawn(move || {
                priority::lower_this_thread();
                if let Err(err) = filling.fill_from(&rows) {
                    tracing::warn!(error = %err, "the idempotency filter could not be filled; new keys are checked on disk");
                }
            })
            .map_err(ServiceError::internal)?;

        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let heads = Arc::new(CommittedCache::new(
            "ledger_wallet_heads",
            options.cached_wallets,
        ));
        let rules = Arc::new(CommittedCache::new(
            "ledger_earning_rules",
            options.cached_tenants,
        ));
        let tail = Arc::new(tail::ChangeTail::new(TAIL_CHANGES));
        let mut writer = Writer {
            log,
            reads: reads.clone(),
            unapplied,
            filter: Arc::clone(&filter),
            applier: frames_tx,
            seq: last_change_seq(&tables)?,
            heads: Arc::clone(&heads),
            rules: Arc::clone(&rules),
            tail: Arc::clone(&tail),
        };
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(ServiceError::internal)?;
        Ok(Self {
            tables,
            reads,
            filter,
            writer: tx,
            heads,
            rules,
            tail,
        })
    }
}
