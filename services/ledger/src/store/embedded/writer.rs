//! The single writer thread: it drains every queued request into one batch, checks each
//! request's condition against committed state plus the batch so far, appends the batch to the
//! commit log as one frame with one `fdatasync`, makes it readable, acknowledges every request,
//! and hands the frame to the applier, which writes it into fjall later.

use super::applier::Frame;
use super::filter::KeyFilter;
use super::frame::{self, LogOp};
use super::log::CommitLog;
use super::pending::Unapplied;
use super::tail::ChangeTail;
use super::{
    Applied, Change, HeadCache, MAX_BATCH, Reads, RulesCache, Table, WriteOp, WriteRequest, encode,
    encode_json, key, rules_key, transfer_key,
};
use crate::model::WalletHead;
use crate::rules::RuleSet;
use crate::transfer::TransferRecord;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::store_metrics::StoreOp;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;
use tokio::sync::mpsc;

/// A commit this slow is logged at debug level.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(20);

fn put(table: Table, key: Vec<u8>, value: Vec<u8>) -> LogOp {
    LogOp {
        table,
        key,
        value: Some(value),
    }
}

fn remove(table: Table, key: Vec<u8>) -> LogOp {
    LogOp {
        table,
        key,
        value: None,
    }
}

/// The single writer: builds one batch from many requests, commits it with one sync.
pub(super) struct Writer {
    pub(super) log: CommitLog,
    pub(super) reads: Reads,
    pub(super) unapplied: Arc<Unapplied>,
    pub(super) filter: Arc<KeyFilter>,
    pub(super) applier: SyncSender<Frame>,
    /// The last change sequence number written.
    pub(super) seq: u64,
    pub(super) heads: Arc<HeadCache>,
    pub(super) rules: Arc<RulesCache>,
    /// The newest committed changes, for the event publisher.
    pub(super) tail: Arc<ChangeTail>,
}

/// Writes of the batch being built, so later requests in it see earlier ones.
#[derive(Default)]
struct Overlay {
    heads: HashMap<Vec<u8>, Arc<WalletHead>>,
    rules_current: HashMap<Vec<u8>, Arc<RuleSet>>,
    transfers: HashMap<Vec<u8>, u64>,
}

impl Writer {
    pub(super) fn run(&mut self, mut rx: mpsc::Receiver<WriteRequest>) {
        let journal_writes = StoreOp::new("ledger", "journal", "write");
        while let Some(first) = rx.blocking_recv() {
            let mut requests = vec![first];
            while requests.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(req) => requests.push(req),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let seq_before = self.seq;
            let mut ops = Vec::new();
            let mut overlay = Overlay::default();
            let results: Vec<ServiceResult<Applied>> = requests
                .iter()
                .map(|r| self.apply(&mut ops, &mut overlay, &r.op))
                .collect();
            let appending = Instant::now();
            let lsn = if ops.is_empty() {
                None
            } else {
                let appended = self.log.append(&frame::encode(&ops));
                journal_writes.observe(appending, &appended);
                match appended {
                    Ok(lsn) => Some(lsn),
                    Err(err) => {
                        // After a failed append or sync the log's state on disk is unknown:
                        // stop taking writes; a restart recovers from what is durable.
                        tracing::error!(error = %err, "the ledger's commit log failed; the store stops taking writes, restart memberd");
                        for req in requests {
                            let _ = req.reply.send(Err(ServiceError::unavailable(
                                "the store could not commit; retry",
                            )));
                        }
                        return;
                    }
                }
            };
            let appended = appending.elapsed();
            let took = started.elapsed();
            metrics::histogram!("ledger_store_batch_size").record(requests.len() as f64);
            metrics::histogram!("ledger_store_commit_seconds").record(took.as_secs_f64());
            if took >= SLOW_COMMIT {
                // With the checkpoints' lines (same target), shows what a slow commit ran into.
                tracing::debug!(
                    millis = took.as_secs_f64() * 1e3,
                    append_millis = appended.as_secs_f64() * 1e3,
                    requests = requests.len(),
                    "slow ledger commit"
                );
            }
            // Durable now: reads and the caches may show it.
            if let Some(lsn) = lsn {
                self.unapplied.committed(lsn, &ops);
            }
            for (k, head) in overlay.heads {
                self.heads.put(k, Some(head));
            }
            for (k, rules) in overlay.rules_current {
                self.rules.put(k, Some(rules));
            }
            for (req, result) in requests.iter().zip(&results) {
                if let (WriteOp::Wallet(prepared), Ok(Applied::Yes)) = (&req.op, result) {
                    for row in &prepared.idempotency_rows {
                        self.filter.add(row);
                    }
                }
            }
            // Into the tail before any reply: a reader that saw a write acknowledged finds its
            // change. Sequence numbers in the order `apply` gave them out.
            let mut seq = seq_before;
            let mut changes = Vec::new();
            for (req, result) in requests.iter_mut().zip(&results) {
                if let (WriteOp::Wallet(prepared), Ok(Applied::Yes)) = (&mut req.op, result) {
                    for entry in std::mem::take(&mut prepared.entries) {
                        seq += 1;
                        let wallet = prepared.wallet.clone();
                        // As the change record carries it, written moments ago.
                        let trace = loyalty_events::trace::kept(entry.id);
                        changes.push(Change {
                            seq,
                            wallet,
                            entry,
                            trace,
                        });
                    }
                }
            }
            self.tail.push(changes);
            for (req, result) in requests.into_iter().zip(results) {
                let _ = req.reply.send(result);
            }
            // Blocks while the applier is far behind: the log must not outrun fjall unbounded.
            if let Some(lsn) = lsn
                && self.applier.send(Frame { lsn, ops }).is_err()
            {
                tracing::error!(
                    "the ledger store's applier stopped; the store stops taking writes"
                );
                return;
            }
        }
    }

    /// Adds one request to the batch if its condition holds. Everything is encoded before the
    /// first insert, so a request that fails adds nothing.
    fn apply(
        &mut self,
        ops: &mut Vec<LogOp>,
        overlay: &mut Overlay,
        op: &WriteOp,
    ) -> ServiceResult<Applied> {
        match op {
            WriteOp::Wallet(prepared) => {
                let current = match overlay.heads.get(&prepared.wk) {
                    Some(head) => head.version,
                    None => self.committed_version(&prepared.wk)?,
                };
                if current != prepared.expected_version
                    || prepared.head.version != prepared.expected_version + 1
                {
                    return Ok(Applied::Conflict);
                }
                for (table, k, v) in &prepared.rows {
                    ops.push(put(*table, k.clone(), v.clone()));
                }
                for change in &prepared.changes {
                    self.seq += 1;
                    ops.push(put(
                        Table::Changes,
                        self.seq.to_be_bytes().to_vec(),
                        change.clone(),
                    ));
                }
                overlay
                    .heads
                    .insert(prepared.wk.clone(), Arc::clone(&prepared.head));
                Ok(Applied::Yes)
            }
            WriteOp::Rules {
                tenant,
                expected_current,
                rules,
                idempotency,
            } => {
                let ck = tenant.as_str().as_bytes().to_vec();
                let current = match overlay.rules_current.get(&ck) {
                    Some(rules) => rules.version,
                    None => self
                        .reads
                        .point::<u64>(Table::RulesCurrent, &ck)?
                        .unwrap_or(0),
                };
                if current != *expected_current || rules.version != expected_current + 1 {
                    return Ok(Applied::Conflict);
                }
                let value = encode_json(rules.as_ref())?;
                let idem = encode(idempotency)?;
                let version = encode(&rules.version)?;
                ops.push(put(Table::Rules, rules_key(tenant, rules.version), value));
                ops.push(put(Table::RulesCurrent, ck.clone(), version));
                let idem_key = key(&[
                    tenant.as_str().as_bytes(),
                    idempotency.key.as_str().as_bytes(),
                ]);
                ops.push(put(Table::RulesIdem, idem_key, idem));
                overlay
                    .rules_current
                    .insert(ck, Arc::new(rules.as_ref().clone()));
                Ok(Applied::Yes)
            }
            WriteOp::Transfer(record) => {
                let k = transfer_key(&record.tenant, &record.transfer_id);
                let stored = match overlay.transfers.get(&k) {
                    Some(v) => *v,
                    None => self
                        .reads
                        .point::<TransferRecord>(Table::Transfers, &k)?
                        .map_or(0, |r| r.revision),
                };
                if stored + 1 != record.revision {
                    return Ok(Applied::Conflict);
                }
                let value = encode(record.as_ref())?;
                // The open list is keyed by creation time so recovery drives the oldest first.
                let open_key = [record.created_at.0.max(0).to_be_bytes().as_slice(), &k].concat();
                ops.push(put(Table::Transfers, k.clone(), value));
                if record.state.is_final() {
                    ops.push(remove(Table::TransfersOpen, open_key));
                } else {
                    ops.push(put(Table::TransfersOpen, open_key, k.clone()));
                }
                overlay.transfers.insert(k, record.revision);
                Ok(Applied::Yes)
            }
            WriteOp::RescheduleDue { fired, next } => {
                match next {
                    Some(next) if next == fired => {}
                    Some(next) => {
                        ops.push(remove(Table::Due, fired.clone()));
                        ops.push(put(Table::Due, next.clone(), Vec::new()));
                    }
                    None => ops.push(remove(Table::Due, fired.clone())),
                }
                Ok(Applied::Yes)
            }
            WriteOp::SavePosition { reader, seq } => {
                ops.push(put(
                    Table::Positions,
                    reader.as_bytes().to_vec(),
                    encode(seq)?,
                ));
                Ok(Applied::Yes)
            }
        }
    }
}

impl Writer {
    /// The committed version of a wallet (0: none), from the cache or the store. Only the
    /// writer changes heads, so what it reads from the store is current and may be cached.
    fn committed_version(&self, wk: &Vec<u8>) -> ServiceResult<u64> {
        if let Some(head) = self.heads.get(wk) {
            return Ok(head.map_or(0, |head| head.version));
        }
        match self.reads.head(wk)? {
            Some(head) => {
                let version = head.version;
                self.heads.put_read(wk.clone(), Some(Arc::new(head)));
                Ok(version)
            }
            None => Ok(0),
        }
    }
}
