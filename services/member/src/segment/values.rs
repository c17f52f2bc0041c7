//! The compiled tests' values: integer ranges, time spans, code and string sets, attribute
//! tests and numeric bounds.

use super::*;

/// Every lifecycle stage's bit.
pub(super) const ALL_STAGES: u8 = 0b1111;

pub(super) fn lifecycle_bit(stage: Lifecycle) -> u8 {
    match stage {
        Lifecycle::New => 1,
        Lifecycle::Active => 2,
        Lifecycle::AtRisk => 4,
        Lifecycle::Dormant => 8,
    }
}

/// Inclusive integer bounds.
#[derive(Debug, Clone, Copy)]
pub(super) struct IntRange {
    pub(super) lo: i64,
    pub(super) hi: i64,
}

impl IntRange {
    pub(super) fn contains(&self, v: i64) -> bool {
        self.lo <= v && v <= self.hi
    }
}

/// Inclusive bounds in milliseconds; empty (`lo > hi`) when absolute and relative bounds
/// exclude each other at this `now`, which then matches no one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    lo: i64,
    hi: i64,
}

impl Span {
    pub(super) fn of(d: &DateQuery, now: Timestamp) -> Span {
        let mut lo = i64::MIN;
        let mut hi = i64::MAX;
        if let Some(after) = &d.after {
            lo = lo.max(after.at.0);
        }
        if let Some(before) = &d.before {
            hi = hi.min(before.at.0.saturating_sub(1));
        }
        if let Some(days) = d.within_days {
            lo = lo.max(now.plus_days(-i64::from(days)).0);
        }
        if let Some(days) = d.not_within_days {
            hi = hi.min(now.plus_days(-i64::from(days)).0.saturating_sub(1));
        }
        Span { lo, hi }
    }

    pub(super) fn contains(&self, at: Timestamp) -> bool {
        self.lo <= at.0 && at.0 <= self.hi
    }
}

/// Codes (tier, channel, store), sorted for binary search, and whether "none" is one of them.
#[derive(Debug, Clone)]
pub(super) struct CodeSet {
    codes: StrSet,
    none: bool,
}

impl CodeSet {
    pub(super) fn of(codes: &[Option<String>]) -> Self {
        CodeSet {
            codes: StrSet::of(codes.iter().flatten()),
            none: codes.iter().any(Option::is_none),
        }
    }

    pub(super) fn contains(&self, code: Option<&str>) -> bool {
        match code {
            Some(code) => self.codes.contains(code),
            None => self.none,
        }
    }
}

/// String equality that does not call the C library's `memcmp` for short strings: most
/// strings a segment compares (tags, codes, cities) are a few bytes, where the call costs
/// more than the comparison.
#[inline]
pub(super) fn same(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 32 {
        return a == b;
    }
    while let (Some((x, rest_a)), Some((y, rest_b))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if u64::from_ne_bytes(*x) != u64::from_ne_bytes(*y) {
            return false;
        }
        a = rest_a;
        b = rest_b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether the member has the tag: a scan for the usual few tags, the tree's search for many.
#[inline]
pub(super) fn has_tag(f: &MemberFacts, tag: &str) -> bool {
    if f.tags.len() <= 8 {
        f.tags.iter().any(|t| same(t, tag))
    } else {
        f.tags.contains(tag)
    }
}

/// The attribute's value: a scan for the usual few attributes, the tree's search for many.
#[inline]
pub(super) fn attribute<'a>(f: &'a MemberFacts, name: &str) -> Option<&'a String> {
    if f.attributes.len() <= 8 {
        f.attributes
            .iter()
            .find_map(|(k, v)| same(k, name).then_some(v))
    } else {
        f.attributes.get(name)
    }
}

/// A sorted, de-duplicated list of strings.
#[derive(Debug, Clone)]
pub(super) struct StrSet(Box<[Box<str>]>);

impl StrSet {
    pub(super) fn of<'a>(values: impl Iterator<Item = &'a String>) -> Self {
        let mut v: Vec<Box<str>> = values.map(|s| s.as_str().into()).collect();
        v.sort_unstable();
        v.dedup();
        StrSet(v.into_boxed_slice())
    }

    pub(super) fn contains(&self, s: &str) -> bool {
        // Linear for the usual handful, where it beats binary search's branches.
        if self.0.len() <= 8 {
            self.0.iter().any(|v| same(v, s))
        } else {
            self.0.binary_search_by(|v| (**v).cmp(s)).is_ok()
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum AttrTest {
    Eq(Box<str>),
    Ne(Box<str>),
    In(StrSet),
    Exists(bool),
    Number(NumBounds),
}

impl AttrTest {
    pub(super) fn matches(&self, value: Option<&String>) -> bool {
        match (self, value) {
            (AttrTest::Exists(present), v) => v.is_some() == *present,
            (_, None) => false,
            (AttrTest::Eq(want), Some(v)) => same(want, v),
            (AttrTest::Ne(want), Some(v)) => !same(want, v),
            (AttrTest::In(set), Some(v)) => set.contains(v),
            (AttrTest::Number(bounds), Some(v)) => bounds.matches(v),
        }
    }
}

/// Numeric attribute bounds: each a value and whether it is inclusive.
#[derive(Debug, Clone, Copy)]
pub(super) struct NumBounds {
    lo: Option<(f64, bool)>,
    hi: Option<(f64, bool)>,
}

/// An attribute value read as a number: exactly as an integer when it is one.
pub(super) enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub(super) fn read(text: &str) -> Option<Number> {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number::Int(i));
        }
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float)
    }

    /// How the number compares to a finite bound.
    pub(super) fn cmp(&self, bound: f64) -> Option<Ordering> {
        match *self {
            Number::Float(f) => f.partial_cmp(&bound),
            Number::Int(i) => Some(cmp_int_float(i, bound)),
        }
    }
}

/// Compares an integer with a finite float exactly (casting the integer to f64 would round
/// values beyond 2^53).
pub(super) fn cmp_int_float(i: i64, f: f64) -> Ordering {
    // 2^63, exactly representable.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let floor = f.floor();
    // In [-2^63, 2^63) and integral, so the cast is exact.
    let whole = floor as i64;
    match i.cmp(&whole) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    }
}

impl NumBounds {
    pub(super) fn of(r: &NumberRange, what: &str) -> Result<NumBounds, String> {
        match (r.gte, r.gt, r.lte, r.lt) {
            (None, None, None, None) => {
                return Err(format!("{what}: give at least one of gte, gt, lte, lt"));
            }
            (Some(_), Some(_), _, _) => return Err(format!("{what}: give gte or gt, not both")),
            (_, _, Some(_), Some(_)) => return Err(format!("{what}: give lte or lt, not both")),
            _ => {}
        }
        if [r.gte, r.gt, r.lte, r.lt]
            .iter()
            .flatten()
            .any(|v| !v.is_finite())
        {
            return Err(format!("{what}: a bound is not a finite number"));
        }
        let lo = r.gte.map(|v| (v, true)).or(r.gt.map(|v| (v, false)));
        let hi = r.lte.map(|v| (v, true)).or(r.lt.map(|v| (v, false)));
        if let (Some((lo, lo_in)), Some((hi, hi_in))) = (lo, hi)
            && (lo > hi || (lo == hi && !(lo_in && hi_in)))
        {
            return Err(format!("{what}: the numeric range is empty"));
        }
        Ok(NumBounds { lo, hi })
    }

    pub(super) fn matches(&self, text: &str) -> bool {
        let Some(n) = Number::read(text) else {
            return false;
        };
        let above = self.lo.is_none_or(|(b, inclusive)| match n.cmp(b) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => inclusive,
            _ => false,
        });
        above
            && self.hi.is_none_or(|(b, inclusive)| match n.cmp(b) {
                Some(Ordering::Less) => true,
                Some(Ordering::Equal) => inclusive,
                _ => false,
            })
    }
}
