//! Lucky draws: a member pays the draw's cost in points for one entry, and the entry's roll
//! decides a prize by the stated odds (parts per million; what is left is no prize). A prize
//! whose stock is gone, or a points prize past the draw's budget, gives no prize instead,
//! and the entry records what it drew and why it got what it got.
//!
//! Rolls are committed before the first entry: each draw has a secret seed whose SHA-256 is
//! published when it is created; an entry's roll is the SHA-256 of the seed and the entry's
//! id, reduced to parts per million. Once the draw has ended the seed is published, and
//! anyone can recompute every roll and check every outcome against the odds.

pub mod entry;

use crate::mall::{MemberLimit, Period};
use crate::template::{check_name, invalid};
use loyalty_common::error::ServiceResult;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Odds are stated in parts of this.
pub const ODDS_SCALE: u32 = 1_000_000;
/// Most prizes in a draw.
const MAX_PRIZES: usize = 64;

/// What a prize is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PrizeKind {
    /// Points paid into the member's wallet; counts against the draw's budget.
    Points { points: i64 },
    /// A coupon of one of the tenant's templates, issued to the member.
    Coupon { template: String },
    /// Goods the tenant hands over (its SKU), announced for the ERP to fulfil.
    Gift { sku: String },
}

/// One prize of a draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prize {
    pub id: String,
    pub kind: PrizeKind,
    /// Its chance per entry, in parts per million.
    pub odds_ppm: u32,
    /// Units that may be won; None: no limit.
    #[serde(default)]
    pub stock: Option<u64>,
}

/// A lucky draw as head office sets it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LuckyDraw {
    pub id: String,
    pub name: String,
    /// Points one entry costs.
    pub cost_points: i64,
    pub prizes: Vec<Prize>,
    /// Entries per member per period; None: no limit.
    #[serde(default)]
    pub limit: Option<MemberLimit>,
    /// The most points its points prizes may pay in all; None: no limit.
    #[serde(default)]
    pub budget_points: Option<i64>,
    pub starts_ms: i64,
    #[serde(default)]
    pub ends_ms: Option<i64>,
    /// The IANA time zone whose calendar the limit's periods follow.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

impl LuckyDraw {
    /// Refuses a draw that cannot run, naming the field.
    pub fn validate(&self) -> ServiceResult<()> {
        crate::code::check_id("id", &self.id)?;
        check_name("name", &self.name)?;
        if self.cost_points < 0 {
            return Err(invalid("cost_points", "must not be negative"));
        }
        if self.prizes.is_empty() || self.prizes.len() > MAX_PRIZES {
            return Err(invalid("prizes", &format!("1 to {MAX_PRIZES} prizes")));
        }
        let mut total: u64 = 0;
        let mut seen = std::collections::BTreeSet::new();
        for (n, prize) in self.prizes.iter().enumerate() {
            let field = format!("prizes[{n}]");
            crate::code::check_id(&format!("{field}.id"), &prize.id)?;
            if !seen.insert(&prize.id) {
                return Err(invalid(&format!("{field}.id"), "is another prize's id"));
            }
            match &prize.kind {
                PrizeKind::Points { points } if *points <= 0 => {
                    return Err(invalid(&format!("{field}.points"), "must be more than 0"));
                }
                PrizeKind::Coupon { template } => {
                    crate::code::check_id(&format!("{field}.template"), template)?
                }
                PrizeKind::Gift { sku } => check_name(&format!("{field}.sku"), sku)?,
                PrizeKind::Points { .. } => {}
            }
            if prize.odds_ppm == 0 {
                return Err(invalid(&format!("{field}.odds_ppm"), "must be more than 0"));
            }
            total += u64::from(prize.odds_ppm);
        }
        if total > u64::from(ODDS_SCALE) {
            return Err(invalid(
                "prizes",
                &format!("the odds add up to {total} ppm, more than {ODDS_SCALE}"),
            ));
        }
        if self.budget_points.is_some_and(|b| b < 0) {
            return Err(invalid("budget_points", "must not be negative"));
        }
        if self.limit.is_some_and(|l| l.count == 0) {
            return Err(invalid("limit.count", "must be at least 1"));
        }
        if self.ends_ms.is_some_and(|end| end <= self.starts_ms) {
            return Err(invalid("ends_ms", "must be after starts_ms"));
        }
        self.time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| invalid("time_zone", "must be an IANA time zone, e.g. Asia/Shanghai"))?;
        Ok(())
    }

    pub fn open_at(&self, now_ms: i64) -> bool {
        now_ms >= self.starts_ms && self.ends_ms.is_none_or(|end| now_ms < end)
    }

    /// The prize the odds give `roll` (0 to [`ODDS_SCALE`] − 1): each prize takes the next
    /// `odds_ppm` rolls in the order the prizes are listed; the rest win nothing.
    pub fn by_odds(&self, roll: u32) -> Option<&Prize> {
        let mut upper: u64 = 0;
        for prize in &self.prizes {
            upper += u64::from(prize.odds_ppm);
            if u64::from(roll) < upper {
                return Some(prize);
            }
        }
        None
    }

    /// The limit's period as a key, like the mall's.
    pub fn period(&self) -> Option<Period> {
        self.limit.map(|l| l.period)
    }
}

/// A draw with what it has awarded, and its seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawState {
    pub draw: LuckyDraw,
    /// Units won per prize (entries that are paid or waiting to be).
    pub awarded: BTreeMap<String, u64>,
    /// Points its points prizes have paid or will pay.
    pub points_awarded: i64,
    /// The secret (hex) the rolls are made from; published once the draw has ended.
    pub seed: String,
    /// Its SHA-256 (hex), published from the start.
    pub seed_sha256: String,
}

/// What an entry's roll gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The prize the odds gave, if any.
    pub drawn: Option<String>,
    /// The prize won: the one drawn, unless its stock or the budget is gone.
    pub prize: Option<String>,
    /// Why the prize drawn was not won.
    pub reason: Option<String>,
}

impl DrawState {
    /// A new draw's state with a fresh secret seed.
    pub fn new(draw: LuckyDraw) -> Self {
        let seed = hex::encode(rand::random::<[u8; 32]>());
        let seed_sha256 = hex::encode(Sha256::digest(seed.as_bytes()));
        Self {
            draw,
            awarded: BTreeMap::new(),
            points_awarded: 0,
            seed,
            seed_sha256,
        }
    }

    /// The roll of entry `entry` (0 to [`ODDS_SCALE`] − 1).
    pub fn roll(&self, entry: &str) -> u32 {
        roll_of(&self.seed, entry)
    }

    /// What `roll` wins now, given the stock and the budget left.
    pub fn outcome(&self, roll: u32) -> Outcome {
        let Some(prize) = self.draw.by_odds(roll) else {
            return Outcome {
                drawn: None,
                prize: None,
                reason: None,
            };
        };
        let won = self.awarded.get(&prize.id).copied().unwrap_or(0);
        let reason = if prize.stock.is_some_and(|stock| won >= stock) {
            Some("out of stock")
        } else if let (PrizeKind::Points { points }, Some(budget)) =
            (&prize.kind, self.draw.budget_points)
            && self.points_awarded + points > budget
        {
            Some("over the draw's budget")
        } else {
            None
        };
        Outcome {
            drawn: Some(prize.id.clone()),
            prize: reason.is_none().then(|| prize.id.clone()),
            reason: reason.map(String::from),
        }
    }

    /// Counts `prize` as won (`up`) or given back.
    pub fn count(&mut self, prize: &str, up: bool) {
        let points = self
            .draw
            .prizes
            .iter()
            .find(|p| p.id == prize)
            .and_then(|p| match p.kind {
                PrizeKind::Points { points } => Some(points),
                _ => None,
            })
            .unwrap_or(0);
        let won = self.awarded.entry(prize.to_string()).or_default();
        if up {
            *won = won.saturating_add(1);
            self.points_awarded += points;
        } else {
            *won = won.saturating_sub(1);
            self.points_awarded -= points;
        }
    }
}

/// The roll the seed `seed` gives entry `entry`: anyone holding the published seed can
/// recompute it.
pub fn roll_of(seed: &str, entry: &str) -> u32 {
    let digest = Sha256::digest(format!("{seed}\n{entry}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 2^64 is not a multiple of a million: the bias is below one in 10^13.
    (u64::from_be_bytes(first) % u64::from(ODDS_SCALE)) as u32
}

#[cfg(test)]
mod tests;
