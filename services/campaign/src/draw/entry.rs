//! A member's entry into a draw, keyed by the caller's idempotency key. It is written with
//! its outcome (`drawn`), taking its prize's unit and the member's limit at once; then its
//! cost is taken from the member's points (`paid`), and its prize is delivered. Points the
//! ledger refuses void it, giving the prize and the limit back.

use super::Outcome;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Written with its outcome; its cost is being taken.
    Drawn,
    /// Its cost is taken; its prize is the member's.
    Paid,
    /// Its cost could not be taken: nothing was won.
    Voided,
}

impl EntryState {
    pub fn label(self) -> &'static str {
        match self {
            EntryState::Drawn => "drawn",
            EntryState::Paid => "paid",
            EntryState::Voided => "voided",
        }
    }

    /// Whether it holds its prize and a unit of the member's limit.
    pub fn counts(self) -> bool {
        matches!(self, EntryState::Drawn | EntryState::Paid)
    }
}

/// One entry, with what decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub tenant: String,
    pub draw: String,
    pub member: String,
    /// The limit period it counts in.
    pub period: String,
    /// The roll (0 to 999,999) its id and the draw's seed give.
    pub roll: u32,
    pub outcome: Outcome,
    pub cost_points: i64,
    pub state: EntryState,
    /// The ledger hold its cost was taken through.
    pub hold_id: Option<String>,
    /// The coupon a coupon prize issued.
    pub coupon: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// When the sweep looks at it, while it is drawn and not paid.
    pub due_ms: Option<i64>,
}
