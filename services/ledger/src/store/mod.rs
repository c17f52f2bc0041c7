//! Ports: what the ledger needs from storage, shaped by what ScyllaDB can do. Each write is one
//! conditional batch on one partition (a wallet, a tenant's rules, one transfer); reads are by
//! partition key plus clustering key or range. Adapters offer nothing more, so the domain behaves
//! the same on the embedded store and on ScyllaDB.

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "cql")]
pub mod cql;
pub mod embedded;
mod stored_head;

pub use stored_head::{decode_head, encode_head};

use crate::model::{
    BalanceView, Entry, HoldView, IdempotencyRecord, ReversalTracker, WalletHead, WalletKey,
    WriteOutcome,
};
use crate::rules::RuleSet;
use crate::transfer::TransferRecord;
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{EntryId, IdempotencyKey, TenantId};
use loyalty_events::trace::TraceContext;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Whether a conditional write applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Yes,
    /// The condition failed: someone else wrote first. Re-read and retry.
    Conflict,
}

/// One conditional batch on a wallet partition.
#[derive(Debug, Clone)]
pub struct WalletCommit {
    /// The version the head had when read; 0 means the wallet must not exist yet.
    pub expected_version: u64,
    /// The home epoch the head had when read (decision 0019): a commit whose head carries a
    /// newer one is the wallet's first in a new home.
    pub expected_epoch: u64,
    /// The new head; its version is `expected_version + 1`.
    pub head: WalletHead,
    pub entries: Vec<Entry>,
    pub idempotency: Option<IdempotencyRecord>,
    pub reversals: Vec<ReversalTracker>,
    /// Records (with their entries) of earlier commits not known to be in both regions'
    /// datacenters, written again in this commit's batch (`crate::carry`).
    pub carried: Vec<IdempotencyRecord>,
    /// When housekeeping next has work on this wallet, if that changed. On ScyllaDB this row
    /// lives in another partition and is written before the batch: a stale hint is harmless,
    /// a missing one is not.
    pub due_at: Option<Timestamp>,
}

impl WalletCommit {
    /// Whether this is the wallet's first commit since its tenant's home moved.
    pub fn first_in_new_home(&self) -> bool {
        self.head.epoch > self.expected_epoch
    }

    /// The commit that replaces `old` with `new_head` (whose version it sets) and adds
    /// `entries`; the due hint is written only when the next due time differs from the hint
    /// last written. `remind_days` is the tenant's expiring-soon window, which decides when a
    /// reminder is due.
    pub fn after(
        old: &WalletHead,
        mut new_head: WalletHead,
        entries: Vec<Entry>,
        remind_days: u32,
    ) -> Self {
        new_head.version = old.version + 1;
        let next_due = new_head.next_due(remind_days);
        new_head.due_hint = next_due;
        Self {
            expected_version: old.version,
            expected_epoch: old.epoch,
            due_at: next_due.filter(|d| Some(*d) != old.due_hint),
            head: new_head,
            entries,
            idempotency: None,
            reversals: Vec::new(),
            carried: Vec::new(),
        }
    }
}

/// An idempotency record as both adapters store it: its key is the row's key, and the
/// outcome's entries are rows of the same wallet, written in the same batch, so only their
/// ids are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdempotency {
    pub fingerprint: String,
    pub entries: Vec<EntryId>,
    pub balance: BalanceView,
    pub hold: Option<HoldView>,
}

impl StoredIdempotency {
    pub fn of(record: &IdempotencyRecord) -> Self {
        Self {
            fingerprint: record.fingerprint.clone(),
            entries: record.outcome.entries.iter().map(|e| e.id).collect(),
            balance: record.outcome.balance.clone(),
            hold: record.outcome.hold.clone(),
        }
    }

    /// The record again, with its entries read back (in the order of `self.entries`).
    pub fn into_record(self, key: IdempotencyKey, entries: Vec<Entry>) -> IdempotencyRecord {
        IdempotencyRecord {
            key,
            fingerprint: self.fingerprint,
            outcome: WriteOutcome {
                entries,
                balance: self.balance,
                hold: self.hold,
            },
        }
    }
}

/// The wallet partition.
#[async_trait]
pub trait WalletRepository: Send + Sync + 'static {
    async fn head(&self, wallet: &WalletKey) -> ServiceResult<Option<WalletHead>>;
    async fn idempotency(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<IdempotencyRecord>>;
    async fn entry(&self, wallet: &WalletKey, id: EntryId) -> ServiceResult<Option<Entry>>;
    async fn reversal(
        &self,
        wallet: &WalletKey,
        target: EntryId,
    ) -> ServiceResult<Option<ReversalTracker>>;
    /// Entries newest first, strictly older than `before` when given.
    async fn history(
        &self,
        wallet: &WalletKey,
        before: Option<EntryId>,
        limit: usize,
    ) -> ServiceResult<Vec<Entry>>;
    async fn commit(&self, commit: WalletCommit) -> ServiceResult<Applied>;

    /// Whether an applied commit is in both regions' datacenters (two regions, `EACH_QUORUM`,
    /// neither failed over). False for a store of one datacenter.
    fn commits_reach_both_regions(&self) -> bool {
        false
    }
}

/// The first result of an idempotent rules update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesIdempotency {
    pub key: IdempotencyKey,
    pub fingerprint: String,
    pub version: u64,
}

/// A tenant's versioned rule sets (one partition per tenant).
#[async_trait]
pub trait RulesRepository: Send + Sync + 'static {
    async fn current(&self, tenant: &TenantId) -> ServiceResult<Option<Arc<RuleSet>>>;
    async fn version(&self, tenant: &TenantId, version: u64) -> ServiceResult<Option<RuleSet>>;
    async fn idempotency(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<RulesIdempotency>>;
    /// Stores `rules` (whose version is `expected_current + 1`) if the current version is still `expected_current`.
    async fn put(
        &self,
        tenant: &TenantId,
        expected_current: u64,
        rules: RuleSet,
        idempotency: RulesIdempotency,
    ) -> ServiceResult<Applied>;
}

/// Transfer records (one partition per transfer) and the list of unfinished ones.
#[async_trait]
pub trait TransferRepository: Send + Sync + 'static {
    async fn get(
        &self,
        tenant: &TenantId,
        transfer_id: &str,
    ) -> ServiceResult<Option<TransferRecord>>;
    /// Writes the record if its stored revision is still `record.revision - 1` (0 = new).
    async fn put(&self, record: TransferRecord) -> ServiceResult<Applied>;
    /// Transfers not yet completed or failed, oldest first.
    async fn unfinished(&self, limit: usize) -> ServiceResult<Vec<TransferRecord>>;
}

/// A wallet with housekeeping due at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueWallet {
    pub at: Timestamp,
    pub wallet: WalletKey,
}

/// The scheduler's index of wallets with work due (time-bucketed partitions on ScyllaDB).
#[async_trait]
pub trait DueIndex: Send + Sync + 'static {
    async fn due(&self, until: Timestamp, limit: usize) -> ServiceResult<Vec<DueWallet>>;
    /// Removes `item`, which has fired, and adds the wallet again at `next` when given (its
    /// next due time, e.g. when a tenant's window moved it), in one write.
    async fn reschedule(&self, item: &DueWallet, next: Option<Timestamp>) -> ServiceResult<()>;
}

/// One committed entry, in commit order: the record from which exactly one event is published.
/// On the CQL store this is the relay's change log; the embedded store writes it in the same
/// transaction as the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub wallet: WalletKey,
    pub entry: Entry,
    /// The trace context of the request that wrote it, as its record carries it.
    #[serde(skip)]
    pub trace: Option<TraceContext>,
}

/// Reads the record of committed changes, and keeps each reader's position in it.
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    async fn changes_after(&self, seq: u64, limit: usize) -> ServiceResult<Vec<Change>>;
    /// The last sequence number `reader` saved (0: none).
    async fn position(&self, reader: &str) -> ServiceResult<u64>;
    /// Saves `reader`'s position; durable when this returns.
    async fn save_position(&self, reader: &str, seq: u64) -> ServiceResult<()>;
    /// The newest position of the change log, at least `from` (a position known to be in
    /// it), for the publisher's backlog.
    async fn log_end(&self, from: u64) -> ServiceResult<u64>;
}
