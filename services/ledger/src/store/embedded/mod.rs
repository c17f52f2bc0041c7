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

mod applier;
mod cache;
mod crash_point;
mod filter;
mod frame;
mod keys;
mod log;
mod open;
mod pending;
mod priority;
mod tail;
mod writer;

use keys::{
    ENTRY, IDEMPOTENCY, REVERSAL, due_key, key, parse_due_key, row_key, rules_key, transfer_key,
    wallet_key,
};

use super::{
    Applied, Change, ChangeFeed, DueIndex, DueWallet, RulesIdempotency, RulesRepository,
    StoredIdempotency, TransferRepository, WalletCommit, WalletRepository, decode_head,
    encode_head,
};
use crate::model::{Entry, IdempotencyRecord, ReversalTracker, WalletHead, WalletKey};
use crate::rules::RuleSet;
use crate::transfer::TransferRecord;
use async_trait::async_trait;
use cache::CommittedCache;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{EntryId, IdempotencyKey, TenantId};
use loyalty_common::store_metrics::timed;
use loyalty_common::{ServiceError, Timestamp};
use loyalty_events::trace;
use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// The store's tables, as the commit log names them (the numbers are part of its format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Table {
    Heads = 0,
    Rows = 1,
    Changes = 2,
    Rules = 3,
    RulesCurrent = 4,
    RulesIdem = 5,
    Transfers = 6,
    TransfersOpen = 7,
    Due = 8,
    Positions = 9,
    CommitLog = 10,
}

impl Table {
    const ALL: [Table; 11] = [
        Table::Heads,
        Table::Rows,
        Table::Changes,
        Table::Rules,
        Table::RulesCurrent,
        Table::RulesIdem,
        Table::Transfers,
        Table::TransfersOpen,
        Table::Due,
        Table::Positions,
        Table::CommitLog,
    ];

    /// Whether rows of the table are read by key (so unapplied writes must be found by key);
    /// the others are only read by range, after the applier has caught up.
    fn is_point_read(self) -> bool {
        !matches!(
            self,
            Table::Changes | Table::TransfersOpen | Table::Due | Table::CommitLog
        )
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.get(byte as usize).copied()
    }
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
    /// The LSN of the last commit-log frame applied (see `applier`).
    commit_log: Keyspace,
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
            commit_log: ks("commit_log")?,
        })
    }

    fn get(&self, table: Table) -> &Keyspace {
        match table {
            Table::Heads => &self.heads,
            Table::Rows => &self.rows,
            Table::Changes => &self.changes,
            Table::Rules => &self.rules,
            Table::RulesCurrent => &self.rules_current,
            Table::RulesIdem => &self.rules_idem,
            Table::Transfers => &self.transfers,
            Table::TransfersOpen => &self.transfers_open,
            Table::Due => &self.due,
            Table::Positions => &self.positions,
            Table::CommitLog => &self.commit_log,
        }
    }
}

/// Point reads of committed rows: the unapplied writes first, then fjall.
#[derive(Clone)]
struct Reads {
    tables: Tables,
    unapplied: Arc<pending::Unapplied>,
}

impl Reads {
    fn raw(&self, table: Table, k: &[u8]) -> ServiceResult<Option<Vec<u8>>> {
        debug_assert!(table.is_point_read(), "{table:?} is read by range only");
        match self.unapplied.get(table, k) {
            pending::Pending::Value(value) => Ok(Some(value)),
            pending::Pending::Removed => Ok(None),
            pending::Pending::Absent => {
                let ks = self.tables.get(table);
                Ok(
                    timed("ledger", ks.name(), "get", || ks.get(k).map_err(storage))?
                        .map(|v| v.to_vec()),
                )
            }
        }
    }

    fn point<T: DeserializeOwned>(&self, table: Table, k: &[u8]) -> ServiceResult<Option<T>> {
        match self.raw(table, k)? {
            Some(v) => decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// A wallet's head, in its stored form ([`encode_head`]).
    fn head(&self, wk: &[u8]) -> ServiceResult<Option<WalletHead>> {
        self.raw(Table::Heads, wk)?
            .map(|v| decode_head(&v))
            .transpose()
    }
}

/// A wallet commit with its rows already encoded, so that encoding runs on the callers' threads
/// in parallel and the single writer only checks the condition and inserts.
struct PreparedWallet {
    wk: Vec<u8>,
    expected_version: u64,
    head: Arc<WalletHead>,
    /// (table, key, value) of every row but the change records.
    rows: Vec<(Table, Vec<u8>, Vec<u8>)>,
    /// Encoded [`StoredChange`]s; the writer gives them their sequence numbers.
    changes: Vec<Vec<u8>>,
    /// The keys of the idempotency records the commit writes, for the key filter.
    idempotency_rows: Vec<Vec<u8>>,
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
    /// Size of one commit-log segment, in MiB; segments are zero-filled ahead of use.
    pub log_segment_mib: u64,
    /// Seconds between checkpoints (fjall synced, the log's applied segments deleted): at most
    /// this much of the log is replayed at start-up.
    pub checkpoint_secs: u64,
    /// Idempotency keys the in-memory filter is sized for (about 1.2 bytes each); beyond it,
    /// more checks of new keys read the disk.
    pub idempotency_filter_keys: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cached_wallets: 200_000,
            cached_tenants: 10_000,
            log_segment_mib: log::SEGMENT_BYTES / (1024 * 1024),
            checkpoint_secs: 10,
            idempotency_filter_keys: 10_000_000,
        }
    }
}

/// Wallet heads by wallet key; `None` caches a wallet that does not exist (yet).
type HeadCache = CommittedCache<Vec<u8>, Option<Arc<WalletHead>>>;
type RulesCache = CommittedCache<Vec<u8>, Option<Arc<RuleSet>>>;

/// The embedded store. Cheap to clone; all clones share one database and one writer.
#[derive(Clone)]
pub struct EmbeddedStore {
    tables: Tables,
    reads: Reads,
    filter: Arc<filter::KeyFilter>,
    writer: mpsc::Sender<WriteRequest>,
    heads: Arc<HeadCache>,
    rules: Arc<RulesCache>,
    tail: Arc<tail::ChangeTail>,
}

impl EmbeddedStore {
    /// True while the writer and the applier threads are alive.
    pub fn is_healthy(&self) -> bool {
        !self.writer.is_closed() && !self.reads.unapplied.is_failed()
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

    fn get<T: DeserializeOwned>(&self, table: Table, k: &[u8]) -> ServiceResult<Option<T>> {
        self.reads.point(table, k)
    }

    fn rule_set(&self, tenant: &TenantId, version: u64) -> ServiceResult<Option<RuleSet>> {
        match self.reads.raw(Table::Rules, &rules_key(tenant, version))? {
            Some(v) => decode_json(&v).map(Some),
            None => Ok(None),
        }
    }
}

impl EmbeddedStore {
    /// Encodes every row of a wallet commit. Fails before anything is sent to the writer, so a
    /// commit that cannot be encoded writes nothing.
    fn prepare(&self, commit: WalletCommit) -> ServiceResult<PreparedWallet> {
        let wallet = &commit.head.wallet;
        let wk = wallet_key(wallet);
        let mut rows = vec![(Table::Heads, wk.clone(), encode_head(&commit.head)?)];
        for e in &commit.entries {
            let k = row_key(wallet, ENTRY, &e.id.to_bytes());
            rows.push((Table::Rows, k, encode(e)?));
        }
        for r in &commit.reversals {
            if let Some(target) = r.target {
                let k = row_key(wallet, REVERSAL, &target.to_bytes());
                rows.push((Table::Rows, k, encode(r)?));
            }
        }
        // Earlier commits' rows again (`crate::carry`), then this one's record.
        for rec in &commit.carried {
            for e in &rec.outcome.entries {
                let k = row_key(wallet, ENTRY, &e.id.to_bytes());
                rows.push((Table::Rows, k, encode(e)?));
            }
        }
        let mut idempotency_rows = Vec::new();
        for rec in commit.carried.iter().chain(&commit.idempotency) {
            let k = row_key(wallet, IDEMPOTENCY, rec.key.as_str().as_bytes());
            idempotency_rows.push(k.clone());
            rows.push((Table::Rows, k, encode(&StoredIdempotency::of(rec))?));
        }
        if let Some(at) = commit.due_at {
            rows.push((Table::Due, due_key(at, wallet), Vec::new()));
        }
        let changes = commit
            .entries
            .iter()
            .map(|e| {
                let change = StoredChange {
                    wallet: wallet.clone(),
                    entry: e.id,
                };
                trace::encode_traced(&change, e.id)
            })
            .collect::<ServiceResult<_>>()?;
        Ok(PreparedWallet {
            wk,
            expected_version: commit.expected_version,
            wallet: commit.head.wallet.clone(),
            head: Arc::new(commit.head),
            rows,
            changes,
            idempotency_rows,
            entries: commit.entries,
        })
    }
}

impl EmbeddedStore {
    /// An entry that a record written in the same batch refers to: its absence is corruption.
    fn committed_entry(&self, wallet: &WalletKey, id: EntryId) -> ServiceResult<Entry> {
        self.get(Table::Rows, &row_key(wallet, ENTRY, &id.to_bytes()))?
            .ok_or_else(|| {
                ServiceError::internal(format!("entry {id} of a committed record is missing"))
            })
    }
}

#[async_trait]
impl WalletRepository for EmbeddedStore {
    async fn head(&self, wallet: &WalletKey) -> ServiceResult<Option<WalletHead>> {
        let wk = wallet_key(wallet);
        // A cold wallet is read from the store once, here rather than on the writer's thread;
        // the fill is dropped if the writer updated a head of the same shard meanwhile.
        let head = self.heads.get_or_load(&wk, || {
            Ok::<_, ServiceError>(self.reads.head(&wk)?.map(Arc::new))
        })?;
        Ok(head.map(|head| head.as_ref().clone()))
    }

    async fn idempotency(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<IdempotencyRecord>> {
        let row = row_key(wallet, IDEMPOTENCY, key.as_str().as_bytes());
        if !self.filter.may_hold(&row) {
            return Ok(None);
        }
        let Some(stored) = self.get::<StoredIdempotency>(Table::Rows, &row)? else {
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
        self.get(Table::Rows, &row_key(wallet, ENTRY, &id.to_bytes()))
    }

    async fn reversal(
        &self,
        wallet: &WalletKey,
        target: EntryId,
    ) -> ServiceResult<Option<ReversalTracker>> {
        self.get(Table::Rows, &row_key(wallet, REVERSAL, &target.to_bytes()))
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
        self.reads.unapplied.caught_up().await?;
        self.tables
            .rows
            .range(lo..hi)
            .rev()
            .take(limit)
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn commit(&self, commit: WalletCommit) -> ServiceResult<Applied> {
        // Checked as the commit joins the writer's queue, as the CQL store checks it before
        // sending: the two stores refuse a late write alike.
        loyalty_common::write_scope::check_deadline("the commit")?;
        let prepared = self.prepare(commit)?;
        self.write(WriteOp::Wallet(Box::new(prepared))).await
    }
}

#[async_trait]
impl RulesRepository for EmbeddedStore {
    async fn current(&self, tenant: &TenantId) -> ServiceResult<Option<Arc<RuleSet>>> {
        let ck = tenant.as_str().as_bytes().to_vec();
        self.rules
            .get_or_load(&ck, || match self.get::<u64>(Table::RulesCurrent, &ck)? {
                Some(v) => Ok(self.rule_set(tenant, v)?.map(Arc::new)),
                None => Ok(None),
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
        self.get(
            Table::RulesIdem,
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
        self.get(Table::Transfers, &transfer_key(tenant, transfer_id))
    }

    async fn put(&self, record: TransferRecord) -> ServiceResult<Applied> {
        self.write(WriteOp::Transfer(Box::new(record))).await
    }

    async fn unfinished(&self, limit: usize) -> ServiceResult<Vec<TransferRecord>> {
        self.reads.unapplied.caught_up().await?;
        let mut out = Vec::new();
        for guard in self.tables.transfers_open.iter().take(limit) {
            let k = guard.value().map_err(storage)?;
            if let Some(record) = self.get(Table::Transfers, &k)? {
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
        self.reads.unapplied.caught_up().await?;
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
        self.reads.unapplied.caught_up().await?;
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
                let (StoredChange { wallet, entry }, trace) = trace::decode_traced(&v)?;
                let entry = self.committed_entry(&wallet, entry)?;
                Ok(Change {
                    seq,
                    wallet,
                    entry,
                    trace,
                })
            })
            .collect()
    }

    async fn position(&self, reader: &str) -> ServiceResult<u64> {
        Ok(self
            .get::<u64>(Table::Positions, reader.as_bytes())?
            .unwrap_or(0))
    }

    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()> {
        self.write(WriteOp::SavePosition {
            reader: reader.to_string(),
            seq,
        })
        .await
        .map(|_| ())
    }

    async fn log_end(&self, from: u64) -> ServiceResult<u64> {
        // The change records applied to the tables: behind the commit log by the applier's
        // few milliseconds at most.
        let last = match self.tables.changes.last_key_value() {
            Some(guard) => {
                let key = guard.key().map_err(storage)?;
                u64::from_be_bytes(
                    key.as_ref()
                        .try_into()
                        .map_err(|_| ServiceError::internal("bad change key"))?,
                )
            }
            None => 0,
        };
        Ok(last.max(from))
    }
}
