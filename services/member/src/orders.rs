//! Purchase history. An order recorded here counts towards the member's spend (tiers, RFM,
//! segments) and, through the [`LedgerPort`], earns points in the ledger at the member's
//! tier multiplier. An order id is recorded once per tenant: a retry with the same order
//! replays, another order under the same id is refused.

use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};

/// One line of an order, in the tenant's minor currency unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    #[serde(default)]
    pub category: String,
    pub amount: i64,
}

/// A recorded order (or, with a negative total and `refund_of`, a refund).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub member: String,
    /// When the purchase happened.
    pub at: Timestamp,
    /// Whether the till said when (`at`); if not, `at` is when it was recorded, and the
    /// ledger is asked without a time, so a retry later is still the same request.
    pub at_given: bool,
    pub total: i64,
    pub lines: Vec<OrderLine>,
    pub store: Option<String>,
    pub channel: Option<String>,
    /// For a refund: the order it refunds.
    pub refund_of: Option<String>,
    /// Points the ledger credited for it (None: not earned, e.g. a refund or no wallet).
    pub points: Option<i64>,
    pub recorded_at: Timestamp,
}

/// Orders are accepted up to this far in the future (till clocks drift).
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// The largest order total: 10 billion minor units.
const MAX_TOTAL: i64 = 10_000_000_000;

fn id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Order {
    /// Checks an order before it is recorded; the error names the field.
    pub fn validate(&self, now: Timestamp) -> ServiceResult<()> {
        let bad = |m: String| Err(ServiceError::invalid(m));
        if !id_ok(&self.order_id) {
            return bad("order_id must be 1 to 64 letters, digits, '-', '_' or '.'".into());
        }
        if self.total.unsigned_abs() > MAX_TOTAL.unsigned_abs() {
            return bad(format!("total must be within ±{MAX_TOTAL}"));
        }
        match (&self.refund_of, self.total) {
            (None, t) if t < 0 => {
                return bad("a negative total is a refund: give refund_of".into());
            }
            (Some(_), t) if t > 0 => return bad("a refund's total must not be positive".into()),
            (Some(of), _) if !id_ok(of) || *of == self.order_id => {
                return bad("refund_of must name another order".into());
            }
            _ => {}
        }
        if self.lines.len() > 500 {
            return bad("an order has at most 500 lines".into());
        }
        for (i, line) in self.lines.iter().enumerate() {
            if line.sku.is_empty() || line.sku.len() > 64 || line.category.len() > 64 {
                return bad(format!(
                    "lines[{i}]: sku must be 1 to 64 characters, category at most 64"
                ));
            }
            if line.amount.unsigned_abs() > MAX_TOTAL.unsigned_abs() {
                return bad(format!("lines[{i}]: amount must be within ±{MAX_TOTAL}"));
            }
        }
        if !self.lines.is_empty() {
            // Each line is within ±MAX_TOTAL and there are at most 500: no overflow.
            let sum: i64 = self.lines.iter().map(|l| l.amount).sum();
            if sum != self.total {
                return bad(format!(
                    "the lines add up to {sum}, not the total {}",
                    self.total
                ));
            }
        }
        if self.at.0 > now.0 + MAX_FUTURE_MS {
            return bad("at is in the future".into());
        }
        Ok(())
    }

    /// The same purchase as `other`, apart from what recording adds.
    pub fn same_purchase(&self, other: &Order) -> bool {
        self.order_id == other.order_id
            && self.member == other.member
            && self.at == other.at
            && self.total == other.total
            && self.lines == other.lines
            && self.store == other.store
            && self.channel == other.channel
            && self.refund_of == other.refund_of
    }
}

/// What the member service asks of the ledger. Earning uses the order id as the
/// idempotency key, so earning again after a crash credits nothing twice.
#[async_trait]
pub trait LedgerPort: Send + Sync + 'static {
    /// The points credited, or None if the member has no wallet.
    async fn earn(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        order: &Order,
        tier_multiplier_bp: u32,
    ) -> ServiceResult<Option<i64>>;

    /// The member's available points (for tiers measured in points); None without a wallet.
    async fn points(&self, tenant: &TenantId, member: &MemberId) -> ServiceResult<Option<i64>>;

    /// Moves `points` from one member's wallet to another's (opening it if need be), once
    /// per `key`; an error if the transfer did not complete.
    async fn transfer(
        &self,
        tenant: &TenantId,
        from: &MemberId,
        to: &MemberId,
        points: i64,
        key: &str,
    ) -> ServiceResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(total: i64) -> Order {
        Order {
            order_id: "POS-1".into(),
            member: "m1".into(),
            at: Timestamp(1_000),
            at_given: true,
            total,
            lines: vec![],
            store: None,
            channel: None,
            refund_of: None,
            points: None,
            recorded_at: Timestamp(1_000),
        }
    }

    #[test]
    fn orders_are_checked_field_by_field() {
        let now = Timestamp(2_000);
        assert!(order(100).validate(now).is_ok());
        assert!(order(-100).validate(now).is_err());
        let mut refund = order(-100);
        refund.order_id = "POS-2".into();
        refund.refund_of = Some("POS-1".into());
        assert!(refund.validate(now).is_ok());
        let mut lines = order(100);
        lines.lines = vec![OrderLine {
            sku: "A".into(),
            category: String::new(),
            amount: 60,
        }];
        let err = lines.validate(now).unwrap_err();
        assert!(err.message.contains("add up"), "{}", err.message);
        let mut bad_id = order(1);
        bad_id.order_id = "has space".into();
        assert!(bad_id.validate(now).is_err());
        let mut huge = order(i64::MIN);
        huge.order_id = "POS-3".into();
        huge.refund_of = Some("POS-1".into());
        assert!(
            huge.validate(now).is_err(),
            "i64::MIN is out of range, not its own abs"
        );
        let mut future = order(1);
        future.at = Timestamp(now.0 + MAX_FUTURE_MS + 1);
        assert!(future.validate(now).is_err());
    }
}
