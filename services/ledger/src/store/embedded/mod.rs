//! The embedded store: fjall on local disk (chosen by measurement in
//! docs/decisions/0001-embedded-store.md).
//!
//! All writes go through one writer thread that drains every queued request into one atomic
//! batch and one fsync, then acknowledges each: durability without one sync per request. Each
//! request keeps its own condition, checked against committed state plus the batch so far, and
//! applies or conflicts on its own, exactly like a conditional batch on one ScyllaDB partition.
//!
//! Wallet heads and current rule sets are cached in memory (see `cache`): the writer keeps the
//! caches exact, so reads skip the store and its decoding on the hot path.

mod cache;
mod keys;
mod priority;
mod tail;
mod writer;

use keys::{
    ENTRY, IDEMPOTENCY, REVERSAL, due_key, key, parse_due_key, row_key, rules_key, transfer_key,
    wallet_key,
};

use writer::Writer;

use super::{
    Applied, Change, ChangeFeed, DueIndex, DueWallet, RulesIdempotency, RulesRepository,
    StoredIdempotency, TransferRepository, WalletCommit, WalletRepository,
};
use crate::model::{Entry, IdempotencyRecord, ReversalTracker, WalletHead, WalletKey};
use crate::rules::RuleSet;
use crate::transfer::TransferRecord;
use async_trait::async_trait;
use cache::CommittedCache;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{EntryId, IdempotencyKey, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most requests folded into one commit; bounds the latency one batch adds.
const MAX_BATCH: usize = 512;
/// Memtable size per table: small enough that inserts stay in CPU cache.
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;
/// Background threads: enough that a flush never queues behind long compactions, which would
/// make fjall halt writes (it sleeps 100 ms when 4 sealed memtables wait).
const FLUSH_AND_COMPACTION_THREADS: usize = 4;
/// Tables in L0 before they are merged into L1.
const L0_TABLES: u8 = 8;
/// Newest changes kept in memory for the event publisher (about 0.5 KiB each): a few seconds
/// of the benchmark's load, so a publisher that keeps up never reads the log back from disk.
const TAIL_CHANGES: usize = 16_384;

/// Rows are postcard: compact and cheap to encode, which matters because every byte of a row is
/// journaled, flushed and compacted again. Rule sets are the exception (see `encode_json`).
fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    postcard::to_stdvec(value).map_err(ServiceError::internal)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    postcard::from_bytes(bytes).map_err(ServiceError::internal)
}

/// Rule sets stay JSON: their tagged enums need a self-describing format, and a tenant writes
/// them rarely.
fn encode_json<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(ServiceError::internal)
}

fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    serde_json::from_slice(bytes).map_err(ServiceError::internal)
}

fn storage(err: fjall::Error) -> ServiceError {
    ServiceError::internal(err)
}

/// The store's keyspaces (tables).
#[derive(Clone)]
struct Tables {
    heads: Keyspace,
    rows: Keyspace,
    changes: Keyspace,
    rules: Keyspace,
    rules_current: Keyspace,
    rules_idem: Keyspace,
    transfers: Keyspace,
    transfers_open: Keyspace,
    due: Keyspace,
    /// Positions of the readers of the change log (the event publisher).
    positions: Keyspace,
}

impl Tables {
    fn open(db: &Database) -> Result<Self, fjall::Error> {
        let ks = |name: &str| {
            db.keyspace(name, || {
                // Rows are append-mostly with unique keys: letting more tables gather in L0
                // before merging them halves compaction work, and bloom filters keep point
                // reads of absent keys (idempotency checks) cheap across the extra tables.
                let compaction = fjall::compaction::Leveled::default().with_l0_threshold(L0_TABLES);
                KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .compaction_strategy(std::sync::Arc::new(compaction))
            })
        };
        Ok(Self {
            heads: ks("wallet_heads")?,
            rows: ks("wallet_rows")?,
            changes: ks("changes")?,
            rules: ks("rules")?,
            rules_current: ks("rules_current")?,
            rules_idem: ks("rules_idempotency")?,
            transfers: ks("transfers")?,
            transfers_open: ks("transfers_open")?,
            due: ks("due")?,
            positions: ks("change_readers")?,
        })
    }
}

/// A wallet commit with its rows already encoded, so that encoding runs on the callers' threads
/// in parallel and the single writer only checks the condition and inserts.
struct PreparedWallet {
    wk: Vec<u8>,
    expected_version: u64,
    head: Arc<WalletHead>,
    /// (table, key, value) of every row but the change records.
    rows: Vec<(Keyspace, Vec<u8>, Vec<u8>)>,
    /// Encoded [`StoredChange`]s; the writer gives them their sequence numbers.
    changes: Vec<Vec<u8>>,
    /// The entries of `changes`, for the change tail once the commit is durable.
    wallet: WalletKey,
    entries: Vec<Entry>,
}

/// A change record as stored: its sequence number is its key, and its entry is a row of the
/// wallet's partition, written in the same batch. Storing references keeps every write small.
#[derive(Serialize, serde::Deserialize)]
struct StoredChange {
    wallet: WalletKey,
    entry: EntryId,
}

enum WriteOp {
    Wallet(Box<PreparedWallet>),
    Rules {
        tenant: TenantId,
        expected_current: u64,
        rules: Box<RuleSet>,
        idempotency: RulesIdempotency,
    },
    Transfer(Box<TransferRecord>),
    /// Removes a fired due hint and adds the wallet's next one, if any.
    RescheduleDue {
        fired: Vec<u8>,
        next: Option<Vec<u8>>,
    },
    SavePosition {
        reader: String,
        seq: u64,
    },
}

struct WriteRequest {
    op: WriteOp,
    reply: oneshot::Sender<ServiceResult<Applied>>,
}

/// Tuning of the embedded store (`[store]` in memberd's configuration).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StoreOptions {
    /// Wallet heads kept in memory (about 0.5 KiB each): the recently written wallets.
    pub cached_wallets: usize,
    /// Tenants whose current rule set is kept in memory.
    pub cached_tenants: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cached_wallets: 200_000,
            cached_tenants: 10_000,
        }
    }
}

type HeadCache = CommittedCache<Vec<u8>, Arc<WalletHead>>;
type RulesCache = CommittedCache<Vec<u8>, Option<Arc<RuleSet>>>;

/// The embedded store. Cheap to clone; all clones share one database and one writer.
#[derive(Clone)]
pub struct EmbeddedStore {
    tables: Tables,
    writer: mpsc::Sender<WriteRequest>,
    heads: Arc<HeadCache>,
    rules: Arc<RulesCache>,
    tail: Arc<tail::ChangeTail>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` with default options and starts its writer.
    pub fn open(dir: &Path) -> ServiceResult<Self> {
        Self::open_with(dir, &StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir` and starts its writer thread.
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
        let next_seq = match tables.changes.last_key_value() {
            Some(guard) => {
                let k = guard.key().map_err(storage)?;
                u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| ServiceError::internal("bad change key"))?,
                )
            }
            None => 0,
        };
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let heads = Arc::new(CommittedCache::new(options.cached_wallets));
        let rules = Arc::new(CommittedCache::new(options.cached_tenants));
        let tail = Arc::new(tail::ChangeTail::new(TAIL_CHANGES));
        let mut writer = Writer {
            db,
            tables: tables.clone(),
            seq: next_seq,
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
            writer: tx,
            heads,
            rules,
            tail,
        })
    }

    /// True while the writer thread is alive.
    pub fn is_healthy(&self) -> bool {
        !self.writer.is_closed()
    }

    async fn write(&self, op: WriteOp) -> ServiceResult<Applied> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| ServiceError::unavailable("the store is shutting down"))?;
        rx.await
            .map_err(|_| ServiceError::unavailable("the store writer stopped"))?
    }

    fn get<T: DeserializeOwned>(table: &Keyspace, k: &[u8]) -> ServiceResult<Option<T>> {
        match table.get(k).map_err(storage)? {
            Some(v) => decode(&v).map(Some),
            None => Ok(None),
        }
    }

    fn rule_set(&self, tenant: &TenantId, version: u64) -> ServiceResult<Option<RuleSet>> {
        match self
            .tables
            .rules
            .get(rules_key(tenant, version))
            .map_err(storage)?
        {
            Some(v) => decode_json(&v).map(Some),
            None => Ok(None),
        }
    }
}

impl EmbeddedStore {
    /// Encodes every row of a wallet commit. Fails before anything is sent to the writer, so a
    /// commit that cannot be encoded writes nothing.
    fn prepare(&self, commit: WalletCommit) -> ServiceResult<PreparedWallet> {
        let t = &self.tables;
        let wallet = &commit.head.wallet;
        let wk = wallet_key(wallet);
        let mut rows = vec![(t.heads.clone(), wk.clone(), encode(&commit.head)?)];
        for e in &commit.entries {
            let k = row_key(wallet, ENTRY, &e.id.to_bytes());
            rows.push((t.rows.clone(), k, encode(e)?));
        }
        for r in &commit.reversals {
            if let Some(target) = r.target {
                let k = row_key(wallet, REVERSAL, &target.to_bytes());
                rows.push((t.rows.clone(), k, encode(r)?));
            }
        }
        if let Some(rec) = &commit.idempotency {
            let k = row_key(wallet, IDEMPOTENCY, rec.key.as_str().as_bytes());
            rows.push((t.rows.clone(), k, encode(&StoredIdempotency::of(rec))?));
        }
        if let Some(at) = commit.due_at {
            rows.push((t.due.clone(), due_key(at, wallet), Vec::new()));
        }
        let changes = commit
            .entries
            .iter()
            .map(|e| {
                encode(&StoredChange {
                    wallet: wallet.clone(),
                    entry: e.id,
                })
            })
            .collect::<ServiceResult<_>>()?;
        Ok(PreparedWallet {
            wk,
            expected_version: commit.expected_version,
            wallet: commit.head.wallet.clone(),
            head: Arc::new(commit.head),
            rows,
            changes,
            entries: commit.entries,
        })
    }
}

impl EmbeddedStore {
    /// An entry that a record written in the same batch refers to: its absence is corruption.
    fn committed_entry(&self, wallet: &WalletKey, id: EntryId) -> ServiceResult<Entry> {
        Self::get(&self.tables.rows, &row_key(wallet, ENTRY, &id.to_bytes()))?.ok_or_else(|| {
            ServiceError::internal(format!("entry {id} of a committed record is missing"))
        })
    }
}

#[async_trait]
impl WalletRepository for EmbeddedStore {
    async fn head(&self, wallet: &WalletKey) -> ServiceResult<Option<WalletHead>> {
        let wk = wallet_key(wallet);
        if let Some(head) = self.heads.get(&wk) {
            return Ok(Some(head.as_ref().clone()));
        }
        // Not cached: read the store, but leave filling to the writer, which cannot race itself.
        Self::get(&self.tables.heads, &wk)
    }

    async fn idempotency(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<IdempotencyRecord>> {
        let row = row_key(wallet, IDEMPOTENCY, key.as_str().as_bytes());
        let Some(stored) = Self::get::<StoredIdempotency>(&self.tables.rows, &row)? else {
            return Ok(None);
        };
        let entries = stored
            .entries
            .iter()
            .map(|id| self.committed_entry(wallet, *id))
            .collect::<ServiceResult<_>>()?;
        Ok(Some(stored.into_record(key.clone(), entries)))
    }

    async fn entry(&self, wallet: &WalletKey, id: EntryId) -> ServiceResult<Option<Entry>> {
        Self::get(&self.tables.rows, &row_key(wallet, ENTRY, &id.to_bytes()))
    }

    async fn reversal(
        &self,
        wallet: &WalletKey,
        target: EntryId,
    ) -> ServiceResult<Option<ReversalTracker>> {
        Self::get(
            &self.tables.rows,
            &row_key(wallet, REVERSAL, &target.to_bytes()),
        )
    }

    async fn history(
        &self,
        wallet: &WalletKey,
        before: Option<EntryId>,
        limit: usize,
    ) -> ServiceResult<Vec<Entry>> {
        let lo = row_key(wallet, ENTRY, b"");
        let hi = match before {
            Some(id) => row_key(wallet, ENTRY, &id.to_bytes()),
            // Longer than any 16-byte id, so above every entry of the wallet.
            None => row_key(wallet, ENTRY, &[0xff; 17]),
        };
        self.tables
            .rows
            .range(lo..hi)
            .rev()
            .take(limit)
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn commit(&self, commit: WalletCommit) -> ServiceResult<Applied> {
        let prepared = self.prepare(commit)?;
        self.write(WriteOp::Wallet(Box::new(prepared))).await
    }
}

#[async_trait]
impl RulesRepository for EmbeddedStore {
    async fn current(&self, tenant: &TenantId) -> ServiceResult<Option<Arc<RuleSet>>> {
        let ck = tenant.as_str().as_bytes().to_vec();
        self.rules.get_or_load(&ck, || {
            match Self::get::<u64>(&self.tables.rules_current, &ck)? {
                Some(v) => Ok(self.rule_set(tenant, v)?.map(Arc::new)),
                None => Ok(None),
            }
        })
    }

    async fn version(&self, tenant: &TenantId, version: u64) -> ServiceResult<Option<RuleSet>> {
        self.rule_set(tenant, version)
    }

    async fn idempotency(
        &self,
        tenant: &TenantId,
        k: &IdempotencyKey,
    ) -> ServiceResult<Option<RulesIdempotency>> {
        Self::get(
            &self.tables.rules_idem,
            &key(&[tenant.as_str().as_bytes(), k.as_str().as_bytes()]),
        )
    }

    async fn put(
        &self,
        tenant: &TenantId,
        expected_current: u64,
        rules: RuleSet,
        idempotency: RulesIdempotency,
    ) -> ServiceResult<Applied> {
        self.write(WriteOp::Rules {
            tenant: tenant.clone(),
            expected_current,
            rules: Box::new(rules),
            idempotency,
        })
        .await
    }
}

#[async_trait]
impl TransferRepository for EmbeddedStore {
    async fn get(
        &self,
        tenant: &TenantId,
        transfer_id: &str,
    ) -> ServiceResult<Option<TransferRecord>> {
        Self::get(&self.tables.transfers, &transfer_key(tenant, transfer_id))
    }

    async fn put(&self, record: TransferRecord) -> ServiceResult<Applied> {
        self.write(WriteOp::Transfer(Box::new(record))).await
    }

    async fn unfinished(&self, limit: usize) -> ServiceResult<Vec<TransferRecord>> {
        let mut out = Vec::new();
        for guard in self.tables.transfers_open.iter().take(limit) {
            let k = guard.value().map_err(storage)?;
            if let Some(record) = Self::get(&self.tables.transfers, &k)? {
                out.push(record);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DueIndex for EmbeddedStore {
    async fn due(&self, until: Timestamp, limit: usize) -> ServiceResult<Vec<DueWallet>> {
        let hi = (until.0.max(0) as u64 + 1).to_be_bytes();
        let mut out = Vec::new();
        for guard in self.tables.due.range(..hi.as_slice()).take(limit) {
            let k = guard.key().map_err(storage)?;
            let Some((at, wallet)) = parse_due_key(&k)? else {
                continue;
            };
            out.push(DueWallet { at, wallet });
        }
        Ok(out)
    }

    async fn reschedule(&self, item: &DueWallet, next: Option<Timestamp>) -> ServiceResult<()> {
        self.write(WriteOp::RescheduleDue {
            fired: due_key(item.at, &item.wallet),
            next: next.map(|at| due_key(at, &item.wallet)),
        })
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl ChangeFeed for EmbeddedStore {
    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<Change>> {
        if let Some(changes) = self.tail.take_after(seq, limit) {
            return Ok(changes);
        }
        let from = seq.saturating_add(1).to_be_bytes();
        self.tables
            .changes
            .range(from.as_slice()..)
            .take(limit)
            .map(|guard| {
                let (k, v) = guard.into_inner().map_err(storage)?;
                let seq = u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| ServiceError::internal("bad change key"))?,
                );
                let StoredChange { wallet, entry } = decode(&v)?;
                let entry = self.committed_entry(&wallet, entry)?;
                Ok(Change { seq, wallet, entry })
            })
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        Ok(Self::get::<u64>(&self.tables.positions, reader.as_bytes())?.unwrap_or(0))
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        self.write(WriteOp::SavePosition {
            reader: reader.to_string(),
            seq,
        })
        .await
        .map(|_| ())
    }
}
