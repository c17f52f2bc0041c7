//! The wallet partition: one head (balances, open lots, pending lots, active holds, version) plus
//! clustering rows (entries, idempotency records, reversal trackers). Every write replaces the head
//! and adds rows in one conditional batch on that partition, which is all ScyllaDB can do atomically.

use loyalty_common::Timestamp;
use loyalty_common::ids::{EntryId, HoldId, IdempotencyKey, MemberId, TenantId};
use serde::{Deserialize, Serialize};

/// The partition key of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WalletKey {
    pub tenant: TenantId,
    pub member: MemberId,
}

/// Changes an entry makes to each balance. The sum of a wallet's entries equals its balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deltas {
    pub points_available: i64,
    pub points_pending: i64,
    pub points_held: i64,
    pub stored_value: i64,
    pub bonus_value: i64,
}

impl Deltas {
    pub fn add(&mut self, other: &Deltas) {
        self.points_available += other.points_available;
        self.points_pending += other.points_pending;
        self.points_held += other.points_held;
        self.stored_value += other.stored_value;
        self.bonus_value += other.bonus_value;
    }

    pub fn is_zero(&self) -> bool {
        *self == Deltas::default()
    }
}

/// Available points that expire together. Lots with the same expiry are merged, which bounds
/// the head's size by the number of distinct expiry days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub expires_at: Option<Timestamp>,
    pub points: i64,
}

/// Points earned but locked until the returns window closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLot {
    pub earn_entry: EntryId,
    pub points: i64,
    pub activates_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// Points set aside by a redemption until it is captured, voided or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub hold_id: HoldId,
    pub points: i64,
    /// The lots the points came from, so a void gives back the same expiry dates.
    pub taken: Vec<Lot>,
    pub expires_at: Timestamp,
    pub reference: String,
}

/// The static part of the wallet partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletHead {
    pub wallet: WalletKey,
    /// Incremented by every write; the condition of every conditional batch.
    pub version: u64,
    pub opened_at: Timestamp,
    /// Running balances: always the sum of every entry's deltas.
    pub balances: Deltas,
    /// Available points by expiry, earliest first; `None` (never expires) last.
    pub lots: Vec<Lot>,
    /// Points owed after a reversal took more than was available; paid from the next credits.
    pub debt: i64,
    pub pending: Vec<PendingLot>,
    pub holds: Vec<Hold>,
    /// Points earned on one UTC day (days since the epoch), for the per-day cap.
    pub earned_day: Option<(i64, i64)>,
    /// Expiry times of lots that have had their expiring-soon reminder, earliest first; times
    /// already past are dropped. A lot is known by its expiry (lots with one expiry merge), so
    /// points joining a reminded lot, or given back to it, are not reminded again, while a lot
    /// that comes back below a later reminded one still is. At most one per day of the window.
    pub reminded: Vec<Timestamp>,
    /// The due time last written to the due index for this wallet, so a commit writes a new
    /// one only when it differs, whatever window computed the old one.
    pub due_hint: Option<Timestamp>,
    /// The epoch of the tenant's home its last write in two regions was accepted under
    /// (decision 0019); 0 for one written in one region. Stored after the head's postcard
    /// bytes, not inside them ([`crate::store::encode_head`]), so heads written before it read
    /// as before.
    #[serde(skip)]
    pub epoch: u64,
    /// Digests of the idempotency keys of the wallet's newest writes in two regions, oldest
    /// first (at most [`RECENT_KEYS`]): a write whose rows reached only its home's datacenter
    /// is still known in the other one through any later write's head, so a retry there is
    /// not applied twice (decision 0019). Stored after the epoch, as it is; empty in one
    /// region.
    #[serde(skip)]
    pub recent: Vec<KeyDigest>,
    /// The keys of the commits whose rows may be in the home's datacenter alone, whose
    /// records the next commit writes again (`crate::carry`). Stored after the others; empty
    /// in one region.
    #[serde(skip)]
    pub unconfirmed: Vec<loyalty_common::ids::IdempotencyKey>,
}

/// How many of a wallet's newest writes its head remembers by key.
pub const RECENT_KEYS: usize = 16;

/// The first 16 bytes of the SHA-256 of an idempotency key.
pub type KeyDigest = [u8; 16];

/// `key`'s digest, as a head remembers it.
pub fn key_digest(key: &str) -> KeyDigest {
    use sha2::Digest;
    let full = sha2::Sha256::digest(key.as_bytes());
    let mut digest = [0; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

impl WalletHead {
    /// Remembers a write's key, forgetting the oldest beyond [`RECENT_KEYS`].
    pub fn remember(&mut self, key: &str) {
        self.recent.push(key_digest(key));
        let excess = self.recent.len().saturating_sub(RECENT_KEYS);
        self.recent.drain(..excess);
    }

    /// Whether a write with `key` is among those the head remembers.
    pub fn remembers(&self, key: &str) -> bool {
        self.recent.contains(&key_digest(key))
    }

    pub fn new(wallet: WalletKey, now: Timestamp) -> Self {
        Self {
            wallet,
            version: 0,
            opened_at: now,
            balances: Deltas::default(),
            lots: Vec::new(),
            debt: 0,
            pending: Vec::new(),
            holds: Vec::new(),
            earned_day: None,
            reminded: Vec::new(),
            due_hint: None,
            epoch: 0,
            recent: Vec::new(),
            unconfirmed: Vec::new(),
        }
    }

    /// The earliest moment housekeeping has work on this wallet, given the tenant's
    /// expiring-soon window (0: no reminders).
    pub fn next_due(&self, remind_days: u32) -> Option<Timestamp> {
        let pending = self.pending.iter().map(|p| p.activates_at);
        let holds = self.holds.iter().map(|h| h.expires_at);
        let lots = self.lots.iter().filter_map(|l| l.expires_at);
        let reminder = self.unreminded_lots().next().and_then(|l| {
            let expires_at = l.expires_at?;
            (remind_days > 0).then(|| expires_at.plus_days(-i64::from(remind_days)))
        });
        pending.chain(holds).chain(lots).chain(reminder).min()
    }

    /// Lots that expire and have not had their reminder yet, earliest first.
    pub fn unreminded_lots(&self) -> impl Iterator<Item = &Lot> {
        self.lots.iter().filter(|l| {
            l.expires_at
                .is_some_and(|at| self.reminded.binary_search(&at).is_err())
        })
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Opened,
    Earned,
    PendingActivated,
    Held,
    Captured,
    Voided,
    HoldExpired,
    Reversed,
    Adjusted,
    TransferredOut,
    TransferredIn,
    TransferReturned,
    Expired,
    ToppedUp,
    Spent,
    Refunded,
    /// A notice with no deltas: this write took stored value (paid plus bonus) below the
    /// tenant's low-balance threshold. Kinds are only ever added at the end: stored rows encode
    /// the kind by position.
    LowBalance,
    /// A notice with no deltas: points of the wallet will expire within the tenant's
    /// expiring-soon window. `lots` holds each expiry date and its points; once per lot.
    ExpiringSoon,
    /// Bonus stored value given or taken back without a payment (a campaign's bonus).
    BonusAdjusted,
}

impl EntryKind {
    /// Every kind, in declaration order.
    pub const ALL: [EntryKind; 19] = [
        EntryKind::Opened,
        EntryKind::Earned,
        EntryKind::PendingActivated,
        EntryKind::Held,
        EntryKind::Captured,
        EntryKind::Voided,
        EntryKind::HoldExpired,
        EntryKind::Reversed,
        EntryKind::Adjusted,
        EntryKind::TransferredOut,
        EntryKind::TransferredIn,
        EntryKind::TransferReturned,
        EntryKind::Expired,
        EntryKind::ToppedUp,
        EntryKind::Spent,
        EntryKind::Refunded,
        EntryKind::LowBalance,
        EntryKind::ExpiringSoon,
        EntryKind::BonusAdjusted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Opened => "opened",
            EntryKind::Earned => "earned",
            EntryKind::PendingActivated => "pending_activated",
            EntryKind::Held => "held",
            EntryKind::Captured => "captured",
            EntryKind::Voided => "voided",
            EntryKind::HoldExpired => "hold_expired",
            EntryKind::Reversed => "reversed",
            EntryKind::Adjusted => "adjusted",
            EntryKind::TransferredOut => "transferred_out",
            EntryKind::TransferredIn => "transferred_in",
            EntryKind::TransferReturned => "transfer_returned",
            EntryKind::Expired => "expired",
            EntryKind::ToppedUp => "topped_up",
            EntryKind::Spent => "spent",
            EntryKind::Refunded => "refunded",
            EntryKind::LowBalance => "low_balance",
            EntryKind::ExpiringSoon => "expiring_soon",
            EntryKind::BonusAdjusted => "bonus_adjusted",
        }
    }
}

/// One immutable ledger line (a clustering row of the wallet partition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    pub kind: EntryKind,
    pub at: Timestamp,
    pub deltas: Deltas,
    /// The client's key; housekeeping entries have none.
    pub idempotency_key: Option<IdempotencyKey>,
    pub order_id: Option<String>,
    pub hold_id: Option<HoldId>,
    /// The entry this one reverses, refunds or settles.
    pub target: Option<EntryId>,
    pub reason: Option<String>,
    pub counterparty: Option<MemberId>,
    /// The earning-rule version that produced this entry.
    pub rules_version: Option<u64>,
    pub reference: Option<String>,
    /// Lots a capture consumed (so a later reversal restores their expiry), the lot an
    /// expiry removed, or the lots an expiring-soon reminder is about.
    pub lots: Vec<Lot>,
}

impl Entry {
    pub fn new(id: EntryId, kind: EntryKind, at: Timestamp, deltas: Deltas) -> Self {
        Self {
            id,
            kind,
            at,
            deltas,
            idempotency_key: None,
            order_id: None,
            hold_id: None,
            target: None,
            reason: None,
            counterparty: None,
            rules_version: None,
            reference: None,
            lots: Vec::new(),
        }
    }
}

/// How much of an entry has been reversed or refunded so far: the guard against reversing twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalTracker {
    pub target: Option<EntryId>,
    /// Points, or paid stored value for a spend.
    pub reversed: i64,
    /// Bonus stored value given back by refunds.
    pub reversed_bonus: i64,
}

/// The first result of an idempotent write, returned again on replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    /// SHA-256 of the canonical request; another body under the same key is a conflict.
    pub fingerprint: String,
    pub outcome: WriteOutcome,
}

/// What a write returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOutcome {
    pub entries: Vec<Entry>,
    pub balance: BalanceView,
    pub hold: Option<HoldView>,
}

/// A hold as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    pub hold_id: HoldId,
    pub points: i64,
    pub expires_at: Timestamp,
    pub reference: String,
}

/// Balances as callers see them at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    pub points_available: i64,
    pub points_pending: i64,
    pub points_held: i64,
    pub expiring_soon_points: i64,
    pub expiring_soon_at: Option<Timestamp>,
    pub stored_value: i64,
    pub bonus_value: i64,
    pub low_balance: bool,
    pub version: u64,
}
