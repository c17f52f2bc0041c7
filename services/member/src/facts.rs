//! What segments, tiers and scores look at: a member's non-personal facts, kept in a row of
//! their own beside the sealed profile, so a segment over a million members reads a few
//! dozen bytes a member and opens nothing.

use crate::profile::Consents;
use loyalty_common::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A month as a number: `year * 12 + (month - 1)`, so consecutive months are consecutive
/// numbers (2026-11 is 2026 * 12 + 10).
pub type MonthIndex = u32;

/// Spend and orders in one calendar month (UTC), in the tenant's minor currency unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthTotals {
    pub month: MonthIndex,
    pub spend: i64,
    pub orders: u32,
}

/// RFM scores, each 1 (worst) to 5 (best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScore {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

/// Where a member is in its life with the brand.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Registered recently.
    #[default]
    New,
    /// Bought recently.
    Active,
    /// Has not bought for a while.
    AtRisk,
    /// Has not bought for a long while.
    Dormant,
}

/// A member's facts. `months` holds the last 24 months with any orders, oldest first, so
/// rolling 12-month spend is a sum of at most 12 entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFacts {
    pub member_id: String,
    pub tags: BTreeSet<String>,
    /// The tier code, if the member has one (a copy of `tier_state.tier`).
    pub tier: Option<String>,
    /// Where the member stands in its tier's period; None until a tier policy first
    /// evaluates it.
    pub tier_state: Option<crate::tier::TierState>,
    pub attributes: BTreeMap<String, String>,
    pub consents: Consents,
    pub channel: Option<String>,
    pub store: Option<String>,
    pub created_at: Timestamp,
    pub months: Vec<MonthTotals>,
    pub lifetime_spend: i64,
    pub lifetime_orders: u32,
    pub first_order_at: Option<Timestamp>,
    pub last_order_at: Option<Timestamp>,
    /// Set by the last scoring run; None before it.
    pub rfm: Option<RfmScore>,
    pub churn_risk: bool,
    pub lifecycle: Lifecycle,
    /// Erased members keep their facts (no personal data in them) but leave every segment.
    pub erased: bool,
    /// Set while the member is merged into another: it leaves every segment and run.
    pub merged_into: Option<String>,
}

/// The month `at` falls in (UTC).
pub fn month_of(at: Timestamp) -> MonthIndex {
    use chrono::Datelike;
    let date = at.to_datetime();
    (date.year().max(0) as u32) * 12 + date.month0()
}

impl MemberFacts {
    pub fn new(member_id: impl Into<String>, created_at: Timestamp) -> Self {
        Self {
            member_id: member_id.into(),
            tags: BTreeSet::new(),
            tier: None,
            tier_state: None,
            attributes: BTreeMap::new(),
            consents: Consents::default(),
            channel: None,
            store: None,
            created_at,
            months: Vec::new(),
            lifetime_spend: 0,
            lifetime_orders: 0,
            first_order_at: None,
            last_order_at: None,
            rfm: None,
            churn_risk: false,
            lifecycle: Lifecycle::New,
            erased: false,
            merged_into: None,
        }
    }

    /// Whether the member takes part in segments, tiers and scoring (not erased or merged).
    pub fn is_active(&self) -> bool {
        !self.erased && self.merged_into.is_none()
    }

    /// Spend in the 12 calendar months ending with the month of `now` (this month included).
    pub fn spend_12m(&self, now: Timestamp) -> i64 {
        self.window(now, 12)
            .fold(0i64, |sum, m| sum.saturating_add(m.spend))
    }

    /// Orders in the 12 calendar months ending with the month of `now`.
    pub fn orders_12m(&self, now: Timestamp) -> u32 {
        self.window(now, 12).map(|m| m.orders).sum()
    }

    fn window(&self, now: Timestamp, months: u32) -> impl Iterator<Item = &MonthTotals> {
        let last = month_of(now);
        let first = last.saturating_sub(months - 1);
        self.months
            .iter()
            .filter(move |m| (first..=last).contains(&m.month))
    }

    /// Counts an order (a negative amount is a refund: it lowers spend, not the order count).
    pub fn add_order(&mut self, at: Timestamp, amount: i64) {
        let month = month_of(at);
        let counted = u32::from(amount >= 0);
        match self.months.iter_mut().find(|m| m.month == month) {
            Some(m) => {
                m.spend = m.spend.saturating_add(amount);
                m.orders += counted;
            }
            None => {
                self.months.push(MonthTotals {
                    month,
                    spend: amount,
                    orders: counted,
                });
                self.months.sort_by_key(|m| m.month);
            }
        }
        // Two years is all any rule looks back.
        let newest = self.months.last().map_or(month, |m| m.month);
        self.months.retain(|m| m.month + 24 > newest);
        self.lifetime_spend = self.lifetime_spend.saturating_add(amount);
        if amount >= 0 {
            self.lifetime_orders += 1;
            self.first_order_at = Some(self.first_order_at.map_or(at, |f| f.min(at)));
            self.last_order_at = Some(self.last_order_at.map_or(at, |l| l.max(at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> Timestamp {
        let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("date");
        Timestamp::from_datetime(d.and_hms_opt(12, 0, 0).expect("time").and_utc())
    }

    #[test]
    fn rolling_spend_counts_the_last_twelve_months_only() {
        let mut facts = MemberFacts::new("m1", at("2025-01-01"));
        facts.add_order(at("2025-10-31"), 1_000);
        facts.add_order(at("2025-11-01"), 2_000);
        facts.add_order(at("2026-11-20"), 4_000);
        facts.add_order(at("2026-11-21"), -500);
        assert_eq!(facts.spend_12m(at("2026-11-26")), 3_500);
        assert_eq!(facts.spend_12m(at("2026-10-26")), 2_000);
        assert_eq!(facts.orders_12m(at("2026-11-26")), 1);
        assert_eq!(facts.lifetime_spend, 6_500);
        assert_eq!(facts.lifetime_orders, 3);
        assert_eq!(facts.last_order_at, Some(at("2026-11-20")));
    }

    #[test]
    fn months_older_than_two_years_are_dropped() {
        let mut facts = MemberFacts::new("m1", at("2020-01-01"));
        facts.add_order(at("2020-01-15"), 100);
        facts.add_order(at("2026-11-15"), 100);
        assert_eq!(facts.months.len(), 1);
        assert_eq!(month_of(at("2026-11-15")), 2026 * 12 + 10);
    }
}
