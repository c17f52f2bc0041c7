//! Pure wallet transitions. A [`WalletTx`] takes a head, applies housekeeping and one operation,
//! and yields the new head plus the entries that explain every balance change. Nothing here does
//! I/O, so every rule can be tested without a store.

use crate::model::{
    BalanceView, Deltas, Entry, EntryKind, Hold, HoldView, Lot, PendingLot, WalletHead,
};
use crate::rules::{Order, RuleSet, utc_day};
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::{EntryId, HoldId};
use loyalty_common::{Clock, ServiceError, Timestamp};

/// A write in progress on one wallet.
pub struct WalletTx<'a> {
    pub head: WalletHead,
    pub entries: Vec<Entry>,
    now: Timestamp,
    clock: &'a dyn Clock,
}

impl<'a> WalletTx<'a> {
    pub fn new(head: WalletHead, clock: &'a dyn Clock) -> Self {
        Self {
            head,
            entries: Vec::new(),
            now: clock.now(),
            clock,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Records an entry and applies its deltas to the running balances.
    fn push(&mut self, kind: EntryKind, deltas: Deltas) -> &mut Entry {
        let id = EntryId(self.clock.new_ulid());
        self.head.balances.add(&deltas);
        self.entries.push(Entry::new(id, kind, self.now, deltas));
        let last = self.entries.len() - 1;
        &mut self.entries[last]
    }

    /// Activates matured pending points, voids expired holds, expires lots that are due, then
    /// reminds of lots that expire within `remind_days` (0: no reminders).
    pub fn housekeeping(&mut self, remind_days: u32) {
        let now = self.now;
        let (matured, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.head.pending)
            .into_iter()
            .partition(|p| p.activates_at <= now);
        self.head.pending = still;
        for lot in matured {
            credit_lots(
                &mut self.head,
                Lot {
                    expires_at: lot.expires_at,
                    points: lot.points,
                },
            );
            let entry = self.push(
                EntryKind::PendingActivated,
                Deltas {
                    points_pending: -lot.points,
                    points_available: lot.points,
                    ..Deltas::default()
                },
            );
            entry.target = Some(lot.earn_entry);
        }
        let (expired, active): (Vec<_>, Vec<_>) = std::mem::take(&mut self.head.holds)
            .into_iter()
            .partition(|h| h.expires_at <= now);
        self.head.holds = active;
        for hold in expired {
            self.release_hold(hold, EntryKind::HoldExpired);
        }
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.head.lots)
            .into_iter()
            .partition(|l| l.expires_at.is_some_and(|at| at <= now));
        self.head.lots = kept;
        for lot in gone {
            let entry = self.push(
                EntryKind::Expired,
                Deltas {
                    points_available: -lot.points,
                    ..Deltas::default()
                },
            );
            entry.lots = vec![lot];
        }
        self.remind_expiring(remind_days);
    }

    /// One expiring-soon notice for every lot not yet reminded that expires within
    /// `remind_days`, remembering each one's expiry, so each lot is reminded once even if points
    /// later join it. Forgets expiry times that have passed: those lots are gone.
    fn remind_expiring(&mut self, remind_days: u32) {
        let now = self.now;
        self.head.reminded.retain(|at| *at > now);
        if remind_days == 0 {
            return;
        }
        let horizon = now.plus_days(i64::from(remind_days));
        let due: Vec<Lot> = self
            .head
            .unreminded_lots()
            .filter(|l| l.expires_at.is_some_and(|at| at <= horizon))
            .copied()
            .collect();
        let (Some(first), Some(last)) = (
            due.first().and_then(|l| l.expires_at),
            due.last().and_then(|l| l.expires_at),
        ) else {
            return;
        };
        self.head
            .reminded
            .extend(due.iter().filter_map(|l| l.expires_at));
        self.head.reminded.sort_unstable();
        let points: i64 = due.iter().map(|l| l.points).sum();
        let reason = if first == last {
            format!("{points} points expire at {}", first.to_rfc3339())
        } else {
            format!(
                "{points} points expire between {} and {}",
                first.to_rfc3339(),
                last.to_rfc3339()
            )
        };
        let entry = self.push(EntryKind::ExpiringSoon, Deltas::default());
        entry.lots = due;
        entry.reason = Some(reason);
    }

    /// Opens the wallet.
    pub fn open(&mut self) {
        self.push(EntryKind::Opened, Deltas::default());
    }

    /// Earns points for an order under `rules`, pending if the rules lock them.
    pub fn earn(&mut self, order: &Order, rules: &RuleSet) -> Result<(), ServiceError> {
        let occurred_at = order.occurred_at.unwrap_or(self.now);
        let mut points = rules.points_for(order, occurred_at);
        let day = utc_day(occurred_at);
        let earned_today = match self.head.earned_day {
            Some((d, p)) if d == day => p,
            _ => 0,
        };
        if rules.per_day_cap > 0 {
            points = points.min((rules.per_day_cap - earned_today).max(0));
        }
        self.head.earned_day = Some((day, earned_today + points));
        let expires_at = rules.expiry_for(occurred_at);
        let activates_at = occurred_at.plus_days(i64::from(rules.lock_days));
        let pending = rules.lock_days > 0 && activates_at > self.now && points > 0;
        let deltas = if pending {
            Deltas {
                points_pending: points,
                ..Deltas::default()
            }
        } else {
            Deltas {
                points_available: points,
                ..Deltas::default()
            }
        };
        if !pending && points > 0 {
            credit_lots(&mut self.head, Lot { expires_at, points });
        }
        let entry = self.push(EntryKind::Earned, deltas);
        entry.order_id = Some(order.order_id.clone());
        entry.rules_version = Some(rules.version);
        let earn_entry = entry.id;
        if pending {
            self.head.pending.push(PendingLot {
                earn_entry,
                points,
                activates_at,
                expires_at,
            });
        }
        Ok(())
    }

    /// Sets points aside for a redemption; they stay held until captured, voided or expired.
    pub fn hold(
        &mut self,
        points: i64,
        reference: &str,
        ttl_secs: u32,
    ) -> Result<HoldView, ServiceError> {
        let taken = self.take_points(points)?;
        let expires_at = self.now.plus_secs(i64::from(ttl_secs));
        let entry = self.push(
            EntryKind::Held,
            Deltas {
                points_available: -points,
                points_held: points,
                ..Deltas::default()
            },
        );
        let hold_id = HoldId(entry.id.0);
        entry.hold_id = Some(hold_id);
        entry.reference = Some(reference.to_string());
        self.head.holds.push(Hold {
            hold_id,
            points,
            taken,
            expires_at,
            reference: reference.to_string(),
        });
        Ok(HoldView {
            hold_id,
            points,
            expires_at,
            reference: reference.to_string(),
        })
    }

    /// Removes an active hold, or says why it cannot be found.
    pub fn take_hold(&mut self, hold_id: HoldId, hold_existed: bool) -> Result<Hold, ServiceError> {
        match self.head.holds.iter().position(|h| h.hold_id == hold_id) {
            Some(i) => Ok(self.head.holds.remove(i)),
            None if hold_existed => Err(ServiceError::new(
                ErrorCode::HoldNotActive,
                "the hold was already captured, voided or expired",
            )),
            None => Err(ServiceError::new(
                ErrorCode::HoldNotFound,
                "no such hold on this wallet",
            )),
        }
    }

    /// Spends held points for good.
    pub fn capture(&mut self, hold: Hold) {
        let entry = self.push(
            EntryKind::Captured,
            Deltas {
                points_held: -hold.points,
                ..Deltas::default()
            },
        );
        entry.hold_id = Some(hold.hold_id);
        entry.target = Some(EntryId(hold.hold_id.0));
        entry.reference = Some(hold.reference);
        entry.lots = hold.taken;
    }

    /// Gives held points back with their original expiry dates.
    pub fn release_hold(&mut self, hold: Hold, kind: EntryKind) {
        for lot in &hold.taken {
            credit_lots(&mut self.head, *lot);
        }
        let entry = self.push(
            kind,
            Deltas {
                points_held: -hold.points,
                points_available: hold.points,
                ..Deltas::default()
            },
        );
        entry.hold_id = Some(hold.hold_id);
        entry.target = Some(EntryId(hold.hold_id.0));
    }

    /// Takes back points of an earn: first from its own pending lot, then from available points,
    /// and what is not there becomes debt (a return must go through even if the points were spent).
    pub fn reverse_earn(&mut self, earn: &Entry, points: i64, reason: &str) {
        let mut from_pending = 0;
        if let Some(i) = self
            .head
            .pending
            .iter()
            .position(|p| p.earn_entry == earn.id)
        {
            let lot = &mut self.head.pending[i];
            from_pending = lot.points.min(points);
            lot.points -= from_pending;
            if lot.points == 0 {
                self.head.pending.remove(i);
            }
        }
        let from_available = points - from_pending;
        debit_latest_first(&mut self.head, from_available);
        let entry = self.push(
            EntryKind::Reversed,
            Deltas {
                points_pending: -from_pending,
                points_available: -from_available,
                ..Deltas::default()
            },
        );
        entry.target = Some(earn.id);
        entry.reason = Some(reason.to_string());
        entry.order_id = earn.order_id.clone();
    }

    /// Gives back points of a captured redemption, latest-expiring lots first.
    pub fn reverse_capture(&mut self, capture: &Entry, points: i64, reason: &str) {
        let mut left = points;
        let mut lots = capture.lots.clone();
        lots.sort_by_key(|l| std::cmp::Reverse(l.expires_at.map_or(i64::MAX, |t| t.0)));
        for lot in lots {
            if left == 0 {
                break;
            }
            let give = lot.points.min(left);
            credit_lots(
                &mut self.head,
                Lot {
                    expires_at: lot.expires_at,
                    points: give,
                },
            );
            left -= give;
        }
        if left > 0 {
            credit_lots(
                &mut self.head,
                Lot {
                    expires_at: None,
                    points: left,
                },
            );
        }
        let entry = self.push(
            EntryKind::Reversed,
            Deltas {
                points_available: points,
                ..Deltas::default()
            },
        );
        entry.target = Some(capture.id);
        entry.reason = Some(reason.to_string());
        entry.hold_id = capture.hold_id;
    }

    /// A manual adjustment; a debit never overdraws.
    pub fn adjust(
        &mut self,
        points: i64,
        reason: &str,
        rules: &RuleSet,
    ) -> Result<(), ServiceError> {
        if points > 0 {
            credit_lots(
                &mut self.head,
                Lot {
                    expires_at: rules.expiry_for(self.now),
                    points,
                },
            );
        } else {
            self.take_points(-points)?;
        }
        let entry = self.push(
            EntryKind::Adjusted,
            Deltas {
                points_available: points,
                ..Deltas::default()
            },
        );
        entry.reason = Some(reason.to_string());
        entry.rules_version = Some(rules.version);
        Ok(())
    }

    /// Moves points out to another member (the first step of a transfer).
    pub fn transfer_out(
        &mut self,
        points: i64,
        to: &loyalty_common::ids::MemberId,
    ) -> Result<(), ServiceError> {
        self.take_points(points)?;
        let entry = self.push(
            EntryKind::TransferredOut,
            Deltas {
                points_available: -points,
                ..Deltas::default()
            },
        );
        entry.counterparty = Some(to.clone());
        Ok(())
    }

    /// Receives transferred points (or gets them back when a transfer cannot complete).
    pub fn transfer_in(
        &mut self,
        points: i64,
        from: &loyalty_common::ids::MemberId,
        kind: EntryKind,
        rules: &RuleSet,
    ) {
        credit_lots(
            &mut self.head,
            Lot {
                expires_at: rules.expiry_for(self.now),
                points,
            },
        );
        let entry = self.push(
            kind,
            Deltas {
                points_available: points,
                ..Deltas::default()
            },
        );
        entry.counterparty = Some(from.clone());
        entry.rules_version = Some(rules.version);
    }

    /// Adds paid stored value plus the bonus the rules grant.
    pub fn top_up(&mut self, paid: i64, rules: &RuleSet) {
        let bonus = rules.top_up_bonus(paid);
        let entry = self.push(
            EntryKind::ToppedUp,
            Deltas {
                stored_value: paid,
                bonus_value: bonus,
                ..Deltas::default()
            },
        );
        entry.rules_version = Some(rules.version);
    }

    /// Gives bonus stored value, or takes it back: never more than the wallet holds.
    pub fn adjust_bonus_value(&mut self, amount: i64, reason: &str) -> Result<(), ServiceError> {
        if amount < 0 && self.head.balances.bonus_value < -amount {
            return Err(ServiceError::new(
                ErrorCode::InsufficientStoredValue,
                "not enough bonus stored value to take back",
            ));
        }
        let entry = self.push(
            EntryKind::BonusAdjusted,
            Deltas {
                bonus_value: amount,
                ..Deltas::default()
            },
        );
        entry.reason = Some(reason.to_string());
        Ok(())
    }

    /// Adds a low-balance notice when this write took stored value (paid plus bonus) from at or
    /// above the tenant's threshold to below it: one notice per crossing, not one per write
    /// below it. `before` are the balances the write started from.
    pub fn notice_low_balance(&mut self, before: &Deltas, rules: &RuleSet) {
        let threshold = rules.low_balance_threshold;
        let stored = |d: &Deltas| d.stored_value + d.bonus_value;
        let after = stored(&self.head.balances);
        if threshold <= 0 || stored(before) < threshold || after >= threshold {
            return;
        }
        let cause = self.entries.last().map(|e| e.id);
        let entry = self.push(EntryKind::LowBalance, Deltas::default());
        entry.target = cause;
        entry.rules_version = Some(rules.version);
        entry.reason = Some(format!(
            "stored value {after} is below the low-balance threshold {threshold}"
        ));
    }

    /// Spends stored value, paid value first and bonus after, so refunds of cash stay simple.
    pub fn spend(&mut self, amount: i64, reference: &str) -> Result<(), ServiceError> {
        let paid = self.head.balances.stored_value;
        let bonus = self.head.balances.bonus_value;
        if paid + bonus < amount {
            return Err(ServiceError::new(
                ErrorCode::InsufficientStoredValue,
                "not enough stored value",
            ));
        }
        let from_paid = paid.min(amount);
        let from_bonus = amount - from_paid;
        let entry = self.push(
            EntryKind::Spent,
            Deltas {
                stored_value: -from_paid,
                bonus_value: -from_bonus,
                ..Deltas::default()
            },
        );
        entry.reference = Some(reference.to_string());
        Ok(())
    }

    /// Refunds part of a spend: paid value first, then bonus, never more than the spend took.
    pub fn refund(&mut self, spend: &Entry, paid: i64, bonus: i64) {
        let entry = self.push(
            EntryKind::Refunded,
            Deltas {
                stored_value: paid,
                bonus_value: bonus,
                ..Deltas::default()
            },
        );
        entry.target = Some(spend.id);
    }

    /// Takes points from the earliest-expiring lots, failing without change if there are too few.
    fn take_points(&mut self, points: i64) -> Result<Vec<Lot>, ServiceError> {
        if self.head.balances.points_available < points {
            return Err(ServiceError::new(
                ErrorCode::InsufficientPoints,
                "not enough available points",
            ));
        }
        let mut taken = Vec::new();
        let mut left = points;
        for lot in self.head.lots.iter_mut() {
            if left == 0 {
                break;
            }
            let take = lot.points.min(left);
            lot.points -= take;
            left -= take;
            taken.push(Lot {
                expires_at: lot.expires_at,
                points: take,
            });
        }
        self.head.lots.retain(|l| l.points > 0);
        Ok(taken)
    }
}

/// Adds points to the lot with the same expiry (or a new one), paying debt first.
fn credit_lots(head: &mut WalletHead, lot: Lot) {
    let mut points = lot.points;
    let repay = head.debt.min(points);
    head.debt -= repay;
    points -= repay;
    if points == 0 {
        return;
    }
    match head
        .lots
        .iter_mut()
        .find(|l| l.expires_at == lot.expires_at)
    {
        Some(existing) => existing.points += points,
        None => {
            head.lots.push(Lot {
                expires_at: lot.expires_at,
                points,
            });
            head.lots
                .sort_by_key(|l| l.expires_at.map_or(i64::MAX, |t| t.0));
        }
    }
}

/// Removes points from the latest-expiring lots; what is missing becomes debt.
fn debit_latest_first(head: &mut WalletHead, points: i64) {
    let mut left = points;
    for lot in head.lots.iter_mut().rev() {
        let take = lot.points.min(left);
        lot.points -= take;
        left -= take;
    }
    head.lots.retain(|l| l.points > 0);
    head.debt += left;
}

/// Lots that expire within `days` of now (after due housekeeping), earliest first.
pub fn expiring_within(head: &WalletHead, days: u32, clock: &dyn Clock) -> Vec<Lot> {
    let mut tx = WalletTx::new(head.clone(), clock);
    tx.housekeeping(0);
    let horizon = tx.now.plus_days(i64::from(days));
    tx.head
        .lots
        .into_iter()
        .filter(|l| l.expires_at.is_some_and(|at| at <= horizon))
        .collect()
}

/// Balances as of `now`, including housekeeping that is due but not yet written.
pub fn balance_view(head: &WalletHead, rules: &RuleSet, clock: &dyn Clock) -> BalanceView {
    let mut tx = WalletTx::new(head.clone(), clock);
    // A read: reminders change nothing it shows.
    tx.housekeeping(0);
    let head = tx.head;
    let horizon = tx.now.plus_days(i64::from(rules.expiring_soon_days));
    let soon: Vec<&Lot> = head
        .lots
        .iter()
        .filter(|l| l.expires_at.is_some_and(|at| at <= horizon))
        .collect();
    let stored = head.balances.stored_value + head.balances.bonus_value;
    BalanceView {
        points_available: head.balances.points_available,
        points_pending: head.balances.points_pending,
        points_held: head.balances.points_held,
        expiring_soon_points: soon.iter().map(|l| l.points).sum(),
        expiring_soon_at: soon.iter().filter_map(|l| l.expires_at).min(),
        stored_value: head.balances.stored_value,
        bonus_value: head.balances.bonus_value,
        low_balance: rules.low_balance_threshold > 0 && stored < rules.low_balance_threshold,
        version: head.version,
    }
}

#[cfg(test)]
mod tests;
