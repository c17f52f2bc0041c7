//! Per-tenant earning rules, stored and versioned. Every entry records the version that produced it.

use chrono::{Datelike, Months, NaiveDate, TimeZone, Utc};
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};

/// Basis points: 10,000 = 1x.
pub const ONE_X: u32 = 10_000;
const MAX_MULTIPLIER_BP: u32 = 100 * ONE_X;
/// The largest tier multiplier an order may carry (10x, as the member service's tiers allow).
pub const MAX_TIER_MULTIPLIER_BP: u32 = 10 * ONE_X;

/// When earned points expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum ExpiryPolicy {
    Never,
    /// Each lot expires N months after it was earned, at the end of that UTC day.
    RollingMonths {
        months: u32,
    },
    /// Every lot expires at the end of the next such date (UTC).
    FixedYearly {
        month: u32,
        day: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryMultiplier {
    pub category: String,
    pub multiplier_bp: u32,
}

/// A promotion window such as double points; when several apply, the largest multiplier wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub name: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub multiplier_bp: u32,
    /// Empty means every category.
    pub categories: Vec<String>,
}

/// Pay at least `min_paid`, get `bonus` stored value; the largest qualifying bonus applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpBonus {
    pub min_paid: i64,
    pub bonus: i64,
}

/// A tenant's rule set at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// 0 is the built-in default used until a tenant stores its own.
    pub version: u64,
    pub points_per_unit: i64,
    pub unit_minor: i64,
    pub categories: Vec<CategoryMultiplier>,
    pub promotions: Vec<Promotion>,
    pub per_order_cap: i64,
    pub per_day_cap: i64,
    pub lock_days: u32,
    pub expiry: ExpiryPolicy,
    pub hold_ttl_secs: u32,
    pub top_up_bonuses: Vec<TopUpBonus>,
    pub low_balance_threshold: i64,
    pub expiring_soon_days: u32,
}

impl Default for RuleSet {
    /// One point per currency unit of 100 minor units, available at once, never expiring,
    /// holds kept 15 minutes: a working start before a tenant configures its own rules.
    fn default() -> Self {
        Self {
            version: 0,
            points_per_unit: 1,
            unit_minor: 100,
            categories: Vec::new(),
            promotions: Vec::new(),
            per_order_cap: 0,
            per_day_cap: 0,
            lock_days: 0,
            expiry: ExpiryPolicy::Never,
            hold_ttl_secs: 900,
            top_up_bonuses: Vec::new(),
            low_balance_threshold: 0,
            expiring_soon_days: 30,
        }
    }
}

/// One priced line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub category: String,
    pub amount: i64,
}

/// A purchase to earn on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub total: i64,
    pub lines: Vec<OrderLine>,
    /// When the purchase happened; `None` means when the ledger records it. Kept as sent so a
    /// retry of the same request has the same fingerprint.
    pub occurred_at: Option<Timestamp>,
    /// The member's tier multiplier in basis points (10000 = 1x), from the member service;
    /// None for none. Left out of the fingerprint when None, so earlier retries still match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_multiplier_bp: Option<u32>,
}

impl RuleSet {
    /// Checks a rule set a tenant wants to store.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let bad = |m: &str| Err(ServiceError::invalid(m.to_string()));
        if !(0..=1_000_000).contains(&self.points_per_unit) {
            return bad("points_per_unit must be between 0 and 1000000");
        }
        if !(1..=1_000_000).contains(&self.unit_minor) {
            return bad("unit_minor must be between 1 and 1000000");
        }
        if self.per_order_cap < 0 || self.per_day_cap < 0 || self.low_balance_threshold < 0 {
            return bad("caps and thresholds must not be negative");
        }
        if self
            .categories
            .iter()
            .any(|c| c.multiplier_bp > MAX_MULTIPLIER_BP)
            || self
                .promotions
                .iter()
                .any(|p| p.multiplier_bp > MAX_MULTIPLIER_BP)
        {
            return bad("multipliers must be at most 1000000 basis points (100x)");
        }
        if self.promotions.iter().any(|p| p.ends_at <= p.starts_at) {
            return bad("a promotion must end after it starts");
        }
        if self
            .top_up_bonuses
            .iter()
            .any(|b| b.min_paid <= 0 || b.bonus < 0)
        {
            return bad("a top-up bonus needs min_paid > 0 and bonus >= 0");
        }
        if self.lock_days > 3650 || self.expiring_soon_days > 3650 {
            return bad("lock_days and expiring_soon_days must be at most 3650");
        }
        if self.hold_ttl_secs == 0 || self.hold_ttl_secs > 30 * 86_400 {
            return bad("hold_ttl_secs must be between 1 and 2592000 (30 days)");
        }
        match self.expiry {
            ExpiryPolicy::RollingMonths { months } if months == 0 || months > 120 => {
                bad("rolling expiry must be 1 to 120 months")
            }
            ExpiryPolicy::FixedYearly { month, day }
                if NaiveDate::from_ymd_opt(2025, month, day).is_none() =>
            {
                bad("fixed expiry needs a valid month and day (February 29 is not allowed)")
            }
            _ => Ok(()),
        }
    }

    /// Points an order earns before the per-day cap: per line, base rate times the category
    /// multiplier times the best promotion in force times the member's tier multiplier,
    /// rounded down; then the per-order cap.
    pub fn points_for(&self, order: &Order, at: Timestamp) -> i64 {
        let whole_order = [OrderLine {
            sku: String::new(),
            category: String::new(),
            amount: order.total,
        }];
        let lines: &[OrderLine] = if order.lines.is_empty() {
            &whole_order
        } else {
            &order.lines
        };
        let mut total: i128 = 0;
        for line in lines {
            let category_bp = self
                .categories
                .iter()
                .find(|c| c.category == line.category)
                .map_or(ONE_X, |c| c.multiplier_bp);
            let promo_bp = self.promotion_bp(&line.category, at);
            let tier_bp = order
                .tier_multiplier_bp
                .unwrap_or(ONE_X)
                .min(MAX_TIER_MULTIPLIER_BP);
            let numerator = i128::from(line.amount)
                * i128::from(self.points_per_unit)
                * i128::from(category_bp)
                * i128::from(promo_bp)
                * i128::from(tier_bp);
            let denominator = i128::from(self.unit_minor)
                * i128::from(ONE_X)
                * i128::from(ONE_X)
                * i128::from(ONE_X);
            total += numerator / denominator;
        }
        let mut points = i64::try_from(total).unwrap_or(i64::MAX);
        if self.per_order_cap > 0 {
            points = points.min(self.per_order_cap);
        }
        points.max(0)
    }

    fn promotion_bp(&self, category: &str, at: Timestamp) -> u32 {
        self.promotions
            .iter()
            .filter(|p| p.starts_at <= at && at < p.ends_at)
            .filter(|p| p.categories.is_empty() || p.categories.iter().any(|c| c == category))
            .map(|p| p.multiplier_bp)
            .max()
            .unwrap_or(ONE_X)
    }

    /// When points earned at `at` expire.
    pub fn expiry_for(&self, at: Timestamp) -> Option<Timestamp> {
        let earned = at.to_datetime().date_naive();
        let last_day = match self.expiry {
            ExpiryPolicy::Never => return None,
            ExpiryPolicy::RollingMonths { months } => {
                earned.checked_add_months(Months::new(months))?
            }
            ExpiryPolicy::FixedYearly { month, day } => {
                let this_year = NaiveDate::from_ymd_opt(earned.year(), month, day)?;
                if this_year >= earned {
                    this_year
                } else {
                    NaiveDate::from_ymd_opt(earned.year() + 1, month, day)?
                }
            }
        };
        // Points are usable through the last day; they expire at the following midnight UTC.
        let end = last_day.succ_opt()?.and_hms_opt(0, 0, 0)?;
        Some(Timestamp::from_datetime(Utc.from_utc_datetime(&end)))
    }

    /// The bonus a top-up of `paid` earns.
    pub fn top_up_bonus(&self, paid: i64) -> i64 {
        self.top_up_bonuses
            .iter()
            .filter(|b| paid >= b.min_paid)
            .map(|b| b.bonus)
            .max()
            .unwrap_or(0)
    }
}

/// Days since the Unix epoch of a UTC instant, for the per-day cap.
pub fn utc_day(at: Timestamp) -> i64 {
    at.0.div_euclid(86_400_000)
}

#[cfg(test)]
mod tests;
