//! A cart evaluated against coupons: for each candidate, whether it applies, its discount
//! per line, or why not. A pure function of its inputs, so the till's evaluation, the
//! redemption and the property tests run the same code.
//!
//! The rules (docs/campaigns.md):
//! - Each candidate is checked in a fixed order; the first failed check is its refusal.
//! - Those that pass are ordered by priority (higher first), then code. The first fixes the
//!   mode: an exclusive coupon applies alone; a grouped one applies with every other of its
//!   group. The rest are refused as not stackable.
//! - Each applies to what the coupons before it left of each line; a line's discount never
//!   exceeds what is left of it, so no line and no cart goes below zero.
//! - Percentages round down to the minor unit per line, so a customer never gets more than
//!   the percentage; fixed amounts and caps are spread over the lines in proportion, rounded
//!   down, the leftover units going one each to the largest remainders (ties: earlier line),
//!   so a partial return can refund the right share.

use crate::coupon::{Coupon, Usage};
use crate::template::{Benefit, CouponTemplate, FULL_BASIS_POINTS, Stacking};
use loyalty_common::money::MAX_AMOUNT;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The most lines a cart may have.
pub const MAX_LINES: usize = 500;
/// The most units of one line.
pub const MAX_QUANTITY: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub member: String,
    pub store: String,
    pub brand: Option<String>,
    pub at_ms: i64,
    /// The member's tier, as the member service has it.
    pub tier: Option<String>,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: String,
    pub sku: String,
    pub category: Option<String>,
    pub quantity: u32,
    /// Minor units.
    pub unit_price: i64,
}

/// A coupon with its template and the counters its limits read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub coupon: Coupon,
    pub template: CouponTemplate,
    pub usage: Usage,
}

/// Why a coupon does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Duplicate,
    Inactive,
    NotYetValid,
    Expired,
    NotHolder,
    UsedUp,
    MemberLimit,
    TotalLimit,
    Tier,
    Store,
    Brand,
    NoEligibleLines,
    MinSpend,
    NotStackable,
}

impl Refusal {
    /// The stable code a till can act on.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Duplicate => "duplicate",
            Refusal::Inactive => "inactive",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Expired => "expired",
            Refusal::NotHolder => "not_holder",
            Refusal::UsedUp => "used_up",
            Refusal::MemberLimit => "member_limit",
            Refusal::TotalLimit => "total_limit",
            Refusal::Tier => "tier",
            Refusal::Store => "store",
            Refusal::Brand => "brand",
            Refusal::NoEligibleLines => "no_eligible_lines",
            Refusal::MinSpend => "min_spend",
            Refusal::NotStackable => "not_stackable",
        }
    }

    /// The reason in words a cashier can read out.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Duplicate => "This coupon was presented twice.",
            Refusal::Inactive => "This coupon's offer has been switched off.",
            Refusal::NotYetValid => "This coupon cannot be used yet.",
            Refusal::Expired => "This coupon has expired.",
            Refusal::NotHolder => "This coupon belongs to another member.",
            Refusal::UsedUp => "This coupon has been used as often as it allows.",
            Refusal::MemberLimit => "The member has used this offer as often as it allows.",
            Refusal::TotalLimit => "This offer has run out.",
            Refusal::Tier => "This coupon is not for the member's tier.",
            Refusal::Store => "This coupon cannot be used in this store.",
            Refusal::Brand => "This coupon cannot be used with this brand.",
            Refusal::NoEligibleLines => "Nothing in the cart is eligible for this coupon.",
            Refusal::MinSpend => "The eligible items do not reach the minimum spend.",
            Refusal::NotStackable => "This coupon cannot be combined with another that applies.",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDiscount {
    pub line_id: String,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponResult {
    pub code: String,
    pub template: String,
    pub applies: bool,
    pub refusal: Option<Refusal>,
    pub discount: i64,
    /// Lines with a discount, in cart order.
    pub lines: Vec<LineDiscount>,
    pub bonus_points: i64,
    pub stored_value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    /// One per candidate, in the candidates' order.
    pub coupons: Vec<CouponResult>,
}

/// Checks a cart's shape; the error names the field.
pub fn check_cart(cart: &Cart) -> Result<(), String> {
    if cart.lines.is_empty() || cart.lines.len() > MAX_LINES {
        return Err(format!("cart.lines: must have 1 to {MAX_LINES} lines"));
    }
    let mut ids = HashSet::new();
    let mut subtotal: i64 = 0;
    for (i, line) in cart.lines.iter().enumerate() {
        if line.id.is_empty() || line.id.len() > 64 {
            return Err(format!(
                "cart.lines[{i}].line_id: must be 1 to 64 characters"
            ));
        }
        if !ids.insert(line.id.as_str()) {
            return Err(format!(
                "cart.lines[{i}].line_id: {} is given twice",
                line.id
            ));
        }
        if line.sku.is_empty() || line.sku.len() > 128 {
            return Err(format!("cart.lines[{i}].sku: must be 1 to 128 characters"));
        }
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(format!(
                "cart.lines[{i}].quantity: must be 1 to {MAX_QUANTITY}"
            ));
        }
        if !(0..=MAX_AMOUNT).contains(&line.unit_price) {
            return Err(format!(
                "cart.lines[{i}].unit_price: must be 0 to {MAX_AMOUNT} minor units"
            ));
        }
        let amount = i64::from(line.quantity)
            .checked_mul(line.unit_price)
            .filter(|a| *a <= MAX_AMOUNT)
            .ok_or_else(|| {
                format!("cart.lines[{i}]: quantity times unit_price exceeds {MAX_AMOUNT}")
            })?;
        subtotal = subtotal
            .checked_add(amount)
            .filter(|s| *s <= MAX_AMOUNT)
            .ok_or_else(|| format!("cart.lines: the cart's total exceeds {MAX_AMOUNT}"))?;
    }
    Ok(())
}

/// A line's amount: quantity times unit price.
pub fn line_amount(line: &Line) -> i64 {
    i64::from(line.quantity).saturating_mul(line.unit_price)
}

/// Spreads `amount` over `weights` in proportion, each share rounded down, the leftover
/// units one each to the largest fractional remainders (ties: the earlier). The shares add
/// up to `min(amount, sum of weights)` and none exceeds its weight.
pub fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let weights: Vec<i128> = weights.iter().map(|w| i128::from((*w).max(0))).collect();
    let total: i128 = weights.iter().sum();
    let amount = i128::from(amount.max(0)).min(total);
    if total == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<i128> = weights.iter().map(|w| amount * w / total).collect();
    let mut left = amount - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; the sort is stable, so ties keep the earlier line first.
    order.sort_by_key(|&i| std::cmp::Reverse(amount * weights[i] % total));
    for i in order {
        if left == 0 {
            break;
        }
        if shares[i] < weights[i] {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
        .into_iter()
        .map(|s| i64::try_from(s).unwrap_or(0))
        .collect()
}

fn listed(list: &[String], value: Option<&str>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
}

/// Whether `line` is eligible for `template` (its SKU and category, and a free item's SKU).
fn eligible(template: &CouponTemplate, line: &Line) -> bool {
    let e = &template.eligible;
    let free_sku = match &template.benefit {
        Benefit::FreeItem { sku: Some(sku) } => *sku == line.sku,
        _ => true,
    };
    listed(&e.skus, Some(&line.sku)) && listed(&e.categories, line.category.as_deref()) && free_sku
}

/// The first check `c` fails, if any.
fn check(cart: &Cart, c: &Candidate) -> Option<Refusal> {
    let (t, coupon, usage) = (&c.template, &c.coupon, &c.usage);
    let e = &t.eligible;
    let eligible_amount: i64 = cart
        .lines
        .iter()
        .filter(|l| eligible(t, l))
        .map(line_amount)
        .fold(0, i64::saturating_add);
    let checks = [
        (!t.active, Refusal::Inactive),
        (cart.at_ms < coupon.valid_from_ms, Refusal::NotYetValid),
        (cart.at_ms >= coupon.valid_until_ms, Refusal::Expired),
        (
            coupon.member.as_ref().is_some_and(|m| *m != cart.member),
            Refusal::NotHolder,
        ),
        (usage.code_uses >= t.uses_per_code, Refusal::UsedUp),
        (
            t.per_member_limit.is_some_and(|l| usage.member_uses >= l),
            Refusal::MemberLimit,
        ),
        (
            t.total_limit.is_some_and(|l| usage.total_uses >= l),
            Refusal::TotalLimit,
        ),
        (!listed(&e.tiers, cart.tier.as_deref()), Refusal::Tier),
        (!listed(&e.stores, Some(&cart.store)), Refusal::Store),
        (!listed(&e.brands, cart.brand.as_deref()), Refusal::Brand),
        (eligible_amount <= 0, Refusal::NoEligibleLines),
        (eligible_amount < t.min_spend, Refusal::MinSpend),
    ];
    checks.into_iter().find(|(fails, _)| *fails).map(|(_, r)| r)
}

fn stacking_group(t: &CouponTemplate) -> Option<&str> {
    match &t.stacking {
        Stacking::Exclusive => None,
        Stacking::Group { group } => Some(group),
    }
}

fn refused(c: &Candidate, refusal: Refusal) -> CouponResult {
    CouponResult {
        code: c.coupon.code.clone(),
        template: c.template.id.clone(),
        applies: false,
        refusal: Some(refusal),
        discount: 0,
        lines: Vec::new(),
        bonus_points: 0,
        stored_value: 0,
    }
}

/// Applies `c` to what is left of the lines (`left`, moved), its result.
fn apply(cart: &Cart, c: &Candidate, left: &mut [i64]) -> CouponResult {
    let t = &c.template;
    let eligible_left: Vec<i64> = cart
        .lines
        .iter()
        .zip(left.iter())
        .map(|(line, l)| if eligible(t, line) { *l } else { 0 })
        .collect();
    let mut shares = vec![0i64; left.len()];
    let (mut bonus_points, mut stored_value) = (0, 0);
    match &t.benefit {
        Benefit::AmountOff { amount } => shares = allocate(*amount, &eligible_left),
        Benefit::PercentOff { basis_points, cap } => {
            let bp = i128::from((*basis_points).min(FULL_BASIS_POINTS));
            let uncapped: Vec<i64> = eligible_left
                .iter()
                .map(|l| {
                    i64::try_from(i128::from(*l) * bp / i128::from(FULL_BASIS_POINTS)).unwrap_or(0)
                })
                .collect();
            let sum: i64 = uncapped.iter().fold(0, |a, b| a.saturating_add(*b));
            shares = match cap {
                Some(cap) if sum > *cap => allocate(*cap, &uncapped),
                _ => uncapped,
            };
        }
        Benefit::FreeItem { .. } => {
            let cheapest = cart
                .lines
                .iter()
                .enumerate()
                .filter(|(i, _)| eligible_left[*i] > 0)
                .min_by_key(|(i, line)| (line.unit_price, *i));
            if let Some((i, line)) = cheapest {
                shares[i] = line.unit_price.min(eligible_left[i]);
            }
        }
        Benefit::PointsMultiplier {
            multiplier_percent,
            points_per_unit,
        } => {
            let spend: i128 = eligible_left.iter().map(|l| i128::from(*l)).sum();
            let extra = i128::from(multiplier_percent.saturating_sub(100));
            let points = spend * extra * i128::from(*points_per_unit) / (100 * 100);
            bonus_points = i64::try_from(points).unwrap_or(i64::MAX);
        }
        Benefit::StoredValueBonus { amount } => stored_value = *amount,
    }
    let mut lines = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        let share = (*share).clamp(0, left[i]);
        if share > 0 {
            left[i] -= share;
            lines.push(LineDiscount {
                line_id: cart.lines[i].id.clone(),
                amount: share,
            });
        }
    }
    CouponResult {
        code: c.coupon.code.clone(),
        template: t.id.clone(),
        applies: true,
        refusal: None,
        discount: lines.iter().map(|l| l.amount).sum(),
        lines,
        bonus_points,
        stored_value,
    }
}

/// Evaluates every candidate against the cart (checked by [`check_cart`]).
pub fn evaluate(cart: &Cart, candidates: &[Candidate]) -> Evaluation {
    let mut results: Vec<Option<CouponResult>> = vec![None; candidates.len()];
    let mut seen = HashSet::new();
    let mut passing = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let refusal = if seen.insert(c.coupon.code.as_str()) {
            check(cart, c)
        } else {
            Some(Refusal::Duplicate)
        };
        match refusal {
            Some(r) => results[i] = Some(refused(c, r)),
            None => passing.push(i),
        }
    }
    passing.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        y.template
            .priority
            .cmp(&x.template.priority)
            .then_with(|| x.coupon.code.cmp(&y.coupon.code))
    });
    let mut left: Vec<i64> = cart.lines.iter().map(line_amount).collect();
    let mode = passing
        .first()
        .map(|&i| stacking_group(&candidates[i].template));
    for (n, &i) in passing.iter().enumerate() {
        let c = &candidates[i];
        let stacks = match mode {
            Some(None) => n == 0,
            Some(Some(group)) => stacking_group(&c.template) == Some(group),
            None => false,
        };
        results[i] = Some(if stacks {
            apply(cart, c, &mut left)
        } else {
            refused(c, Refusal::NotStackable)
        });
    }
    let coupons: Vec<CouponResult> = results
        .into_iter()
        .zip(candidates)
        .map(|(r, c)| r.unwrap_or_else(|| refused(c, Refusal::NotStackable)))
        .collect();
    let subtotal = cart
        .lines
        .iter()
        .map(line_amount)
        .fold(0, i64::saturating_add);
    let discount = coupons.iter().map(|c| c.discount).sum();
    Evaluation {
        subtotal,
        discount,
        total: subtotal - discount,
        coupons,
    }
}

#[cfg(test)]
mod tests;
