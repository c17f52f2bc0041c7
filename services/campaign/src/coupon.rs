//! Coupons (codes issued from a template) and redemptions (a cart's use of coupons, held at
//! checkout or redeemed, then perhaps given back).

use serde::{Deserialize, Serialize};

/// One code of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    /// Normalized: upper case, no separators ([`crate::code::normalize`]).
    pub code: String,
    pub template: String,
    /// Its holder: only this member can use it. None: whoever presents it (a printed code);
    /// the template's per-member limit still counts by the member id of the cart.
    pub member: Option<String>,
    pub issued_ms: i64,
    pub valid_from_ms: i64,
    /// Exclusive.
    pub valid_until_ms: i64,
    /// The batch that generated or imported it, if any.
    pub batch: Option<String>,
}

/// How often a coupon, its holder and its template have been used (held or redeemed, less
/// what was given back), as the limits count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub code_uses: u32,
    pub member_uses: u32,
    pub total_uses: u64,
}

/// Where a redemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionState {
    /// Reserved at checkout until `hold_until_ms`: counted by the limits, not yet paid.
    Held,
    Redeemed,
    /// A hold that was released, failed or timed out: its uses given back.
    Released,
    /// A redemption undone on a return: its uses given back, once.
    Undone,
}

impl RedemptionState {
    pub fn label(self) -> &'static str {
        match self {
            RedemptionState::Held => "held",
            RedemptionState::Redeemed => "redeemed",
            RedemptionState::Released => "released",
            RedemptionState::Undone => "undone",
        }
    }

    /// Whether its uses count against the limits.
    pub fn counts(self) -> bool {
        matches!(self, RedemptionState::Held | RedemptionState::Redeemed)
    }
}

/// One coupon's part in a redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemedCoupon {
    pub code: String,
    pub template: String,
    pub discount: i64,
    pub bonus_points: i64,
    pub stored_value: i64,
}

/// A cart's use of coupons, keyed by the caller's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub id: String,
    pub tenant: String,
    pub member: String,
    pub order_id: String,
    pub store: String,
    pub coupons: Vec<RedeemedCoupon>,
    pub state: RedemptionState,
    pub created_ms: i64,
    /// When a hold lapses (Held only).
    pub hold_until_ms: Option<i64>,
    pub updated_ms: i64,
    /// A digest of the request, so a key reused with another cart is refused.
    pub request_digest: String,
}

impl Redemption {
    pub fn discount(&self) -> i64 {
        self.coupons.iter().map(|c| c.discount).sum()
    }
}
