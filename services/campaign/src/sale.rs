//! Flash sales: limited stock of an item or a coupon, split into quotas per tier, claimed by
//! members from a start time. A claim is a hold on one unit of its tier's quota: confirmed
//! (paid) within the sale's hold time, or given back (released by the caller, or lapsed).
//! A quota is never passed: every held or confirmed claim counts against it.

use crate::template::{check_name, invalid};
use loyalty_common::error::ServiceResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The quota of members whose tier has none of its own (or who have no tier).
pub const ANY_TIER: &str = "*";
/// Most quotas in a sale.
const MAX_QUOTAS: usize = 32;
/// Most units in one quota.
const MAX_UNITS: u64 = 10_000_000;
/// The longest hold: a day.
const MAX_HOLD_SECS: u32 = 86_400;

/// What a sale sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SaleItem {
    /// Goods the tenant fulfils (its own SKU); the claim is the member's right to buy one.
    Item { sku: String },
    /// A coupon of a template, issued to the member when the claim is confirmed.
    Coupon { template: String },
}

/// A flash sale as head office sets it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashSale {
    pub id: String,
    pub name: String,
    pub item: SaleItem,
    /// Units per tier (the member service's tier ids); [`ANY_TIER`] for every other member.
    pub quotas: BTreeMap<String, u64>,
    /// Units one member may hold or have bought.
    pub per_member_limit: u32,
    pub starts_ms: i64,
    /// Exclusive; None: until sold out.
    pub ends_ms: Option<i64>,
    /// How long a claim holds its unit before it goes back to the quota.
    pub hold_secs: u32,
    /// Set by the service when the sale is created.
    #[serde(default)]
    pub created_ms: i64,
}

impl FlashSale {
    /// Refuses a sale that cannot run, naming the field.
    pub fn validate(&self) -> ServiceResult<()> {
        crate::code::check_id("id", &self.id)?;
        check_name("name", &self.name)?;
        match &self.item {
            SaleItem::Item { sku } => check_name("item.sku", sku)?,
            SaleItem::Coupon { template } => crate::code::check_id("item.template", template)?,
        }
        if self.quotas.is_empty() || self.quotas.len() > MAX_QUOTAS {
            return Err(invalid(
                "quotas",
                &format!("1 to {MAX_QUOTAS} tiers, each with its units"),
            ));
        }
        for (tier, units) in &self.quotas {
            check_name("quotas", tier)?;
            if !(1..=MAX_UNITS).contains(units) {
                return Err(invalid(
                    &format!("quotas.{tier}"),
                    &format!("must be 1 to {MAX_UNITS} units"),
                ));
            }
        }
        if self.per_member_limit == 0 {
            return Err(invalid("per_member_limit", "must be at least 1"));
        }
        if !(1..=MAX_HOLD_SECS).contains(&self.hold_secs) {
            return Err(invalid(
                "hold_secs",
                &format!("must be 1 to {MAX_HOLD_SECS} seconds"),
            ));
        }
        if self.ends_ms.is_some_and(|end| end <= self.starts_ms) {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        Ok(())
    }

    /// The quota a member of `tier` claims from: the tier's own, else [`ANY_TIER`]'s.
    pub fn quota_for(&self, tier: Option<&str>) -> Option<(&str, u64)> {
        tier.and_then(|t| self.quotas.get_key_value(t))
            .or_else(|| self.quotas.get_key_value(ANY_TIER))
            .map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether claims are taken at `now_ms`.
    pub fn open_at(&self, now_ms: i64) -> bool {
        now_ms >= self.starts_ms && self.ends_ms.is_none_or(|end| now_ms < end)
    }

    /// Every unit of the sale.
    pub fn stock(&self) -> u64 {
        self.quotas.values().sum()
    }
}

/// A sale with the units held or sold from each quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleState {
    pub sale: FlashSale,
    pub taken: BTreeMap<String, u64>,
}

impl SaleState {
    pub fn new(sale: FlashSale) -> Self {
        Self {
            sale,
            taken: BTreeMap::new(),
        }
    }

    pub fn taken(&self, quota: &str) -> u64 {
        self.taken.get(quota).copied().unwrap_or(0)
    }

    /// Counts one unit of `quota` in (`up`) or out.
    pub fn count(&mut self, quota: &str, up: bool) {
        let taken = self.taken.entry(quota.to_string()).or_default();
        *taken = if up {
            taken.saturating_add(1)
        } else {
            taken.saturating_sub(1)
        };
    }
}

/// Where a claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    /// Holding a unit until `hold_until_ms`.
    Held,
    /// Paid: the unit is sold.
    Confirmed,
    /// Given back by the caller (the checkout failed or was abandoned).
    Released,
    /// Given back because it was not confirmed in time.
    Lapsed,
}

impl ClaimState {
    pub fn label(self) -> &'static str {
        match self {
            ClaimState::Held => "held",
            ClaimState::Confirmed => "confirmed",
            ClaimState::Released => "released",
            ClaimState::Lapsed => "lapsed",
        }
    }

    /// Whether it takes a unit of its quota (and of the member's limit).
    pub fn counts(self) -> bool {
        matches!(self, ClaimState::Held | ClaimState::Confirmed)
    }
}

/// A member's claim on one unit, keyed by the caller's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub id: String,
    pub tenant: String,
    pub sale: String,
    pub member: String,
    /// The quota it counts in.
    pub quota: String,
    pub state: ClaimState,
    pub created_ms: i64,
    /// When the hold lapses (Held only).
    pub hold_until_ms: Option<i64>,
    pub updated_ms: i64,
    /// The coupon issued when a coupon sale's claim was confirmed.
    pub coupon: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale() -> FlashSale {
        FlashSale {
            id: "S1".into(),
            name: "Double eleven".into(),
            item: SaleItem::Item {
                sku: "TEA-1".into(),
            },
            quotas: [("diamond".to_string(), 5), ("*".to_string(), 2)].into(),
            per_member_limit: 1,
            starts_ms: 1_000,
            ends_ms: Some(2_000),
            hold_secs: 600,
            created_ms: 0,
        }
    }

    #[test]
    fn a_sale_that_cannot_run_is_refused_naming_the_field() {
        assert!(sale().validate().is_ok());
        let refused = |f: fn(&mut FlashSale), field: &str| {
            let mut s = sale();
            f(&mut s);
            let e = s.validate().unwrap_err();
            assert!(e.message.starts_with(field), "{field}: {}", e.message);
        };
        refused(|s| s.quotas.clear(), "quotas");
        refused(
            |s| {
                s.quotas.insert("gold".into(), 0);
            },
            "quotas.gold",
        );
        refused(|s| s.per_member_limit = 0, "per_member_limit");
        refused(|s| s.hold_secs = 0, "hold_secs");
        refused(|s| s.ends_ms = Some(1_000), "ends_at");
        refused(|s| s.name.clear(), "name");
        refused(
            |s| s.item = SaleItem::Item { sku: String::new() },
            "item.sku",
        );
    }

    #[test]
    fn a_member_claims_from_the_quota_of_the_tier_else_from_everyone_s() {
        let s = sale();
        assert_eq!(s.quota_for(Some("diamond")), Some(("diamond", 5)));
        assert_eq!(s.quota_for(Some("silver")), Some(("*", 2)));
        assert_eq!(s.quota_for(None), Some(("*", 2)));
        let mut only_diamond = sale();
        only_diamond.quotas.remove("*");
        assert_eq!(only_diamond.quota_for(Some("silver")), None);
        assert!(!s.open_at(999) && s.open_at(1_000) && !s.open_at(2_000));
        assert_eq!(s.stock(), 7);
    }
}
