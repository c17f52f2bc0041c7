//! The single writer thread: it drains every queued request into one atomic batch and one
//! fsync, checks each request's condition against committed state plus the batch so far, and
//! updates the caches once the batch is durable.

use super::tail::ChangeTail;
use super::{
    Applied, Change, EmbeddedStore, HeadCache, MAX_BATCH, RulesCache, Tables, WriteOp,
    WriteRequest, encode, encode_json, key, rules_key, transfer_key,
};
use crate::model::WalletHead;
use crate::rules::RuleSet;
use crate::transfer::TransferRecord;
use fjall::{Database, PersistMode};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// The single writer: builds one batch from many requests, commits it with one fsync.
pub(super) struct Writer {
    pub(super) db: Database,
    pub(super) tables: Tables,
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
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
            let mut overlay = Overlay::default();
            let results: Vec<ServiceResult<Applied>> = requests
                .iter()
                .map(|r| self.apply(&mut batch, &mut overlay, &r.op))
                .collect();
            let committed = batch.commit();
            metrics::histogram!("ledger_store_batch_size").record(requests.len() as f64);
            metrics::histogram!("ledger_store_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            match committed {
                Ok(()) => {
                    // Durable now: the caches may show it.
                    for (k, head) in overlay.heads {
                        self.heads.put(k, head);
                    }
                    for (k, rules) in overlay.rules_current {
                        self.rules.put(k, Some(rules));
                    }
                    // Into the tail before any reply: a reader that saw a write acknowledged
                    // finds its change. Sequence numbers in the order `apply` gave them out.
                    let mut seq = seq_before;
                    let mut changes = Vec::new();
                    for (req, result) in requests.iter_mut().zip(&results) {
                        if let (WriteOp::Wallet(prepared), Ok(Applied::Yes)) = (&mut req.op, result)
                        {
                            for entry in std::mem::take(&mut prepared.entries) {
                                seq += 1;
                                let wallet = prepared.wallet.clone();
                                changes.push(Change { seq, wallet, entry });
                            }
                        }
                    }
                    self.tail.push(changes);
                    for (req, result) in requests.into_iter().zip(results) {
                        let _ = req.reply.send(result);
                    }
                }
                Err(err) => {
                    self.seq = seq_before;
                    tracing::error!(error = %err, "store commit failed");
                    for req in requests {
                        let _ = req.reply.send(Err(ServiceError::unavailable(
                            "the store could not commit; retry",
                        )));
                    }
                }
            }
        }
    }

    /// Adds one request to the batch if its condition holds. Everything is encoded before the
    /// first insert, so a request that fails adds nothing.
    fn apply(
        &mut self,
        batch: &mut fjall::OwnedWriteBatch,
        overlay: &mut Overlay,
        op: &WriteOp,
    ) -> ServiceResult<Applied> {
        let t = &self.tables;
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
                for (ks, k, v) in &prepared.rows {
                    batch.insert(ks, k.as_slice(), v.as_slice());
                }
                for change in &prepared.changes {
                    self.seq += 1;
                    batch.insert(&t.changes, self.seq.to_be_bytes(), change.as_slice());
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
                    None => EmbeddedStore::get::<u64>(&t.rules_current, &ck)?.unwrap_or(0),
                };
                if current != *expected_current || rules.version != expected_current + 1 {
                    return Ok(Applied::Conflict);
                }
                let value = encode_json(rules.as_ref())?;
                let idem = encode(idempotency)?;
                let version = encode(&rules.version)?;
                batch.insert(&t.rules, rules_key(tenant, rules.version), value);
                batch.insert(&t.rules_current, ck.clone(), version);
                batch.insert(
                    &t.rules_idem,
                    key(&[
                        tenant.as_str().as_bytes(),
                        idempotency.key.as_str().as_bytes(),
                    ]),
                    idem,
                );
                overlay
                    .rules_current
                    .insert(ck, Arc::new(rules.as_ref().clone()));
                Ok(Applied::Yes)
            }
            WriteOp::Transfer(record) => {
                let k = transfer_key(&record.tenant, &record.transfer_id);
                let stored = match overlay.transfers.get(&k) {
                    Some(v) => *v,
                    None => EmbeddedStore::get::<TransferRecord>(&t.transfers, &k)?
                        .map_or(0, |r| r.revision),
                };
                if stored + 1 != record.revision {
                    return Ok(Applied::Conflict);
                }
                let value = encode(record.as_ref())?;
                // The open list is keyed by creation time so recovery drives the oldest first.
                let open_key = [record.created_at.0.max(0).to_be_bytes().as_slice(), &k].concat();
                batch.insert(&t.transfers, k.clone(), value);
                if record.state.is_final() {
                    batch.remove(&t.transfers_open, open_key);
                } else {
                    batch.insert(&t.transfers_open, open_key, k.clone());
                }
                overlay.transfers.insert(k, record.revision);
                Ok(Applied::Yes)
            }
            WriteOp::RescheduleDue { fired, next } => {
                match next {
                    Some(next) if next == fired => {}
                    Some(next) => {
                        batch.remove(&t.due, fired.clone());
                        batch.insert(&t.due, next.clone(), []);
                    }
                    None => batch.remove(&t.due, fired.clone()),
                }
                Ok(Applied::Yes)
            }
            WriteOp::SavePosition { reader, seq } => {
                batch.insert(&t.positions, reader.as_bytes(), encode(seq)?);
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
            return Ok(head.version);
        }
        match EmbeddedStore::get::<WalletHead>(&self.tables.heads, wk)? {
            Some(head) => {
                let version = head.version;
                self.heads.put_read(wk.clone(), Arc::new(head));
                Ok(version)
            }
            None => Ok(0),
        }
    }
}
