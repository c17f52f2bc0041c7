//! Checking a query once it is read: tags, lists, codes, attributes, dates and ranges, each
//! error naming where it is (`all[2].not`).

use super::*;

impl Query {
    /// Reads and checks a query: `Query::parse(&json_value)`, or any serde deserializer. The
    /// error (INVALID_ARGUMENT) names the problem and, for a nested one, where it is
    /// (`all[2].not`).
    pub fn parse<'de, D: Deserializer<'de>>(json: D) -> ServiceResult<Query> {
        let query = Query::deserialize(json)
            .map_err(|e| ServiceError::invalid(format!("segment query: {e}")))?;
        query.validate()?;
        Ok(query)
    }

    /// The JSON key of this query's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Query::All(_) => "all",
            Query::Any(_) => "any",
            Query::Not(_) => "not",
            Query::Tag(_) => "tag",
            Query::Tier(_) => "tier",
            Query::Attribute(_) => "attribute",
            Query::Spend12m(_) => "spend_12m",
            Query::Orders12m(_) => "orders_12m",
            Query::LifetimeSpend(_) => "lifetime_spend",
            Query::LifetimeOrders(_) => "lifetime_orders",
            Query::Rfm(_) => "rfm",
            Query::ChurnRisk(_) => "churn_risk",
            Query::Lifecycle(_) => "lifecycle",
            Query::Consent(_) => "consent",
            Query::Channel(_) => "channel",
            Query::Store(_) => "store",
            Query::Registered(_) => "registered",
            Query::FirstOrder(_) => "first_order",
            Query::LastOrder(_) => "last_order",
        }
    }

    /// Checks what deserialising cannot: non-empty lists, limits, the tag rule, non-empty
    /// ranges and windows. Needed for a query built in code or read with plain serde; the
    /// walk is iterative, so even a query built too deep in code is refused, not overflowed.
    pub fn validate(&self) -> ServiceResult<()> {
        let mut conditions = 0usize;
        let mut stack: Vec<(&Query, usize, String)> = vec![(self, 1, String::new())];
        while let Some((query, depth, path)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(problem(&path, too_deep()));
            }
            match query {
                Query::All(list) | Query::Any(list) => {
                    let kind = query.kind();
                    if list.is_empty() {
                        return Err(problem(
                            &path,
                            format!("{kind} is empty; give it at least one query"),
                        ));
                    }
                    for (i, q) in list.iter().enumerate().rev() {
                        stack.push((q, depth + 1, step(&path, &format!("{kind}[{i}]"))));
                    }
                }
                Query::Not(q) => stack.push((q, depth + 1, step(&path, "not"))),
                leaf => {
                    conditions += 1;
                    if conditions > MAX_CONDITIONS {
                        return Err(problem("", too_many()));
                    }
                    leaf.check_condition().map_err(|m| problem(&path, m))?;
                }
            }
        }
        Ok(())
    }

    /// Checks one condition (a query other than all, any, not).
    pub(super) fn check_condition(&self) -> Result<(), String> {
        match self {
            Query::All(_) | Query::Any(_) | Query::Not(_) => Ok(()),
            Query::Tag(tag) => check_tag(tag),
            Query::Tier(codes) => check_codes("tier", codes),
            Query::Channel(codes) => check_codes("channel", codes),
            Query::Store(codes) => check_codes("store", codes),
            Query::Attribute(a) => check_attribute(a),
            Query::Spend12m(r)
            | Query::Orders12m(r)
            | Query::LifetimeSpend(r)
            | Query::LifetimeOrders(r) => r.bounds(self.kind()).map(|_| ()),
            Query::Rfm(rfm) => rfm_bounds(rfm).map(|_| ()),
            Query::ChurnRisk(_) | Query::Consent(_) => Ok(()),
            Query::Lifecycle(stages) => check_list("lifecycle", stages.len()),
            Query::Registered(d) | Query::FirstOrder(d) | Query::LastOrder(d) => {
                check_dates(self.kind(), d)
            }
        }
    }

    /// Compiles the query for evaluation at `now`: validates it, resolves relative dates and
    /// the 12-month window, and orders each `all`/`any` cheapest test first.
    pub fn compile(&self, now: Timestamp) -> ServiceResult<Matcher> {
        self.validate()?;
        let plan = build(self, now).map_err(ServiceError::invalid)?;
        let test = closure(plan.clone(), MonthWindow::twelve_months_to(now));
        Ok(Matcher { plan, test })
    }
}

pub(super) fn problem(path: &str, message: String) -> ServiceError {
    if path.is_empty() {
        ServiceError::invalid(format!("segment query: {message}"))
    } else {
        ServiceError::invalid(format!("segment query at {path}: {message}"))
    }
}

pub(super) fn step(path: &str, next: &str) -> String {
    if path.is_empty() {
        next.to_string()
    } else {
        format!("{path}.{next}")
    }
}

/// The tag rule of the member service: 1 to 64 lower-case letters, digits, `-`, `_` or `:`.
pub(super) fn check_tag(tag: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} is not 1 to 64 lower-case letters, digits, '-', '_' or ':'"
        ))
    }
}

pub(super) fn check_list(what: &str, len: usize) -> Result<(), String> {
    if len == 0 {
        return Err(format!("{what}: the list is empty"));
    }
    if len > MAX_VALUES {
        return Err(format!(
            "{what}: the list has more than {MAX_VALUES} values"
        ));
    }
    Ok(())
}

pub(super) fn check_codes(what: &str, codes: &[Option<String>]) -> Result<(), String> {
    check_list(what, codes.len())?;
    if codes.iter().any(|c| c.as_deref() == Some("")) {
        return Err(format!(
            "{what}: a code is empty (write null for members without one)"
        ));
    }
    Ok(())
}

pub(super) fn check_attribute(a: &AttributeQuery) -> Result<(), String> {
    if a.name.is_empty() {
        return Err("attribute: the name is empty".into());
    }
    let what = format!("attribute {:?}", a.name);
    match &a.test {
        AttributeTest::In(values) => check_list(&what, values.len()),
        AttributeTest::Number(r) => NumBounds::of(r, &what).map(|_| ()),
        AttributeTest::Eq(_) | AttributeTest::Ne(_) | AttributeTest::Exists(_) => Ok(()),
    }
}

pub(super) fn check_dates(what: &str, d: &DateQuery) -> Result<(), String> {
    if d.after.is_none()
        && d.before.is_none()
        && d.within_days.is_none()
        && d.not_within_days.is_none()
    {
        return Err(format!(
            "{what}: give at least one of after, before, within_days, not_within_days"
        ));
    }
    for (name, days) in [
        ("within_days", d.within_days),
        ("not_within_days", d.not_within_days),
    ] {
        if let Some(days) = days.filter(|&n| n > MAX_DAYS) {
            return Err(format!("{what}: {name} {days} is more than {MAX_DAYS}"));
        }
    }
    if let (Some(after), Some(before)) = (&d.after, &d.before)
        && after.at >= before.at
    {
        return Err(format!(
            "{what}: the window is empty: after {:?} is not earlier than before {:?}",
            after.text, before.text
        ));
    }
    if let (Some(within), Some(not_within)) = (d.within_days, d.not_within_days)
        && within <= not_within
    {
        return Err(format!(
            "{what}: the window is empty: within_days {within} must be more than \
             not_within_days {not_within}"
        ));
    }
    Ok(())
}

impl Range {
    /// The inclusive bounds; an error names `what` and the problem.
    pub(super) fn bounds(&self, what: &str) -> Result<(i64, i64), String> {
        match (self.gte, self.gt, self.lte, self.lt) {
            (None, None, None, None) => {
                return Err(format!("{what}: give at least one of gte, gt, lte, lt"));
            }
            (Some(_), Some(_), _, _) => return Err(format!("{what}: give gte or gt, not both")),
            (_, _, Some(_), Some(_)) => return Err(format!("{what}: give lte or lt, not both")),
            _ => {}
        }
        let lo = match (self.gte, self.gt) {
            (Some(v), _) => Some(v),
            (None, Some(v)) => v.checked_add(1),
            (None, None) => Some(i64::MIN),
        };
        let hi = match (self.lte, self.lt) {
            (Some(v), _) => Some(v),
            (None, Some(v)) => v.checked_sub(1),
            (None, None) => Some(i64::MAX),
        };
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
            _ => Err(format!("{what}: the range {} is empty", self.describe())),
        }
    }

    pub(super) fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("gte", self.gte),
            ("gt", self.gt),
            ("lte", self.lte),
            ("lt", self.lt),
        ]
        .iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name} {v}")))
        .collect();
        parts.join(", ")
    }
}

/// Inclusive score bounds for recency, frequency and monetary, within 1..=5.
pub(super) fn rfm_bounds(q: &RfmQuery) -> Result<[(u8, u8); 3], String> {
    if q.recency.is_none() && q.frequency.is_none() && q.monetary.is_none() {
        return Err("rfm: give at least one of recency, frequency, monetary".into());
    }
    let one = |name: &str, r: &Option<Range>| -> Result<(u8, u8), String> {
        let Some(r) = r else { return Ok((1, 5)) };
        let what = format!("rfm {name}");
        let (lo, hi) = r.bounds(&what)?;
        let (lo, hi) = (lo.max(1), hi.min(5));
        if lo > hi {
            return Err(format!(
                "{what}: the range {} selects no score (scores are 1 to 5)",
                r.describe()
            ));
        }
        // Within 1..=5 now, so the conversions hold; the fallback is never used.
        Ok((u8::try_from(lo).unwrap_or(1), u8::try_from(hi).unwrap_or(5)))
    };
    Ok([
        one("recency", &q.recency)?,
        one("frequency", &q.frequency)?,
        one("monetary", &q.monetary)?,
    ])
}
