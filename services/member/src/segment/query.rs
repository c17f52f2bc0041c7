//! The query model: kinds, ranges, date windows and attribute tests, as the JSON form
//! writes them.

use super::*;

/// A segment query; see the [module documentation](self) for its JSON form.
///
/// Deserialising checks the shape (and the nesting limit, so hostile input cannot recurse
/// deeply); [`Query::validate`] checks the rest. [`Query::parse`] does both.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// Every query matches (AND).
    All(Vec<Query>),
    /// At least one query matches (OR).
    Any(Vec<Query>),
    /// The query does not match.
    Not(Box<Query>),
    /// The member has the tag.
    Tag(String),
    /// The member's tier is one of these; `None` stands for "no tier".
    Tier(Vec<Option<String>>),
    /// One test of one attribute.
    Attribute(AttributeQuery),
    /// Spend in the 12 calendar months to `now`, this month included.
    #[serde(rename = "spend_12m")]
    Spend12m(Range),
    /// Orders in the 12 calendar months to `now`, this month included.
    #[serde(rename = "orders_12m")]
    Orders12m(Range),
    /// Spend ever.
    LifetimeSpend(Range),
    /// Orders ever.
    LifetimeOrders(Range),
    /// RFM scores; a member without scores never matches.
    Rfm(RfmQuery),
    /// The churn-risk flag is this.
    ChurnRisk(bool),
    /// The lifecycle stage is one of these.
    Lifecycle(Vec<Lifecycle>),
    /// The member consents to marketing on this channel.
    Consent(ConsentChannel),
    /// The registration channel is one of these; `None` stands for "none recorded".
    Channel(Vec<Option<String>>),
    /// The home store is one of these; `None` stands for "none recorded".
    Store(Vec<Option<String>>),
    /// The registration time is in the window.
    Registered(DateQuery),
    /// The first order's time is in the window; never matches a member without orders.
    FirstOrder(DateQuery),
    /// The last order's time is in the window; never matches a member without orders.
    LastOrder(DateQuery),
}

/// Integer bounds, at least one; `gte` and `gt` not together, nor `lte` and `lt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<i64>,
}

/// Ranges over the RFM scores, at least one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RfmQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recency: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monetary: Option<Range>,
}

/// A marketing channel a member consents to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChannel {
    Sms,
    Email,
    App,
}

/// A test of one attribute: `{"name": "city", "eq": "Shanghai"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AttributeJson", into = "AttributeJson")]
pub struct AttributeQuery {
    pub name: String,
    pub test: AttributeTest,
}

/// What an [`AttributeQuery`] asks of the value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeTest {
    /// Present and equal.
    Eq(String),
    /// Present and different.
    Ne(String),
    /// Present and one of these.
    In(Vec<String>),
    /// Present (true) or absent (false).
    Exists(bool),
    /// Present, a finite number, and within the bounds.
    Number(NumberRange),
}

/// Numeric bounds on an attribute, at least one; `gte` and `gt` not together, nor `lte` and
/// `lt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
}

/// A time window: all the bounds given must hold, at least one. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateQuery {
    /// At or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DateBound>,
    /// Strictly before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<DateBound>,
    /// At or after `now` minus this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
    /// Strictly before `now` minus this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_within_days: Option<u32>,
}

/// An absolute date as written (`YYYY-MM-DD` or RFC 3339) and the instant it means; the text
/// is kept so a saved segment shows back what its author wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateBound {
    pub(super) text: String,
    pub(super) at: Timestamp,
}

impl DateBound {
    /// `YYYY-MM-DD` (midnight UTC) or RFC 3339; an error quotes the text.
    pub fn parse(text: &str) -> ServiceResult<Self> {
        parse_date(text)
            .map(|at| DateBound {
                text: text.to_string(),
                at,
            })
            .ok_or_else(|| ServiceError::invalid(bad_date(text)))
    }

    pub fn at(&self) -> Timestamp {
        self.at
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

pub(super) fn bad_date(text: &str) -> String {
    format!(
        "date {text:?} is not YYYY-MM-DD or RFC 3339 (e.g. 2026-01-01 or 2026-01-01T08:00:00+08:00)"
    )
}

pub(super) fn parse_date(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    // The exact shape, because chrono alone would also take `2026-1-1`.
    let plain = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if plain {
        let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        return Some(Timestamp::from_datetime(
            day.and_hms_opt(0, 0, 0)?.and_utc(),
        ));
    }
    let at = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(Timestamp::from_datetime(at.to_utc()))
}

impl Serialize for DateBound {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DateBound {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match parse_date(&text) {
            Some(at) => Ok(DateBound { text, at }),
            None => Err(de::Error::custom(bad_date(&text))),
        }
    }
}

/// The JSON shape of an [`AttributeQuery`]: every test a field, exactly one given.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AttributeJson {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ne: Option<String>,
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    in_: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lte: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lt: Option<f64>,
}

impl TryFrom<AttributeJson> for AttributeQuery {
    type Error = String;

    fn try_from(j: AttributeJson) -> Result<Self, String> {
        let numeric = j.gte.is_some() || j.gt.is_some() || j.lte.is_some() || j.lt.is_some();
        let given = usize::from(j.eq.is_some())
            + usize::from(j.ne.is_some())
            + usize::from(j.in_.is_some())
            + usize::from(j.exists.is_some())
            + usize::from(numeric);
        if given != 1 {
            return Err(format!(
                "attribute {:?}: give exactly one test: eq, ne, in, exists, or numeric bounds \
                 (gte, gt, lte, lt)",
                j.name
            ));
        }
        let test = if let Some(v) = j.eq {
            AttributeTest::Eq(v)
        } else if let Some(v) = j.ne {
            AttributeTest::Ne(v)
        } else if let Some(v) = j.in_ {
            AttributeTest::In(v)
        } else if let Some(v) = j.exists {
            AttributeTest::Exists(v)
        } else {
            AttributeTest::Number(NumberRange {
                gte: j.gte,
                gt: j.gt,
                lte: j.lte,
                lt: j.lt,
            })
        };
        Ok(AttributeQuery { name: j.name, test })
    }
}

impl From<AttributeQuery> for AttributeJson {
    fn from(q: AttributeQuery) -> Self {
        let mut j = AttributeJson {
            name: q.name,
            eq: None,
            ne: None,
            in_: None,
            exists: None,
            gte: None,
            gt: None,
            lte: None,
            lt: None,
        };
        match q.test {
            AttributeTest::Eq(v) => j.eq = Some(v),
            AttributeTest::Ne(v) => j.ne = Some(v),
            AttributeTest::In(v) => j.in_ = Some(v),
            AttributeTest::Exists(v) => j.exists = Some(v),
            AttributeTest::Number(r) => {
                j.gte = r.gte;
                j.gt = r.gt;
                j.lte = r.lte;
                j.lt = r.lt;
            }
        }
        j
    }
}
