//! Referrals: a member shares a referral code; a new member who gives it is the referee of
//! the code's holder in a referral campaign; when the referee's first order of at least the
//! campaign's minimum is recorded, both are rewarded (the referrer only up to the
//! campaign's cap per referrer); when that order is refunded within the returns window, both
//! rewards are taken back.
//!
//! A referral code is a generated code with the `R` prefix ([`crate::code`]): unguessable
//! only so that codes cannot be farmed by enumeration; it is meant to be shared. A member
//! cannot refer itself: not under its own id, nor under another member that presents a
//! phone, email or ID number (their blind indexes, as the member service keys them) the
//! referrer presented before.

use serde::{Deserialize, Serialize};

/// The prefix of referral codes, which tells them from coupon codes at a glance.
pub const CODE_PREFIX: &str = "R";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralState {
    /// Recorded; waiting for the referee's first qualifying order.
    Pending,
    /// The referee's first qualifying order was recorded: both rewarded.
    Qualified,
    /// That order was refunded within the returns window: both rewards taken back.
    Reversed,
}

/// One referee's referral in one campaign. (Stored in postcard, which keeps every field.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub tenant: String,
    pub campaign: String,
    pub referrer: String,
    pub referee: String,
    pub code: String,
    pub state: ReferralState,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The qualifying order, and when it happened.
    pub order: Option<String>,
    pub order_ms: Option<i64>,
    /// False when the referrer had reached the campaign's cap: only the referee is rewarded.
    pub referrer_rewarded: bool,
    /// Points a reversal takes back from the referrer and the referee: their rewards, or
    /// what was left of them in their wallets when it was decided.
    pub taken_back: [i64; 2],
}

impl Referral {
    /// Qualifies a pending referral by `order` at `at_ms`, rewarding the referrer if its
    /// `counted` rewarded referrals are under `cap`; the referrer's count after. Both stores
    /// move a referral with this, in the write that stores the count.
    pub fn qualify(
        &mut self,
        (order, order_ms): (&str, i64),
        cap: Option<u32>,
        at_ms: i64,
        counted: u32,
    ) -> u32 {
        self.referrer_rewarded = cap.is_none_or(|cap| counted < cap);
        self.state = ReferralState::Qualified;
        (self.order, self.order_ms, self.updated_ms) =
            (Some(order.to_string()), Some(order_ms), at_ms);
        counted + u32::from(self.referrer_rewarded)
    }

    /// Reverses a qualified referral, taking back `taken_back`, and gives the referrer's
    /// place under the cap back; the referrer's count after.
    pub fn reverse(&mut self, taken_back: [i64; 2], at_ms: i64, counted: u32) -> u32 {
        (self.state, self.updated_ms, self.taken_back) =
            (ReferralState::Reversed, at_ms, taken_back);
        counted.saturating_sub(u32::from(self.referrer_rewarded))
    }
}

/// How a new referral ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referred {
    Yes,
    /// The referee has a referral in this campaign already (the stored one).
    Exists(Box<Referral>),
}

/// How a change of a referral's state ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferralMoved {
    /// Moved: the referral as it is now.
    Yes(Box<Referral>),
    /// Not in the state the change starts from: the referral as it is.
    NotFrom(Box<Referral>),
    Missing,
}
