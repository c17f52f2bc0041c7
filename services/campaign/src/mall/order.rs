//! A member's order in the points mall, keyed by the caller's idempotency key. It holds one
//! unit of its item's stock and counts against the member's limit from the moment it is
//! written (`pending`), holds its points in the ledger once `placed`, and has them taken when
//! `confirmed`; a physical item is then made `ready` for pick-up (with a one-time code) or
//! delivered, and `fulfilled`. Failing, lapsing, cancelling or returning gives the unit and
//! the points back, once.

use super::{Fulfilment, Price};
use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// The unit is reserved; the points are being held (the saga's first step).
    Pending,
    /// The unit is reserved and the points held, until the member confirms or the hold lapses.
    Placed,
    /// The points are taken; the unit is the member's.
    Confirmed,
    /// Waiting at the store for the member, who shows a one-time code.
    Ready,
    /// Handed over, delivered, issued or booked.
    Fulfilled,
    /// The points could not be held: nothing was taken.
    Failed,
    /// Not confirmed in time: unit and points given back.
    Lapsed,
    /// Cancelled before it was fulfilled: unit and points given back.
    Cancelled,
    /// Returned after it was fulfilled: unit and points given back.
    Returned,
}

impl OrderState {
    pub fn label(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Placed => "placed",
            OrderState::Confirmed => "confirmed",
            OrderState::Ready => "ready",
            OrderState::Fulfilled => "fulfilled",
            OrderState::Failed => "failed",
            OrderState::Lapsed => "lapsed",
            OrderState::Cancelled => "cancelled",
            OrderState::Returned => "returned",
        }
    }

    /// Whether it takes a unit of stock and one of the member's limit.
    pub fn counts(self) -> bool {
        matches!(
            self,
            OrderState::Pending
                | OrderState::Placed
                | OrderState::Confirmed
                | OrderState::Ready
                | OrderState::Fulfilled
        )
    }

    /// Whether the points are taken (captured) in this state.
    pub fn paid(self) -> bool {
        matches!(
            self,
            OrderState::Confirmed | OrderState::Ready | OrderState::Fulfilled
        )
    }
}

/// A member's order of one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub tenant: String,
    pub item: String,
    pub member: String,
    /// The stock it takes its unit from (a store, or the central stock).
    pub stock: String,
    /// The store it was ordered for (pick-up), if any.
    pub store: Option<String>,
    /// The limit period it counts in (`2026-12` for a monthly limit, `ever`).
    pub period: String,
    pub price: Price,
    pub fulfilment: Option<Fulfilment>,
    pub state: OrderState,
    /// The ledger's hold on its points, once placed.
    pub hold_id: Option<String>,
    /// The ledger entry that took its points, once confirmed (a return reverses it).
    pub paid_entry: Option<String>,
    /// The SHA-256 (hex) of the one-time pick-up code, once ready.
    pub pickup_code_sha256: Option<String>,
    /// The coupon issued for a coupon item, once confirmed.
    pub coupon: Option<String>,
    /// The bonus stored value a stored-value item credits (minor units), once confirmed: the
    /// outbox's reader credits it from the `mall_order_fulfilled` event.
    pub credit: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// When the sweep next looks at it: a pending order's recovery, a placed one's lapse.
    pub due_ms: Option<i64>,
}

impl Order {
    /// The order after moving to `to` at `at_ms`, due again at `due_ms`.
    pub fn moved(&self, to: OrderState, at_ms: i64, due_ms: Option<i64>) -> Order {
        Order {
            state: to,
            updated_ms: at_ms,
            due_ms,
            ..self.clone()
        }
    }
}
