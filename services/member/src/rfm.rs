//! RFM scores, a churn-risk flag and the lifecycle stage (issue 5), computed from a member's
//! facts on a schedule with bands each tenant may tune.
//!
//! Pure: `now` is a parameter and nothing is read or written but the facts given, so the
//! scheduled job, a REST "rescore" and tests under a controlled clock agree. [`apply`] says
//! whether anything changed, so the job stores and announces only real changes.
//!
//! Days are whole days elapsed (`floor((now - then) / 24h)`), so "within 30 days" holds up
//! to 30 days and 23 hours. The decisions where the issue was silent are recorded in
//! `docs/decisions/0009-tiers-and-rfm.md`.

use crate::facts::{Lifecycle, MemberFacts, RfmScore};
use loyalty_common::error::ServiceResult;
use loyalty_common::{ServiceError, Timestamp};
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;
const MAX_DAYS: u32 = 3650;
const MAX_ORDERS: u32 = 100_000;

/// When a member who used to buy regularly counts as at risk of churning: it has bought at
/// least `min_orders` times, and the whole days since its last order reach both `min_days`
/// and `gap_percent` percent of its usual gap between orders (first to last order, divided
/// by the number of gaps). A weekly buyer is at risk well before a monthly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChurnRule {
    /// At least 2: a usual gap needs two orders.
    pub min_orders: u32,
    /// 300 = quiet for three times the usual gap.
    pub gap_percent: u32,
    /// Never at risk sooner than this after the last order, however frequent the buyer.
    pub min_days: u32,
}

impl Default for ChurnRule {
    fn default() -> Self {
        Self {
            min_orders: 2,
            gap_percent: 300,
            min_days: 30,
        }
    }
}

/// Lifecycle stages by days (see [`lifecycle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleRule {
    /// Registered at most this many days ago with at most one order: New.
    pub new_days: u32,
    /// Last order at most this many days ago: Active.
    pub active_days: u32,
    /// Last order more than this many days ago: Dormant; between the two: AtRisk.
    pub dormant_days: u32,
}

impl Default for LifecycleRule {
    fn default() -> Self {
        Self {
            new_days: 30,
            active_days: 90,
            dormant_days: 365,
        }
    }
}

/// A tenant's scoring bands. Each band list holds four strictly ascending cut points
/// between the scores 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoringPolicy {
    /// Whole days since the last order: at most `[0]` scores 5, at most `[1]` 4, at most
    /// `[2]` 3, at most `[3]` 2, more 1.
    pub recency_days: [u32; 4],
    /// Orders in the last 12 calendar months: at least `[3]` scores 5, at least `[2]` 4,
    /// at least `[1]` 3, at least `[0]` 2, fewer 1.
    pub frequency_orders: [u32; 4],
    /// Spend in the last 12 calendar months, minor units; scored like frequency.
    pub monetary_minor: [i64; 4],
    pub churn: ChurnRule,
    pub lifecycle: LifecycleRule,
}

impl Default for ScoringPolicy {
    /// A month, a quarter, half a year and a year for recency; 2, 4, 8 and 12 orders a year;
    /// 200, 1,000, 3,000 and 10,000 in a currency of 100 minor units.
    fn default() -> Self {
        Self {
            recency_days: [30, 90, 180, 365],
            frequency_orders: [2, 4, 8, 12],
            monetary_minor: [20_000, 100_000, 300_000, 1_000_000],
            churn: ChurnRule::default(),
            lifecycle: LifecycleRule::default(),
        }
    }
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(message)
}

fn ascending<T: PartialOrd>(cuts: &[T; 4]) -> bool {
    cuts.windows(2).all(|w| w[0] < w[1])
}

impl ScoringPolicy {
    /// Checks a policy a tenant wants to store; the error names the first problem.
    pub fn validate(&self) -> ServiceResult<()> {
        if !ascending(&self.recency_days) || self.recency_days[3] > MAX_DAYS {
            return Err(bad(format!(
                "recency_days must be 4 strictly ascending day counts of at most {MAX_DAYS}"
            )));
        }
        if !ascending(&self.frequency_orders)
            || self.frequency_orders[0] < 1
            || self.frequency_orders[3] > MAX_ORDERS
        {
            return Err(bad(format!(
                "frequency_orders must be 4 strictly ascending order counts from 1 to {MAX_ORDERS}"
            )));
        }
        if !ascending(&self.monetary_minor) || self.monetary_minor[0] < 1 {
            return Err(bad(
                "monetary_minor must be 4 strictly ascending amounts above 0",
            ));
        }
        let churn = &self.churn;
        if !(2..=MAX_ORDERS).contains(&churn.min_orders) {
            return Err(bad(format!(
                "churn.min_orders must be 2 to {MAX_ORDERS} (a usual gap needs two orders)"
            )));
        }
        if !(100..=10_000).contains(&churn.gap_percent) {
            return Err(bad(
                "churn.gap_percent must be 100 to 10000 (100 is the usual gap itself)",
            ));
        }
        if !(1..=MAX_DAYS).contains(&churn.min_days) {
            return Err(bad(format!("churn.min_days must be 1 to {MAX_DAYS}")));
        }
        let stages = &self.lifecycle;
        if stages.active_days < 1 {
            return Err(bad("lifecycle.active_days must be at least 1"));
        }
        if stages.dormant_days <= stages.active_days || stages.dormant_days > MAX_DAYS {
            return Err(bad(format!(
                "lifecycle.dormant_days must be above active_days and at most {MAX_DAYS}"
            )));
        }
        if stages.new_days >= stages.dormant_days {
            return Err(bad("lifecycle.new_days must be below dormant_days"));
        }
        Ok(())
    }
}

/// What a scoring run computes for one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scores {
    /// None for a member who never ordered: recency has no date to count from, and a 1-1-1
    /// would lump it with members who bought once long ago. Segments tell the two apart.
    pub rfm: Option<RfmScore>,
    pub churn_risk: bool,
    pub lifecycle: Lifecycle,
}

/// Whole days from `then` to `now`; 0 if `then` is later (a clock ahead somewhere).
fn days_since(then: Timestamp, now: Timestamp) -> i64 {
    let elapsed = i128::from(now.0) - i128::from(then.0);
    i64::try_from(elapsed.max(0) / i128::from(DAY_MS)).unwrap_or(i64::MAX)
}

/// 5 for at most the first cut, down to 1 for more than the last.
fn at_most_score(cuts: &[u32; 4], days: i64) -> u8 {
    cuts.iter()
        .fold(1, |score, cut| score + u8::from(days <= i64::from(*cut)))
}

/// 1 below the first cut, up to 5 for at least the last.
fn at_least_score(cuts: &[i64; 4], value: i64) -> u8 {
    cuts.iter()
        .fold(1, |score, cut| score + u8::from(value >= *cut))
}

/// The member's scores at `now`. Never panics, even with an unvalidated policy (scores stay
/// within 1 to 5).
pub fn score(policy: &ScoringPolicy, facts: &MemberFacts, now: Timestamp) -> Scores {
    let rfm = facts.last_order_at.map(|last| RfmScore {
        recency: at_most_score(&policy.recency_days, days_since(last, now)),
        frequency: at_least_score(
            &policy.frequency_orders.map(i64::from),
            i64::from(facts.orders_12m(now)),
        ),
        monetary: at_least_score(&policy.monetary_minor, facts.spend_12m(now)),
    });
    Scores {
        rfm,
        churn_risk: churn_risk(&policy.churn, facts, now),
        lifecycle: lifecycle(&policy.lifecycle, facts, now),
    }
}

/// See [`ChurnRule`]. A member past `dormant_days` stays flagged: it is lapsed, which a
/// win-back campaign wants too; the lifecycle stage tells the two apart.
pub fn churn_risk(rule: &ChurnRule, facts: &MemberFacts, now: Timestamp) -> bool {
    let (Some(first), Some(last)) = (facts.first_order_at, facts.last_order_at) else {
        return false;
    };
    if facts.lifetime_orders < rule.min_orders.max(2) {
        return false;
    }
    let quiet_days = days_since(last, now);
    if quiet_days < i64::from(rule.min_days) {
        return false;
    }
    // quiet_days >= usual gap * gap_percent / 100, without rounding the gap.
    let span_ms = (i128::from(last.0) - i128::from(first.0)).max(0);
    let gaps = i128::from(facts.lifetime_orders - 1);
    i128::from(quiet_days) * i128::from(DAY_MS) * gaps * 100
        >= span_ms * i128::from(rule.gap_percent)
}

/// The lifecycle stage:
/// - New: registered at most `new_days` ago with at most one order;
/// - Active: last order at most `active_days` ago;
/// - AtRisk: last order more than `active_days` and at most `dormant_days` ago;
/// - Dormant: last order more than `dormant_days` ago.
///
/// A member who never ordered ages from its registration instead, but is never Active (a
/// registration is not a purchase): New, then AtRisk, then Dormant.
pub fn lifecycle(rule: &LifecycleRule, facts: &MemberFacts, now: Timestamp) -> Lifecycle {
    let age = days_since(facts.created_at, now);
    if age <= i64::from(rule.new_days) && facts.lifetime_orders <= 1 {
        return Lifecycle::New;
    }
    let quiet = match facts.last_order_at {
        Some(last) => days_since(last, now),
        None => age,
    };
    if facts.last_order_at.is_some() && quiet <= i64::from(rule.active_days) {
        Lifecycle::Active
    } else if quiet <= i64::from(rule.dormant_days) {
        Lifecycle::AtRisk
    } else {
        Lifecycle::Dormant
    }
}

/// Writes the scores into the facts; true if anything changed (store and announce only
/// then).
pub fn apply(facts: &mut MemberFacts, scores: Scores) -> bool {
    let changed = facts.rfm != scores.rfm
        || facts.churn_risk != scores.churn_risk
        || facts.lifecycle != scores.lifecycle;
    facts.rfm = scores.rfm;
    facts.churn_risk = scores.churn_risk;
    facts.lifecycle = scores.lifecycle;
    changed
}

#[cfg(test)]
mod tests;
