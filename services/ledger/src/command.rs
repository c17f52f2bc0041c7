//! Commands on one wallet, already parsed and checked. The fingerprint of a command is what
//! decides whether a reused idempotency key carries "the same body".

use crate::model::{EntryKind, WalletKey};
use crate::rules::Order;
use loyalty_common::ids::{EntryId, HoldId, MemberId};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Command {
    Open,
    Earn {
        order: Order,
    },
    Redeem {
        points: i64,
        reference: String,
    },
    /// A redemption taken at once: held and captured in one write.
    RedeemNow {
        points: i64,
        reference: String,
    },
    Capture {
        hold: HoldId,
    },
    Void {
        hold: HoldId,
    },
    Reverse {
        entry: EntryId,
        points: Option<i64>,
        reason: String,
    },
    Adjust {
        points: i64,
        reason: String,
    },
    TopUp {
        amount: i64,
    },
    AdjustBonusValue {
        amount: i64,
        reason: String,
    },
    Spend {
        amount: i64,
        reference: String,
    },
    Refund {
        spend: EntryId,
        amount: Option<i64>,
    },
    /// Steps of a transfer; only the transfer saga issues these.
    TransferOut {
        points: i64,
        to: MemberId,
    },
    TransferIn {
        points: i64,
        from: MemberId,
        kind: EntryKind,
    },
}

impl Command {
    /// A short name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Open => "open",
            Command::Earn { .. } => "earn",
            Command::Redeem { .. } => "redeem",
            Command::RedeemNow { .. } => "redeem_now",
            Command::Capture { .. } => "capture",
            Command::Void { .. } => "void",
            Command::Reverse { .. } => "reverse",
            Command::Adjust { .. } => "adjust",
            Command::TopUp { .. } => "top_up",
            Command::AdjustBonusValue { .. } => "adjust_bonus_value",
            Command::Spend { .. } => "spend",
            Command::Refund { .. } => "refund",
            Command::TransferOut { .. } => "transfer_out",
            Command::TransferIn { .. } => "transfer_in",
        }
    }
}

/// SHA-256 over the canonical JSON of anything serialisable, hex-encoded.
pub fn fingerprint_of(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// The fingerprint of a command on a wallet.
pub fn fingerprint(wallet: &WalletKey, command: &Command) -> String {
    fingerprint_of(&(wallet, command))
}
