//! Coupon templates: what a coupon gives, on what, to whom, when, how often, and with which
//! other coupons. A template is checked when it is saved ([`CouponTemplate::validate`]), so
//! a cart is only ever evaluated against templates that can be evaluated.

use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::money::MAX_AMOUNT;
use serde::{Deserialize, Serialize};

/// The most a percentage can take off: 100% in basis points.
pub const FULL_BASIS_POINTS: u32 = 10_000;
/// The longest "N days from issue" validity: ten years.
const MAX_VALIDITY_DAYS: u32 = 3_650;
/// The most names an eligibility list may hold (SKUs, categories, stores, brands, tiers).
const MAX_LIST: usize = 1_000;

/// What a coupon gives. Amounts are in minor units (fen, cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Benefit {
    /// A fixed amount off the eligible lines.
    AmountOff { amount: i64 },
    /// A percentage (in basis points: 1500 = 15%) off each eligible line, rounded down to
    /// the minor unit, with an optional cap on the coupon's whole discount.
    PercentOff {
        basis_points: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<i64>,
    },
    /// One unit of an item free: the cheapest eligible line's unit price, or the named SKU's.
    FreeItem {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sku: Option<String>,
    },
    /// Bonus points: the eligible spend earns `multiplier_percent` (200 = double) of the
    /// base rate `points_per_unit` points per major unit (100 minor units); the coupon adds
    /// what exceeds the base.
    PointsMultiplier {
        multiplier_percent: u32,
        #[serde(default = "one_point")]
        points_per_unit: u32,
    },
    /// A credit of stored value, in minor units, on redemption.
    StoredValueBonus { amount: i64 },
}

fn one_point() -> u32 {
    1
}

/// Whom and what a template applies to; an empty list means no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Eligibility {
    pub skus: Vec<String>,
    pub categories: Vec<String>,
    pub stores: Vec<String>,
    pub brands: Vec<String>,
    pub tiers: Vec<String>,
}

/// When a coupon can be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Validity {
    /// From `from_ms` (inclusive) until `until_ms` (exclusive), Unix milliseconds.
    Window { from_ms: i64, until_ms: i64 },
    /// From its issue for this many days.
    DaysFromIssue { days: u32 },
}

impl Validity {
    /// The window of a coupon issued at `issued_ms`.
    pub fn window(&self, issued_ms: i64) -> (i64, i64) {
        match *self {
            Validity::Window { from_ms, until_ms } => (from_ms, until_ms),
            Validity::DaysFromIssue { days } => (
                issued_ms,
                issued_ms.saturating_add(i64::from(days) * 86_400_000),
            ),
        }
    }
}

/// How a coupon combines with others in one cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Stacking {
    /// Alone: no other coupon applies with it.
    Exclusive,
    /// With coupons of the same group only.
    Group { group: String },
}

/// A coupon template, as a tenant saves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplate {
    pub id: String,
    pub name: String,
    pub benefit: Benefit,
    /// The eligible lines must add up to at least this (minor units) before any discount.
    #[serde(default)]
    pub min_spend: i64,
    #[serde(default)]
    pub eligible: Eligibility,
    pub validity: Validity,
    /// Redemptions per member (by member id), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_member_limit: Option<u32>,
    /// Redemptions in total, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_limit: Option<u64>,
    /// How often one code can be redeemed (1: single use; a code printed on a flyer may
    /// allow more).
    #[serde(default = "single_use")]
    pub uses_per_code: u32,
    pub stacking: Stacking,
    /// The order in which discounts apply: higher first; ties by code.
    #[serde(default)]
    pub priority: i32,
    /// A template that is not active issues and redeems nothing.
    #[serde(default = "active")]
    pub active: bool,
}

fn single_use() -> u32 {
    1
}

fn active() -> bool {
    true
}

pub(crate) fn invalid(field: &str, why: &str) -> ServiceError {
    ServiceError::invalid(format!("{field}: {why}"))
}

pub(crate) fn check_name(field: &str, value: &str) -> ServiceResult<()> {
    if value.is_empty() || value.len() > 128 || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must be 1 to 128 characters, none of them control characters",
        ));
    }
    Ok(())
}

fn check_amount(field: &str, value: i64) -> ServiceResult<()> {
    if !(1..=MAX_AMOUNT).contains(&value) {
        return Err(invalid(
            field,
            &format!("must be 1 to {MAX_AMOUNT} minor units"),
        ));
    }
    Ok(())
}

fn check_list(field: &str, values: &[String]) -> ServiceResult<()> {
    if values.len() > MAX_LIST {
        return Err(invalid(field, &format!("at most {MAX_LIST} entries")));
    }
    values.iter().try_for_each(|v| check_name(field, v))
}

impl CouponTemplate {
    /// Refuses a template that cannot be evaluated, naming the field.
    pub fn validate(&self) -> ServiceResult<()> {
        crate::code::check_id("id", &self.id)?;
        check_name("name", &self.name)?;
        match &self.benefit {
            Benefit::AmountOff { amount } => check_amount("benefit.amount", *amount)?,
            Benefit::PercentOff { basis_points, cap } => {
                if !(1..=FULL_BASIS_POINTS).contains(basis_points) {
                    return Err(invalid("benefit.basis_points", "must be 1 to 10000 (100%)"));
                }
                if let Some(cap) = cap {
                    check_amount("benefit.cap", *cap)?;
                }
            }
            Benefit::FreeItem { sku } => {
                if let Some(sku) = sku {
                    check_name("benefit.sku", sku)?;
                }
            }
            Benefit::PointsMultiplier {
                multiplier_percent,
                points_per_unit,
            } => {
                if !(101..=10_000).contains(multiplier_percent) {
                    return Err(invalid(
                        "benefit.multiplier_percent",
                        "must be 101 to 10000 (more than 1x, at most 100x)",
                    ));
                }
                if !(1..=10_000).contains(points_per_unit) {
                    return Err(invalid("benefit.points_per_unit", "must be 1 to 10000"));
                }
            }
            Benefit::StoredValueBonus { amount } => check_amount("benefit.amount", *amount)?,
        }
        if !(0..=MAX_AMOUNT).contains(&self.min_spend) {
            return Err(invalid("min_spend", &format!("must be 0 to {MAX_AMOUNT}")));
        }
        let e = &self.eligible;
        check_list("eligible.skus", &e.skus)?;
        check_list("eligible.categories", &e.categories)?;
        check_list("eligible.stores", &e.stores)?;
        check_list("eligible.brands", &e.brands)?;
        check_list("eligible.tiers", &e.tiers)?;
        match self.validity {
            Validity::Window { from_ms, until_ms } => {
                if from_ms < 0 || until_ms <= from_ms {
                    return Err(invalid(
                        "validity.window",
                        "until_ms must be after from_ms, both Unix milliseconds",
                    ));
                }
            }
            Validity::DaysFromIssue { days } => {
                if !(1..=MAX_VALIDITY_DAYS).contains(&days) {
                    return Err(invalid(
                        "validity.days_from_issue.days",
                        &format!("must be 1 to {MAX_VALIDITY_DAYS}"),
                    ));
                }
            }
        }
        if self.per_member_limit == Some(0) {
            return Err(invalid("per_member_limit", "must be at least 1, or absent"));
        }
        if self.total_limit == Some(0) {
            return Err(invalid("total_limit", "must be at least 1, or absent"));
        }
        if self.uses_per_code == 0 {
            return Err(invalid("uses_per_code", "must be at least 1"));
        }
        if let Stacking::Group { group } = &self.stacking {
            check_name("stacking.group", group)?;
        }
        Ok(())
    }

    /// Whether the benefit takes money off the cart (the others pay on redemption).
    pub fn discounts(&self) -> bool {
        matches!(
            self.benefit,
            Benefit::AmountOff { .. } | Benefit::PercentOff { .. } | Benefit::FreeItem { .. }
        )
    }
}

#[cfg(test)]
mod tests;
