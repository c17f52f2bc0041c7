//! The points mall (积分商城): items a tenant offers for points, or points and cash, with
//! prices and eligibility per tier, availability per brand, store and time, stock per store
//! (and a central stock), and a limit per member and period. Members order them
//! ([`order`]); an order holds its points in the ledger and one unit of stock until it is
//! confirmed, and gives both back, once, when it fails, lapses, is cancelled or returned.

pub mod order;

use crate::template::{check_name, invalid};
use loyalty_common::error::ServiceResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The stock key of the central stock: what delivery draws from, and a pick-up at a store
/// with no stock of its own.
pub const CENTRAL: &str = "*";
/// Most stock keys (stores and the central stock) of one item.
const MAX_STOCKS: usize = 1_000;
/// Most units in one stock.
const MAX_UNITS: u64 = 100_000_000;
/// The highest price in points of one unit.
const MAX_POINTS: i64 = 1_000_000_000;
/// The longest text of a description.
const MAX_DESCRIPTION: usize = 4_000;

/// What an item is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ItemKind {
    /// Goods the tenant's warehouse or a store hands over (its SKU).
    Gift { sku: String },
    /// A coupon of one of the tenant's templates, issued to the member on confirmation.
    Coupon { template: String },
    /// Stored-value credit (minor units) put in the member's wallet on confirmation.
    StoredValue { amount: i64 },
    /// A service booked with the tenant (a car wash, an alteration).
    Service { sku: String },
    /// A donation the tenant makes on the member's behalf.
    Donation { cause: String },
}

impl ItemKind {
    /// Whether units change hands physically, so an order needs a pick-up or a delivery.
    pub fn physical(&self) -> bool {
        matches!(self, ItemKind::Gift { .. })
    }
}

/// Text in Simplified Chinese and English.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    pub zh: String,
    pub en: String,
}

/// What one unit costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub points: i64,
    /// Paid at the till or online besides the points (minor units); 0 for points only.
    #[serde(default)]
    pub cash: i64,
}

/// How often a member may order an item: `count` units per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLimit {
    pub count: u32,
    pub period: Period,
}

/// A period a limit counts in, by the tenant's calendar in the item's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
    Ever,
}

/// How a member receives a physical item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fulfilment {
    /// At a store, against a one-time code.
    Pickup,
    /// To the address in the member's profile.
    Delivery,
}

/// An item as head office sets it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MallItem {
    pub id: String,
    pub kind: ItemKind,
    pub name: Localized,
    #[serde(default)]
    pub description: Localized,
    pub category: String,
    /// A reference to its picture (a URL or a key in the tenant's media store).
    #[serde(default)]
    pub image: Option<String>,
    pub price: Price,
    /// Prices for members of some tiers (the member service's tier ids).
    #[serde(default)]
    pub tier_prices: BTreeMap<String, Price>,
    /// The tiers that may order it; empty: every member.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// The brands whose stores offer it; empty: every brand.
    #[serde(default)]
    pub brands: Vec<String>,
    /// The stores that offer it; empty: every store (of its brands).
    #[serde(default)]
    pub stores: Vec<String>,
    /// Orderable from (ms); None: at once.
    #[serde(default)]
    pub available_from_ms: Option<i64>,
    /// Orderable until (ms, exclusive); None: until withdrawn.
    #[serde(default)]
    pub available_until_ms: Option<i64>,
    /// Units per store, and [`CENTRAL`] for the central stock.
    pub stock: BTreeMap<String, u64>,
    #[serde(default)]
    pub limit: Option<MemberLimit>,
    /// How a physical item may be received; ignored for the others.
    #[serde(default)]
    pub fulfilment: Vec<Fulfilment>,
    /// The IANA time zone whose calendar the limit's periods follow.
    #[serde(default = "default_zone")]
    pub time_zone: String,
}

fn default_zone() -> String {
    "UTC".into()
}

impl MallItem {
    /// Refuses an item that cannot be offered, naming the field.
    pub fn validate(&self) -> ServiceResult<()> {
        crate::code::check_id("id", &self.id)?;
        match &self.kind {
            ItemKind::Gift { sku } | ItemKind::Service { sku } => check_name("kind.sku", sku)?,
            ItemKind::Coupon { template } => crate::code::check_id("kind.template", template)?,
            ItemKind::StoredValue { amount } if *amount <= 0 => {
                return Err(invalid("kind.amount", "must be more than 0 (minor units)"));
            }
            ItemKind::StoredValue { .. } => {}
            ItemKind::Donation { cause } => check_name("kind.cause", cause)?,
        }
        check_name("name.zh", &self.name.zh)?;
        check_name("name.en", &self.name.en)?;
        for (field, text) in [
            ("description.zh", &self.description.zh),
            ("description.en", &self.description.en),
        ] {
            if text.chars().count() > MAX_DESCRIPTION {
                return Err(invalid(
                    field,
                    &format!("at most {MAX_DESCRIPTION} characters"),
                ));
            }
        }
        check_name("category", &self.category)?;
        if let Some(image) = &self.image {
            check_name("image", image)?;
        }
        check_price("price", &self.price)?;
        for (tier, price) in &self.tier_prices {
            check_name("tier_prices", tier)?;
            check_price(&format!("tier_prices.{tier}"), price)?;
        }
        for (field, names) in [
            ("tiers", &self.tiers),
            ("brands", &self.brands),
            ("stores", &self.stores),
        ] {
            for name in names {
                check_name(field, name)?;
            }
        }
        if let (Some(from), Some(until)) = (self.available_from_ms, self.available_until_ms)
            && until <= from
        {
            return Err(invalid("available_until", "must be after available_from"));
        }
        if self.stock.is_empty() || self.stock.len() > MAX_STOCKS {
            return Err(invalid(
                "stock",
                &format!("1 to {MAX_STOCKS} stores (or {CENTRAL}), each with its units"),
            ));
        }
        for (store, units) in &self.stock {
            check_name("stock", store)?;
            if *units > MAX_UNITS {
                return Err(invalid(
                    &format!("stock.{store}"),
                    &format!("at most {MAX_UNITS} units"),
                ));
            }
        }
        if self.limit.is_some_and(|l| l.count == 0) {
            return Err(invalid("limit.count", "must be at least 1"));
        }
        if self.kind.physical() && self.fulfilment.is_empty() {
            return Err(invalid(
                "fulfilment",
                "a gift is picked up, delivered, or either: name at least one",
            ));
        }
        self.time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| invalid("time_zone", "must be an IANA time zone, e.g. Asia/Shanghai"))?;
        Ok(())
    }

    /// The price a member of `tier` pays.
    pub fn price_for(&self, tier: Option<&str>) -> Price {
        tier.and_then(|t| self.tier_prices.get(t))
            .copied()
            .unwrap_or(self.price)
    }

    /// Whether a member of `tier` may order it.
    pub fn eligible(&self, tier: Option<&str>) -> bool {
        self.tiers.is_empty() || tier.is_some_and(|t| self.tiers.iter().any(|x| x == t))
    }

    /// Whether it is offered at `now_ms`.
    pub fn available_at(&self, now_ms: i64) -> bool {
        self.available_from_ms.is_none_or(|from| now_ms >= from)
            && self.available_until_ms.is_none_or(|until| now_ms < until)
    }

    /// Whether `store` of `brand` offers it.
    pub fn offered_at(&self, store: &str, brand: Option<&str>) -> bool {
        let store_ok = self.stores.is_empty() || self.stores.iter().any(|s| s == store);
        let brand_ok =
            self.brands.is_empty() || brand.is_some_and(|b| self.brands.iter().any(|x| x == b));
        store_ok && brand_ok
    }

    /// The stock an order draws from: the store's own, else the central stock (always the
    /// central stock for a delivery, or an item with no store).
    pub fn stock_for(&self, store: Option<&str>) -> Option<(&str, u64)> {
        store
            .and_then(|s| self.stock.get_key_value(s))
            .or_else(|| self.stock.get_key_value(CENTRAL))
            .map(|(k, v)| (k.as_str(), *v))
    }

    /// Every unit of every stock.
    pub fn total_stock(&self) -> u64 {
        self.stock.values().sum()
    }
}

fn check_price(field: &str, price: &Price) -> ServiceResult<()> {
    if !(1..=MAX_POINTS).contains(&price.points) {
        return Err(invalid(
            &format!("{field}.points"),
            &format!("must be 1 to {MAX_POINTS}"),
        ));
    }
    if price.cash < 0 {
        return Err(invalid(&format!("{field}.cash"), "must not be negative"));
    }
    Ok(())
}

/// An item with the units held or sold from each stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    pub item: MallItem,
    pub taken: BTreeMap<String, u64>,
    /// The version the store keeps it at (1 for the first write).
    #[serde(default)]
    pub version: u64,
}

impl ItemState {
    pub fn new(item: MallItem) -> Self {
        Self {
            item,
            taken: BTreeMap::new(),
            version: 0,
        }
    }

    pub fn taken(&self, stock: &str) -> u64 {
        self.taken.get(stock).copied().unwrap_or(0)
    }

    /// Units left in `stock`.
    pub fn left(&self, stock: &str) -> u64 {
        let units = self.item.stock.get(stock).copied().unwrap_or(0);
        units.saturating_sub(self.taken(stock))
    }

    /// Counts one unit of `stock` in (`up`) or out.
    pub fn count(&mut self, stock: &str, up: bool) {
        let taken = self.taken.entry(stock.to_string()).or_default();
        *taken = if up {
            taken.saturating_add(1)
        } else {
            taken.saturating_sub(1)
        };
    }
}

#[cfg(test)]
mod tests;
