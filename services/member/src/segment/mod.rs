//! Segments: saved queries over members' [`MemberFacts`] that combine tags, tier, attributes,
//! spend, RFM scores and dates with AND, OR and NOT.
//!
//! A query is JSON, so a console can build one and a segment can store it; it is checked once
//! ([`Query::parse`], or [`Query::validate`] after plain deserialisation) and compiled for an
//! evaluation time ([`Query::compile`]) into a [`Matcher`] that a refresh runs over every
//! member's facts. Compiling resolves relative dates and the 12-month spend window once, so
//! evaluating a member costs no date arithmetic and no allocation.
//!
//! # The JSON form
//!
//! A query is an object with exactly one key, its kind. Unknown kinds, unknown fields inside
//! a kind and misspelt values are errors, never silently ignored.
//!
//! | Query | Matches a member who (or whose) |
//! |---|---|
//! | `{"all": [q, …]}` | matches every `q` (AND); at least one |
//! | `{"any": [q, …]}` | matches at least one `q` (OR); at least one |
//! | `{"not": q}` | does not match `q` |
//! | `{"tag": "vip"}` | has the tag |
//! | `{"tier": ["gold", "diamond", null]}` | tier is one of the codes; `null` stands for "no tier" |
//! | `{"attribute": {"name": "city", …}}` | attribute passes one test, see below |
//! | `{"spend_12m": range}` | spend in the 12 calendar months to `now` (this month included) |
//! | `{"orders_12m": range}` | orders in those 12 months |
//! | `{"lifetime_spend": range}` | spend ever |
//! | `{"lifetime_orders": range}` | orders ever |
//! | `{"rfm": {"recency": range, "frequency": range, "monetary": range}}` | RFM scores (1 to 5) are in every range given (at least one); a member not yet scored never matches |
//! | `{"churn_risk": true}` | churn-risk flag is this |
//! | `{"lifecycle": ["at_risk", "dormant"]}` | lifecycle is one of `new`, `active`, `at_risk`, `dormant` |
//! | `{"consent": "sms"}` | consents to marketing by `sms`, `email` or `app` |
//! | `{"channel": ["wechat", null]}` | registration channel is one of; `null` for none |
//! | `{"store": ["SH001", null]}` | home store is one of; `null` for none |
//! | `{"registered": dates}` | registration time is in the window |
//! | `{"first_order": dates}` | first order time is in the window; never matches without orders |
//! | `{"last_order": dates}` | last order time is in the window; never matches without orders |
//!
//! A `range` is an object of integer bounds, at least one of them: `gte` (≥), `gt` (>), `lte`
//! (≤), `lt` (<); `gte` and `gt` not together, nor `lte` and `lt`; an empty range is an error.
//! Money is in the tenant's minor currency unit (cents, fen).
//!
//! `dates` is an object of at least one of:
//! - `"after": "2026-01-01"`: at or after that instant (inclusive);
//! - `"before": "2026-02-01"`: strictly before it (exclusive), so `after` January 1 and
//!   `before` February 1 is exactly January, and consecutive windows neither overlap nor
//!   leave a gap;
//! - `"within_days": 30`: at or after `now` minus 30 days;
//! - `"not_within_days": 90`: strictly before `now` minus 90 days (the exact complement of
//!   `within_days` for members who have the date).
//!
//! Absolute dates are `YYYY-MM-DD` (midnight UTC) or RFC 3339 (`2026-01-01T08:00:00+08:00`);
//! day counts are 0 to 36,600. Conditions given together must all hold.
//!
//! An `attribute` names the attribute and gives exactly one test. Attribute values are text.
//! - `"eq": "Shanghai"`: present and equal;
//! - `"ne": "Shanghai"`: present and different (to include members without the attribute,
//!   write `{"not": {"attribute": {"name": "city", "eq": "Shanghai"}}}`);
//! - `"in": ["Shanghai", "Beijing"]`: present and one of;
//! - `"exists": true` (or `false`): present (or absent);
//! - numeric bounds `gte`, `gt`, `lte`, `lt` (JSON numbers, fractions allowed): the value
//!   read as a number (the whole text, e.g. `"42"`, `"-1.5"`, `"1e3"`) is within them; a value
//!   that is not a finite number does not match. Integers compare exactly.
//!
//! A member whose facts are erased matches no query, not even one under `not`.
//!
//! Limits: at most 16 levels of nesting (the outermost query is level 1), 256 conditions
//! (queries other than `all`, `any` and `not`) and 1,000 values in one list. Tags follow the
//! tag rule: 1 to 64 of `a-z 0-9 - _ :`.
//!
//! # Example
//!
//! VIP or gold/diamond members in Shanghai or Hangzhou who spent at least ¥1,000 in the last 12
//! months, ordered in the last 90 days and are not at churn risk:
//!
//! ```json
//! {"all": [
//!   {"any": [{"tag": "vip"}, {"tier": ["gold", "diamond"]}]},
//!   {"spend_12m": {"gte": 100000}},
//!   {"not": {"churn_risk": true}},
//!   {"last_order": {"within_days": 90}},
//!   {"attribute": {"name": "city", "in": ["Shanghai", "Hangzhou"]}}
//! ]}
//! ```
//!
//! Members registered in the first quarter of 2026 who never ordered, or have not for six
//! months:
//!
//! ```json
//! {"all": [
//!   {"registered": {"after": "2026-01-01", "before": "2026-04-01"}},
//!   {"not": {"last_order": {"within_days": 180}}}
//! ]}
//! ```
//!
//! ```
//! use loyalty_common::Timestamp;
//! use loyalty_member::facts::MemberFacts;
//! use loyalty_member::segment::Query;
//!
//! let json = serde_json::json!({"all": [{"tag": "vip"}, {"not": {"tier": [null]}}]});
//! let matcher = Query::parse(&json)?.compile(Timestamp(1_780_000_000_000))?;
//! let mut facts = MemberFacts::new("m1", Timestamp(1_770_000_000_000));
//! facts.tags.insert("vip".into());
//! assert!(!matcher.matches(&facts));
//! facts.tier = Some("gold".into());
//! assert!(matcher.matches(&facts));
//! # Ok::<(), loyalty_common::ServiceError>(())
//! ```

use crate::facts::{Lifecycle, MemberFacts, MonthIndex, MonthTotals, month_of};
use loyalty_common::error::ServiceResult;
use loyalty_common::{ServiceError, Timestamp};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

mod compiled;
mod json;
mod query;
mod validate;
mod values;

// Each part reaches the others through this module.
use self::{json::*, validate::*, values::*};
pub use compiled::*;
pub use query::*;

/// Levels of nesting a query may have; the outermost query is level 1.
pub const MAX_DEPTH: usize = 16;
/// Conditions (queries other than `all`, `any` and `not`) a query may have.
pub const MAX_CONDITIONS: usize = 256;
/// Values one list (tiers, channels, stores, lifecycles, attribute values) may have.
pub const MAX_VALUES: usize = 1_000;
/// The largest day count of `within_days` and `not_within_days`: about a hundred years.
pub const MAX_DAYS: u32 = 36_600;
#[cfg(test)]
mod tests;
