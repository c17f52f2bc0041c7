//! Reading a query from JSON, by hand rather than derived, so the nesting limit is enforced
//! while reading: a derived recursive enum would follow hostile nesting until the stack ran
//! out.

use super::*;

/// The query kinds; [`Kind::from_key`] reads the names the derived `Serialize` writes.
pub(super) enum Kind {
    All,
    Any,
    Not,
    Tag,
    Tier,
    Attribute,
    Spend12m,
    Orders12m,
    LifetimeSpend,
    LifetimeOrders,
    Rfm,
    ChurnRisk,
    Lifecycle,
    Consent,
    Channel,
    Store,
    Registered,
    FirstOrder,
    LastOrder,
}

/// The kinds' names, for the error about an unknown one.
pub(super) const KINDS: &str = "all, any, not, tag, tier, attribute, spend_12m, orders_12m, lifetime_spend, \
                     lifetime_orders, rfm, churn_risk, lifecycle, consent, channel, store, \
                     registered, first_order, last_order";

impl Kind {
    pub(super) fn from_key(key: &str) -> Option<Kind> {
        Some(match key {
            "all" => Kind::All,
            "any" => Kind::Any,
            "not" => Kind::Not,
            "tag" => Kind::Tag,
            "tier" => Kind::Tier,
            "attribute" => Kind::Attribute,
            "spend_12m" => Kind::Spend12m,
            "orders_12m" => Kind::Orders12m,
            "lifetime_spend" => Kind::LifetimeSpend,
            "lifetime_orders" => Kind::LifetimeOrders,
            "rfm" => Kind::Rfm,
            "churn_risk" => Kind::ChurnRisk,
            "lifecycle" => Kind::Lifecycle,
            "consent" => Kind::Consent,
            "channel" => Kind::Channel,
            "store" => Kind::Store,
            "registered" => Kind::Registered,
            "first_order" => Kind::FirstOrder,
            "last_order" => Kind::LastOrder,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        QuerySeed { depth: 1 }.deserialize(d)
    }
}

/// Reads a query at nesting level `depth`.
#[derive(Clone, Copy)]
pub(super) struct QuerySeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for QuerySeed {
    type Value = Query;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Query, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(too_deep()));
        }
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for QuerySeed {
    type Value = Query;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a query: an object with one key, such as {\"tag\": \"vip\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Query, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "a query is an object with one key, such as {\"tag\": \"vip\"}; this one is empty",
            ));
        };
        let Some(kind) = Kind::from_key(&key) else {
            return Err(de::Error::custom(format!(
                "unknown query kind {key:?}; the kinds are {KINDS}"
            )));
        };
        let inner = QuerySeed {
            depth: self.depth + 1,
        };
        let query = match kind {
            Kind::All => Query::All(map.next_value_seed(ListSeed(inner))?),
            Kind::Any => Query::Any(map.next_value_seed(ListSeed(inner))?),
            Kind::Not => Query::Not(Box::new(map.next_value_seed(inner)?)),
            Kind::Tag => Query::Tag(map.next_value()?),
            Kind::Tier => Query::Tier(map.next_value()?),
            Kind::Attribute => Query::Attribute(map.next_value()?),
            Kind::Spend12m => Query::Spend12m(map.next_value()?),
            Kind::Orders12m => Query::Orders12m(map.next_value()?),
            Kind::LifetimeSpend => Query::LifetimeSpend(map.next_value()?),
            Kind::LifetimeOrders => Query::LifetimeOrders(map.next_value()?),
            Kind::Rfm => Query::Rfm(map.next_value()?),
            Kind::ChurnRisk => Query::ChurnRisk(map.next_value()?),
            Kind::Lifecycle => Query::Lifecycle(map.next_value()?),
            Kind::Consent => Query::Consent(map.next_value()?),
            Kind::Channel => Query::Channel(map.next_value()?),
            Kind::Store => Query::Store(map.next_value()?),
            Kind::Registered => Query::Registered(map.next_value()?),
            Kind::FirstOrder => Query::FirstOrder(map.next_value()?),
            Kind::LastOrder => Query::LastOrder(map.next_value()?),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a query is an object with one key; this {} query also has {extra:?} \
                 (combine conditions with all or any)",
                query.kind()
            )));
        }
        Ok(query)
    }
}

/// Reads the list of an `all` or `any`, at most [`MAX_CONDITIONS`] long (each element holds
/// at least one condition), so an oversized list fails before it is all in memory.
pub(super) struct ListSeed(QuerySeed);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<Query>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Query>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<Query>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of queries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Query>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(query) = seq.next_element_seed(self.0)? {
            if out.len() == MAX_CONDITIONS {
                return Err(de::Error::custom(too_many()));
            }
            out.push(query);
        }
        Ok(out)
    }
}

pub(super) fn too_deep() -> String {
    format!("the query nests deeper than {MAX_DEPTH} levels")
}

pub(super) fn too_many() -> String {
    format!("the query has more than {MAX_CONDITIONS} conditions")
}
