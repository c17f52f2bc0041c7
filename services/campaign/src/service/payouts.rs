//! Bonus points paid through the ledger: a reader of the campaign store's own outbox pays
//! each coupon's `bonus_points` when its redemption is `coupon_redeemed`, and takes them back
//! when it is `coupon_redemption_undone`. Every payment is an `Adjust` keyed by a hash of
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
/// Events read per store call.
const PAGE: usize = 500;

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
}

impl Campaigns {
    /// Pays the bonus points of every redemption event since the last call; what it paid.
    /// Without a ledger client (a store-only tool) it pays nothing and reads nothing.
    pub async fn pay_out(&self) -> ServiceResult<Paid> {
        let Some(ledger) = &self.ledger else {
            return Ok(Paid::default());
        };
        let mut paid = Paid::default();
        loop {
            let from = self.store.position(READER).await?;
            let page = self.store.events_after(from, PAGE).await?;
            let Some(last) = page.last().map(|l| l.seq) else {
                return Ok(paid);
            };
            for logged in &page {
                pay(ledger.as_ref(), &logged.event, &mut paid).await?;
            }
            self.store.save_position(READER, last).await?;
            if page.len() < PAGE {
                return Ok(paid);
            }
        }
    }
}

/// Pays (or takes back) the bonus points of one event; other events pass.
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
    for coupon in data.coupons.iter().filter(|c| c.bonus_points > 0) {
        let points = sign * coupon.bonus_points;
        let (verb, reason) = match sign {
            1 => ("paid", format!("bonus of coupon {}", coupon.code)),
            _ => ("undone", format!("coupon {} returned", coupon.code)),
        };
        let key = payout_key(verb, &data.redemption, &coupon.code);
        match adjust(ledger, event, &key, points, &reason).await {
            Ok(()) => {
                paid.adjustments += 1;
                paid.points += points;
            }
            Err(e) if e.code == ErrorCode::InsufficientPoints => {
                // Spent already: take back what is left, under a key of its own.
                let left = available(ledger, event).await?.min(coupon.bonus_points);
                if left > 0 {
                    adjust(ledger, event, &format!("{key}-partial"), -left, &reason).await?;
                    paid.adjustments += 1;
                    paid.points -= left;
                }
                tracing::warn!(redemption = %data.redemption, code = %coupon.code,
                    short = coupon.bonus_points - left,
                    "a returned coupon's bonus was spent: took back what was left");
            }
            Err(e) if !is_final(e.code) => return Err(e),
            Err(e) => {
                // The wallet is gone (an erased member) or never was: nothing to pay into,
                // and trying again will not change that.
                tracing::warn!(redemption = %data.redemption, code = %coupon.code,
                    error = %e.message, "a coupon bonus the ledger refused: skipped");
            }
        }
    }
    Ok(())
}

async fn adjust(
    ledger: &dyn LedgerClient,
    event: &CampaignEvent,
    key: &str,
    points: i64,
    reason: &str,
) -> ServiceResult<()> {
    // A member the ledger has no wallet for yet: the bonus opens it.
    let adjust = ledger_pb::AdjustRequest {
        wallet: Some(wallet(event)),
        idempotency_key: key.to_string(),
        points,
        reason: reason.to_string(),
    };
    super::adjust_opening(ledger, adjust).await.map(|_| ())
}

async fn available(ledger: &dyn LedgerClient, event: &CampaignEvent) -> ServiceResult<i64> {
    Ok(ledger.get_balance(wallet(event)).await?.points_available)
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
