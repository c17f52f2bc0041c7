//! Tests of segment queries: the helpers and vocabulary they share; the tests themselves are
//! by concern in the files below.

use super::*;
use crate::facts::RfmScore;
use loyalty_common::ErrorCode;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Evaluation time of the tests: 2026-06-15 12:00 UTC.
fn now() -> Timestamp {
    at("2026-06-15T12:00:00Z")
}

fn at(text: &str) -> Timestamp {
    DateBound::parse(text).unwrap().at()
}

fn days_ago(days: i64) -> Timestamp {
    now().plus_days(-days)
}

fn member() -> MemberFacts {
    MemberFacts::new("m1", at("2025-03-10"))
}

fn query(json: Value) -> Query {
    Query::parse(&json).unwrap_or_else(|e| panic!("{json} should parse: {e}"))
}

fn matches(json: Value, facts: &MemberFacts) -> bool {
    query(json).compile(now()).unwrap().matches(facts)
}

/// The message of the error the query is refused with (always INVALID_ARGUMENT).
fn refused(json: Value) -> String {
    refused_ref(&json)
}

fn refused_ref(json: &Value) -> String {
    match Query::parse(json) {
        Ok(q) => panic!("{json} should be refused, parsed as {q:?}"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            e.message
        }
    }
}

/// The vocabulary the properties and the benchmark draw members and queries from.
const TAGS: &[&str] = &["vip", "newsletter", "campaign:2026-05"];
const TIERS: &[&str] = &["silver", "gold", "diamond"];
const CITIES: &[&str] = &["Shanghai", "Beijing", "Hangzhou"];
const CHANNELS: &[&str] = &["app", "wechat"];
const STORES: &[&str] = &["SH001", "BJ002"];
const STAGES: &[Lifecycle] = &[
    Lifecycle::New,
    Lifecycle::Active,
    Lifecycle::AtRisk,
    Lifecycle::Dormant,
];
const CONSENTS: &[ConsentChannel] = &[
    ConsentChannel::Sms,
    ConsentChannel::Email,
    ConsentChannel::App,
];
const DATES: &[&str] = &[
    "2024-01-01",
    "2025-06-15",
    "2026-01-01",
    "2026-03-01T08:00:00+08:00",
    "2026-06-01",
];

mod bench;
mod matching;
mod properties;
mod validation;
