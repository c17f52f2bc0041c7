//! Bonuses paid through the ledger: a reader of the campaign store's own outbox pays each
//! coupon's `bonus_points` and `stored_value` (bonus stored value) when its redemption is
//! `coupon_redeemed`, and takes them back when it is `coupon_redemption_undone`. Every payment is an `Adjust` keyed by a hash of
//! the redemption and the code, so a page read twice (a crash before the position was saved, two
//! replicas reading at once) pays once; the position moves only once a page is paid.
//!
//! A till never waits on the ledger for a coupon: the points follow within a sweep.

use super::Campaigns;
use crate::coupon::RedeemedCoupon;
use crate::events::CampaignEvent;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_ledger::client::LedgerClient;
use loyalty_proto::ledger::v1 as ledger_pb;
use serde::Deserialize;

/// The outbox reader's name in the store's positions.
pub const READER: &str = "bonus-payouts";

/// The part of a redemption's event a payout reads.
#[derive(Deserialize)]
struct RedemptionData {
    redemption: String,
    coupons: Vec<RedeemedCoupon>,
}

/// What one payout did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    /// Adjustments the ledger applied (or had applied: a replay counts too).
    pub adjustments: u64,
    /// Points paid, net of points taken back.
    pub points: i64,
    /// Bonus stored value paid (minor units), net of what was taken back.
    pub stored_value: i64,
}

impl std::ops::AddAssign for Paid {
    fn add_assign(&mut self, other: Paid) {
        self.adjustments += other.adjustments;
        self.points += other.points;
        self.stored_value += other.stored_value;
    }
}

impl Campaigns {
    /// Pays the bonus points of every redemption event since the last call; what it paid.
    /// Without a ledger client (a store-only tool) it pays nothing and reads nothing.
    pub async fn pay_out(&self) -> ServiceResult<Paid> {
        let Some(ledger) = &self.ledger else {
            return Ok(Paid::default());
        };
        let ledger = ledger.as_ref();
        self.read_outbox(READER, |event| async move {
            let mut paid = Paid::default();
            pay(ledger, &event, &mut paid).await?;
            Ok(paid)
        })
        .await
    }
}

/// What a coupon's bonus is paid in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bonus {
    Points,
    /// Bonus stored value (minor units), given without a payment.
    StoredValue,
}

impl Bonus {
    fn name(self) -> &'static str {
        match self {
            Bonus::Points => "bonus",
            Bonus::StoredValue => "stored-value bonus",
        }
    }

    /// The ledger's refusal of a debit past what the wallet holds.
    fn short(self) -> ErrorCode {
        match self {
            Bonus::Points => ErrorCode::InsufficientPoints,
            Bonus::StoredValue => ErrorCode::InsufficientStoredValue,
        }
    }
}

/// Pays (or takes back) the bonus points and bonus stored value of one event; other events
/// pass.
async fn pay(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    paid: &mut Paid,
) -> ServiceResult<()> {
    let sign = match event.name.as_str() {
        "coupon_redeemed" => 1,
        "coupon_redemption_undone" => -1,
        _ => return Ok(()),
    };
    // Written by this service: a payload it cannot read is a bug, not a reason to stop paying.
    let Ok(data) = serde_json::from_str::<RedemptionData>(&event.data) else {
        tracing::error!(event = %event.id, "a redemption event without its coupons: no bonus paid");
        return Ok(());
    };
    for coupon in &data.coupons {
        for (bonus, amount) in [
            (Bonus::Points, coupon.bonus_points),
            (Bonus::StoredValue, coupon.stored_value),
        ] {
            if amount > 0 {
                pay_one(
                    ledger,
                    event,
                    (&data.redemption, coupon),
                    bonus,
                    sign * amount,
                    paid,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Pays one coupon's bonus (`amount` signed: negative takes it back on a return).
async fn pay_one(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    (redemption, coupon): (&str, &RedeemedCoupon),
    bonus: Bonus,
    amount: i64,
    paid: &mut Paid,
) -> ServiceResult<()> {
    let (verb, reason) = match amount > 0 {
        true => (
            "paid",
            format!("{} of coupon {}", bonus.name(), coupon.code),
        ),
        false => ("undone", format!("coupon {} returned", coupon.code)),
    };
    // Points keep the keys they always had; stored value has keys of its own.
    let verb = match bonus {
        Bonus::Points => verb.to_string(),
        Bonus::StoredValue => format!("sv-{verb}"),
    };
    let key = payout_key(&verb, redemption, &coupon.code);
    match adjust(ledger, event, bonus, &key, amount, &reason).await {
        Ok(()) => paid.count(bonus, amount),
        Err(e) if e.code == bonus.short() => {
            // Spent already: take back what is left, under a key of its own.
            let left = available(ledger, event, bonus).await?.min(-amount);
            if left > 0 {
                let partial = format!("{key}-partial");
                adjust(ledger, event, bonus, &partial, -left, &reason).await?;
                paid.count(bonus, -left);
            }
            tracing::warn!(%redemption, code = %coupon.code, bonus = bonus.name(),
                short = -amount - left,
                "a returned coupon's bonus was spent: took back what was left");
        }
        Err(e) if !is_final(e.code) => return Err(e),
        Err(e) => {
            // The wallet is gone (an erased member) or never was: nothing to pay into,
            // and trying again will not change that.
            tracing::warn!(%redemption, code = %coupon.code, error = %e.message,
                "a coupon bonus the ledger refused: skipped");
        }
    }
    Ok(())
}

impl Paid {
    fn count(&mut self, bonus: Bonus, amount: i64) {
        self.adjustments += 1;
        match bonus {
            Bonus::Points => self.points += amount,
            Bonus::StoredValue => self.stored_value += amount,
        }
    }
}

async fn adjust(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    bonus: Bonus,
    key: &str,
    amount: i64,
    reason: &str,
) -> ServiceResult<()> {
    match bonus {
        Bonus::Points => {
            // A member the ledger has no wallet for yet: the bonus opens it.
            let adjust = ledger_pb::AdjustRequest {
                wallet: Some(wallet(event)),
                idempotency_key: key.to_string(),
                points: amount,
                reason: reason.to_string(),
            };
            super::adjust_opening(ledger, adjust).await.map(|_| ())
        }
        Bonus::StoredValue => {
            let adjust = ledger_pb::AdjustBonusValueRequest {
                wallet: Some(wallet(event)),
                idempotency_key: key.to_string(),
                amount,
                reason: reason.to_string(),
            };
            super::adjust_bonus_opening(ledger, adjust)
                .await
                .map(|_| ())
        }
    }
}

async fn available(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    bonus: Bonus,
) -> ServiceResult<i64> {
    let balance = ledger.get_balance(wallet(event)).await?;
    Ok(match bonus {
        Bonus::Points => balance.points_available,
        Bonus::StoredValue => balance.bonus_value,
    })
}

/// A ledger idempotency key for one payment: the ledger takes only a few characters, and
/// redemption ids and codes may hold others, so the parts are hashed.
fn payout_key(what: &str, a: &str, b: &str) -> String {
    format!("coupon-bonus-{what}-{}", super::short_key(&[a, b]))
}

fn wallet(event: &CampaignEvent) -> ledger_pb::WalletRef {
    ledger_pb::WalletRef {
        tenant_id: event.tenant.clone(),
        member_id: event.member.clone(),
    }
}

/// Refusals that trying again cannot change: the payment is skipped. Anything else (the
/// ledger unavailable, a caller not yet allowed) stops the payout to be tried again, so a
/// misconfiguration delays bonuses instead of losing them.
fn is_final(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::WalletNotFound
            | ErrorCode::MemberErased
            | ErrorCode::MemberMerged
            | ErrorCode::AmountOverflow
            | ErrorCode::InvalidArgument
            | ErrorCode::IdempotencyConflict
    )
}
