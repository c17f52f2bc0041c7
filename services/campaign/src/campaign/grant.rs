//! A grant: one reward of a campaign to one member, under a key that makes it once per
//! member and period (a trigger's key, or the campaign's broadcast key). It is reserved
//! first (its units held from the budget, its place taken under the member's cap), then
//! confirmed once the reward was paid or released if it could not be, which gives both back.
//! A member the holdout keeps out gets a grant too, held out at once: nothing paid, no
//! budget or cap taken, but the assignment kept, published and counted in the results.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Reserved,
    Confirmed,
    Released,
    /// The member is in the holdout: written so, never paid.
    HeldOut,
}

impl GrantState {
    pub fn label(self) -> &'static str {
        match self {
            GrantState::Reserved => "reserved",
            GrantState::Confirmed => "confirmed",
            GrantState::Released => "released",
            GrantState::HeldOut => "held_out",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub tenant: String,
    pub campaign: String,
    /// The caller's idempotency key: one grant per key.
    pub key: String,
    pub member: String,
    pub variant: String,
    /// Budget units it takes.
    pub units: u64,
    /// The cap's period this grant counts in (`all`, or the local day the period starts).
    pub period: String,
    pub state: GrantState,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// What paid it: the coupon's code, or the ledger entry's id. (Stored in postcard,
    /// which keeps every field: no skipping here.)
    pub paid_with: Option<String>,
}
