//! The ledger service: every write is read head, apply, one conditional commit, under the wallet's
//! lock in this process and the version condition across processes.

use crate::command::{Command, fingerprint};
use crate::model::{
    EntryKind, HoldView, IdempotencyRecord, ReversalTracker, WalletHead, WalletKey, WriteOutcome,
};
use crate::rules::RuleSet;
use crate::store::{
    Applied, DueIndex, RulesIdempotency, RulesRepository, TransferRepository, WalletCommit,
    WalletRepository,
};
use crate::wallet::{WalletTx, balance_view};
use loyalty_common::clock::SharedClock;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{EntryId, IdempotencyKey, TenantId};
use loyalty_common::write_scope;
use loyalty_common::{ServiceError, Timestamp};
use loyalty_region::background::SharedView;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

/// Attempts before a write gives up on version conflicts from other processes.
const MAX_ATTEMPTS: usize = 16;
/// Wallet lock stripes: enough that unrelated wallets rarely share one.
const LOCK_STRIPES: usize = 4096;

/// The storage the ledger runs on.
#[derive(Clone)]
pub struct LedgerPorts {
    pub wallets: Arc<dyn WalletRepository>,
    pub rules: Arc<dyn RulesRepository>,
    pub transfers: Arc<dyn TransferRepository>,
    pub due: Arc<dyn DueIndex>,
}

/// Failure points tests switch on to simulate a crash between the steps of a transfer.
#[derive(Default)]
pub struct FaultInjection {
    pub stop_after_transfer_debit: AtomicBool,
    /// The credit step of a transfer is refused (as if the receiving wallet were gone), so the
    /// points go back to the sender.
    pub refuse_transfer_credit: AtomicBool,
}

/// A write's result and whether it was a replay of an earlier one.
#[derive(Debug, Clone)]
pub struct Written {
    pub outcome: WriteOutcome,
    pub replayed: bool,
}

pub struct Ledger {
    pub(crate) ports: LedgerPorts,
    pub(crate) clock: SharedClock,
    locks: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
    default_rules: Arc<RuleSet>,
    pub faults: FaultInjection,
    /// In two regions, the homes and this region's lease, which its background work follows
    /// (`regions.rs`); None in one region.
    pub(crate) regions: Option<SharedView>,
    /// The heads this process's commits wrote and saw acknowledged (`crate::carry`).
    pub(crate) acknowledged: crate::carry::Acknowledged,
}

impl Ledger {
    pub fn new(ports: LedgerPorts, clock: SharedClock) -> Arc<Self> {
        Self::in_regions(ports, clock, None)
    }

    /// A ledger whose background work (housekeeping, the recovery of transfers) follows the
    /// homes and this region's lease in `regions` (decision 0019).
    pub fn in_regions(
        ports: LedgerPorts,
        clock: SharedClock,
        regions: Option<SharedView>,
    ) -> Arc<Self> {
        Arc::new(Self {
            ports,
            clock,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
            default_rules: Arc::default(),
            faults: FaultInjection::default(),
            regions,
            acknowledged: Default::default(),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn lock_for(&self, wallet: &WalletKey) -> &Mutex<()> {
        &self.locks[(self.hasher.hash_one(wallet) as usize) % LOCK_STRIPES]
    }

    /// The tenant's current rules, or the built-in default.
    pub async fn rules(&self, tenant: &TenantId) -> ServiceResult<Arc<RuleSet>> {
        Ok(self
            .ports
            .rules
            .current(tenant)
            .await?
            .unwrap_or_else(|| Arc::clone(&self.default_rules)))
    }

    /// Applies one command to one wallet, exactly once per idempotency key.
    pub async fn execute(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
        command: Command,
    ) -> ServiceResult<Written> {
        let result = self.execute_inner(wallet, key, &command).await;
        let outcome = match &result {
            Ok(w) if w.replayed => "replayed",
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        metrics::counter!("ledger_writes_total", "op" => command.name(), "outcome" => outcome)
            .increment(1);
        result
    }

    async fn execute_inner(
        &self,
        wallet: &WalletKey,
        key: &IdempotencyKey,
        command: &Command,
    ) -> ServiceResult<Written> {
        let fingerprint = fingerprint(wallet, command);
        let _guard = self.lock_for(wallet).lock().await;
        for _ in 0..MAX_ATTEMPTS {
            if let Some(record) = self.ports.wallets.idempotency(wallet, key).await? {
                // Its rows may be in this datacenter alone: in both before it is answered.
                self.confirm_listed(wallet).await?;
                return replay(record, &fingerprint);
            }
            let rules = self.rules(&wallet.tenant).await?;
            let head = match (self.ports.wallets.head(wallet).await?, command) {
                (Some(head), Command::Open) => {
                    // Opening is naturally idempotent: an open wallet is simply reported.
                    let balance = balance_view(&head, &rules, self.clock.as_ref());
                    let outcome = WriteOutcome {
                        entries: vec![],
                        balance,
                        hold: None,
                    };
                    return Ok(Written {
                        outcome,
                        replayed: true,
                    });
                }
                (Some(head), _) => head,
                (None, Command::Open) => WalletHead::new(wallet.clone(), self.clock.now()),
                (None, _) => return Err(wallet_not_found()),
            };
            if head.remembers(key.as_str()) {
                // Applied in the home, whose record of it has not reached this datacenter
                // (only a later write's head has): answering would need the record, and
                // applying again would apply it twice (decision 0019).
                return Err(ServiceError::new(
                    ErrorCode::Unavailable,
                    "a write with this idempotency key was applied, and its answer has not \
                     reached this region yet; retry it with the same key in a few seconds",
                ));
            }
            let epoch = epoch_of_write(&head)?;
            let mut tx = WalletTx::new(head.clone(), self.clock.as_ref());
            tx.housekeeping(rules.expiring_soon_days);
            let housekept = tx.entries.len();
            let (hold, reversals) = self.apply(&mut tx, wallet, command, &rules).await?;
            tx.notice_low_balance(&head.balances, &rules);
            // The request's own entries carry its key (partners match events to requests by
            // it); housekeeping that happened to be due first does not.
            for entry in &mut tx.entries[housekept..] {
                entry.idempotency_key = Some(key.clone());
            }
            let entries = std::mem::take(&mut tx.entries);
            let mut commit = WalletCommit::after(&head, tx.head, entries, rules.expiring_soon_days);
            commit.head.epoch = epoch;
            if write_scope::epoch().is_some() {
                commit.head.remember(key.as_str());
            }
            self.carry_unconfirmed(&mut commit, head.version, Some(key))
                .await?;
            let outcome = WriteOutcome {
                entries: commit.entries.clone(),
                balance: balance_view(&commit.head, &rules, self.clock.as_ref()),
                hold,
            };
            commit.idempotency = Some(IdempotencyRecord {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                outcome: outcome.clone(),
            });
            commit.reversals = reversals;
            // Each entry's event carries the trace of this request.
            loyalty_events::trace::remember(|| commit.entries.iter().map(|e| e.id.to_string()));
            match self.commit_noted(commit).await? {
                Applied::Yes => {
                    return Ok(Written {
                        outcome,
                        replayed: false,
                    });
                }
                Applied::Conflict => continue,
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the wallet is busy; retry with the same idempotency key",
        ))
    }

    /// Applies the command inside `tx`, reading the rows it needs. Returns the hold it created
    /// and the reversal trackers it changed.
    async fn apply(
        &self,
        tx: &mut WalletTx<'_>,
        wallet: &WalletKey,
        command: &Command,
        rules: &RuleSet,
    ) -> ServiceResult<(Option<HoldView>, Vec<ReversalTracker>)> {
        let mut reversals = Vec::new();
        let mut hold = None;
        match command {
            Command::Open => tx.open(),
            Command::Earn { order } => tx.earn(order, rules)?,
            Command::Redeem { points, reference } => {
                hold = Some(tx.hold(*points, reference, rules.hold_ttl_secs)?)
            }
            Command::RedeemNow { points, reference } => {
                let held = tx.hold(*points, reference, rules.hold_ttl_secs)?;
                let taken = tx.take_hold(held.hold_id, true)?;
                tx.capture(taken);
                hold = Some(held);
            }
            Command::Capture { hold: id } | Command::Void { hold: id } => {
                let existed = tx.head.holds.iter().any(|h| h.hold_id == *id)
                    || self
                        .ports
                        .wallets
                        .entry(wallet, EntryId(id.0))
                        .await?
                        .is_some_and(|e| e.kind == EntryKind::Held);
                let taken = tx.take_hold(*id, existed)?;
                if matches!(command, Command::Capture { .. }) {
                    tx.capture(taken);
                } else {
                    tx.release_hold(taken, EntryKind::Voided);
                }
            }
            Command::Reverse {
                entry,
                points,
                reason,
            } => {
                let target = self
                    .ports
                    .wallets
                    .entry(wallet, *entry)
                    .await?
                    .ok_or_else(entry_not_found)?;
                let mut tracker = self.tracker(wallet, *entry).await?;
                let original = match target.kind {
                    EntryKind::Earned => {
                        target.deltas.points_available + target.deltas.points_pending
                    }
                    EntryKind::Captured => -target.deltas.points_held,
                    _ => {
                        return Err(ServiceError::new(
                            ErrorCode::NotReversible,
                            "only earns and captured redemptions can be reversed",
                        ));
                    }
                };
                let amount = reversal_amount(original - tracker.reversed, *points)?;
                if target.kind == EntryKind::Earned {
                    tx.reverse_earn(&target, amount, reason);
                } else {
                    tx.reverse_capture(&target, amount, reason);
                }
                tracker.reversed += amount;
                reversals.push(tracker);
            }
            Command::Adjust { points, reason } => tx.adjust(*points, reason, rules)?,
            Command::TopUp { amount } => tx.top_up(*amount, rules),
            Command::AdjustBonusValue { amount, reason } => {
                tx.adjust_bonus_value(*amount, reason)?
            }
            Command::Spend { amount, reference } => tx.spend(*amount, reference)?,
            Command::Refund { spend, amount } => {
                let target = self
                    .ports
                    .wallets
                    .entry(wallet, *spend)
                    .await?
                    .ok_or_else(entry_not_found)?;
                if target.kind != EntryKind::Spent {
                    return Err(ServiceError::new(
                        ErrorCode::NotReversible,
                        "only spends can be refunded",
                    ));
                }
                let mut tracker = self.tracker(wallet, *spend).await?;
                let paid_left = -target.deltas.stored_value - tracker.reversed;
                let bonus_left = -target.deltas.bonus_value - tracker.reversed_bonus;
                let amount = reversal_amount(paid_left + bonus_left, *amount)?;
                let paid = amount.min(paid_left);
                tx.refund(&target, paid, amount - paid);
                tracker.reversed += paid;
                tracker.reversed_bonus += amount - paid;
                reversals.push(tracker);
            }
            Command::TransferOut { points, to } => tx.transfer_out(*points, to)?,
            Command::TransferIn { points, from, kind } => {
                tx.transfer_in(*points, from, *kind, rules)
            }
        }
        Ok((hold, reversals))
    }

    async fn tracker(&self, wallet: &WalletKey, target: EntryId) -> ServiceResult<ReversalTracker> {
        Ok(self
            .ports
            .wallets
            .reversal(wallet, target)
            .await?
            .unwrap_or(ReversalTracker {
                target: Some(target),
                ..Default::default()
            }))
    }

    /// Writes due housekeeping (activations, hold expiry, lot expiry, expiring-soon reminders)
    /// for one wallet. Returns how many entries it committed.
    pub async fn housekeep(&self, wallet: &WalletKey) -> ServiceResult<usize> {
        Ok(self.housekeep_inner(wallet).await?.0)
    }

    /// Housekeeping for one wallet: the entries committed, and when the wallet is next due.
    async fn housekeep_inner(
        &self,
        wallet: &WalletKey,
    ) -> ServiceResult<(usize, Option<Timestamp>)> {
        let _guard = self.lock_for(wallet).lock().await;
        let remind_days = self.rules(&wallet.tenant).await?.expiring_soon_days;
        for _ in 0..MAX_ATTEMPTS {
            let Some(head) = self.ports.wallets.head(wallet).await? else {
                return Ok((0, None));
            };
            // In two regions, done under the home's epoch (`regions.rs`): a wallet a newer
            // home has written refuses it.
            let epoch = epoch_of_write(&head)?;
            let mut tx = WalletTx::new(head.clone(), self.clock.as_ref());
            tx.housekeeping(remind_days);
            let next_due = tx.head.next_due(remind_days);
            if tx.entries.is_empty() {
                return Ok((0, next_due));
            }
            let entries = std::mem::take(&mut tx.entries);
            let count = entries.len();
            let mut commit = WalletCommit::after(&head, tx.head, entries, remind_days);
            commit.head.epoch = epoch;
            // Its head, like any, carries the rows of the commits it lists (`carry.rs`).
            self.carry_unconfirmed(&mut commit, head.version, None)
                .await?;
            if self.commit_noted(commit).await? == Applied::Yes {
                metrics::counter!("ledger_housekeeping_entries_total").increment(count as u64);
                return Ok((count, next_due));
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the wallet is busy",
        ))
    }

    /// Runs housekeeping for every wallet whose due time has come, and moves each one's due
    /// hint to its next due time (a tenant's new expiring-soon window can move it without
    /// any entry). A wallet that fails keeps its hint for the next pass and does not hold up
    /// the others. Returns entries written.
    pub async fn run_due(&self, limit: usize) -> ServiceResult<usize> {
        if !self.may_work() {
            return Ok(0);
        }
        let now = self.clock.now();
        let mut written = 0;
        for item in self.ports.due.due(now, limit).await? {
            // Another region's tenant is its home's to housekeep (and reschedule).
            let work = self.housekeep_inner(&item.wallet);
            let Some(done) = self.as_background(&item.wallet.tenant, work).await else {
                continue;
            };
            match done {
                Ok((count, next)) => {
                    written += count;
                    self.ports.due.reschedule(&item, next).await?;
                }
                Err(e) => tracing::warn!(
                    code = e.code.as_str(),
                    "housekeeping a wallet failed; it is retried on the next pass"
                ),
            }
        }
        Ok(written)
    }

    pub async fn balance(&self, wallet: &WalletKey) -> ServiceResult<crate::model::BalanceView> {
        let head = self
            .ports
            .wallets
            .head(wallet)
            .await?
            .ok_or_else(wallet_not_found)?;
        let rules = self.rules(&wallet.tenant).await?;
        Ok(balance_view(&head, &rules, self.clock.as_ref()))
    }

    /// Points expiring within `days` (the tenant's expiring-soon window when `None`).
    pub async fn expiring(
        &self,
        wallet: &WalletKey,
        days: Option<u32>,
    ) -> ServiceResult<Vec<crate::model::Lot>> {
        let head = self
            .ports
            .wallets
            .head(wallet)
            .await?
            .ok_or_else(wallet_not_found)?;
        let days = match days {
            Some(d) => d,
            None => self.rules(&wallet.tenant).await?.expiring_soon_days,
        };
        Ok(crate::wallet::expiring_within(
            &head,
            days,
            self.clock.as_ref(),
        ))
    }

    /// Entries newest first; the cursor is the id of the last entry of the previous page.
    pub async fn history(
        &self,
        wallet: &WalletKey,
        before: Option<EntryId>,
        limit: usize,
    ) -> ServiceResult<(Vec<crate::model::Entry>, Option<EntryId>)> {
        if self.ports.wallets.head(wallet).await?.is_none() {
            return Err(wallet_not_found());
        }
        let mut entries = self
            .ports
            .wallets
            .history(wallet, before, limit + 1)
            .await?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let cursor = if more {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok((entries, cursor))
    }

    /// Stores a new version of a tenant's rules.
    pub async fn put_rules(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        mut rules: RuleSet,
        expected: Option<u64>,
    ) -> ServiceResult<(RuleSet, bool)> {
        rules.validate()?;
        rules.version = 0;
        let fingerprint = crate::command::fingerprint_of(&(tenant, &rules, expected));
        for _ in 0..MAX_ATTEMPTS {
            if let Some(previous) = self.ports.rules.idempotency(tenant, key).await? {
                if previous.fingerprint != fingerprint {
                    return Err(idempotency_conflict());
                }
                let stored = self.ports.rules.version(tenant, previous.version).await?;
                return stored
                    .map(|r| (r, true))
                    .ok_or_else(|| ServiceError::internal("rules version missing"));
            }
            let current = self
                .ports
                .rules
                .current(tenant)
                .await?
                .map_or(0, |r| r.version);
            if expected.is_some_and(|e| e != current) {
                return Err(ServiceError::new(
                    ErrorCode::VersionConflict,
                    format!("the current rules version is {current}"),
                ));
            }
            let mut next = rules.clone();
            next.version = current + 1;
            let idem = RulesIdempotency {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                version: next.version,
            };
            if self
                .ports
                .rules
                .put(tenant, current, next.clone(), idem)
                .await?
                == Applied::Yes
            {
                return Ok((next, false));
            }
        }
        Err(ServiceError::new(
            ErrorCode::VersionConflict,
            "the rules changed concurrently; retry",
        ))
    }

    /// A stored version of a tenant's rules, or the current one (0).
    pub async fn get_rules(&self, tenant: &TenantId, version: u64) -> ServiceResult<RuleSet> {
        if version == 0 {
            return Ok(self.rules(tenant).await?.as_ref().clone());
        }
        self.ports
            .rules
            .version(tenant, version)
            .await?
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::RulesNotFound,
                    format!("no rules version {version} for this tenant"),
                )
            })
    }

    pub(crate) fn transfers(&self) -> &dyn TransferRepository {
        self.ports.transfers.as_ref()
    }

    pub(crate) fn fault(&self, flag: &AtomicBool) -> bool {
        flag.load(Ordering::SeqCst)
    }
}

fn replay(record: IdempotencyRecord, fingerprint: &str) -> ServiceResult<Written> {
    if record.fingerprint != fingerprint {
        return Err(idempotency_conflict());
    }
    Ok(Written {
        outcome: record.outcome,
        replayed: true,
    })
}

/// The epoch a write to `head`'s wallet leaves on it: the one this write was accepted under in
/// its tenant's home (decision 0019), or the head's own for work with none (one region). A write accepted under an older epoch than the wallet's last is refused:
/// the tenant's home has moved since it was accepted, and the new home has written the
/// wallet. With the head's version the condition of the commit, this is the commit's
/// `epoch <= accepted`.
pub(crate) fn epoch_of_write(head: &WalletHead) -> ServiceResult<u64> {
    match write_scope::epoch() {
        Some(accepted) if accepted < head.epoch => Err(ServiceError::new(
            ErrorCode::RegionFenced,
            format!(
                "this write was accepted under the tenant's home epoch {accepted}, and the \
                 wallet has been written under epoch {} since: the tenant's home has moved; \
                 retry with the same idempotency key",
                head.epoch
            ),
        )),
        Some(accepted) => Ok(accepted),
        None => Ok(head.epoch),
    }
}

/// How much to reverse: all that is left when unspecified, never more than that.
fn reversal_amount(left: i64, requested: Option<i64>) -> ServiceResult<i64> {
    let amount = requested.unwrap_or(left);
    if left <= 0 {
        return Err(ServiceError::new(
            ErrorCode::ReversalExceedsOriginal,
            "this entry has already been fully reversed",
        ));
    }
    if amount > left {
        return Err(ServiceError::new(
            ErrorCode::ReversalExceedsOriginal,
            format!("at most {left} can still be reversed"),
        ));
    }
    Ok(amount)
}

pub fn wallet_not_found() -> ServiceError {
    ServiceError::new(
        ErrorCode::WalletNotFound,
        "no wallet for this member; open one first",
    )
}

fn entry_not_found() -> ServiceError {
    ServiceError::new(ErrorCode::EntryNotFound, "no such entry on this wallet")
}

pub fn idempotency_conflict() -> ServiceError {
    ServiceError::new(
        ErrorCode::IdempotencyConflict,
        "this idempotency key was already used with a different request",
    )
}
