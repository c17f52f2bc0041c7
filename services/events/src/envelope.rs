//! The event envelope partners receive: CloudEvents 1.0 attributes in JSON, with the payload under
//! `data`, and the NATS subject it is published on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The CloudEvents version the envelope follows.
pub const SPEC_VERSION: &str = "1.0";
/// The schema version of every payload this release publishes. A change that removes or renames
/// a field raises it; added fields do not.
pub const SCHEMA_VERSION: u32 = 1;
/// Subjects start with this token, so one account can hold the platform's and other streams.
pub const SUBJECT_ROOT: &str = "member";

/// Where a change happened: the service, the tenant and the member it concerns.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub service: &'a str,
    pub tenant: &'a str,
    pub member: &'a str,
}

/// One event, as published (JSON, `application/json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// CloudEvents `specversion`: always "1.0".
    pub specversion: String,
    /// Unique and stable: a re-publication carries the same id, so consumers and JetStream can
    /// drop the copy.
    pub id: String,
    /// The producing service and tenant, as a URI reference: `/ledger/<tenant>`.
    pub source: String,
    /// `loyalty.<service>.<name>.v<schema>`, e.g. `loyalty.ledger.earned.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// What the event is about within the source: the member id.
    pub subject: String,
    /// When the change happened (the ledger entry's time), RFC 3339.
    pub time: DateTime<Utc>,
    /// Extension attribute: the tenant (retail chain).
    pub tenant: String,
    /// Extension attribute: the schema version of `data`.
    pub schemaversion: u32,
    /// Extension attribute: the position of the change in the service's record of committed
    /// changes. Increasing per service; consumers may use it to order and to resume.
    pub sequence: u64,
    pub datacontenttype: String,
    /// Extension attribute (CloudEvents distributed tracing): the W3C trace context of the
    /// request whose write made the event, when that request was traced and the event is
    /// published by the process that wrote it. Absent otherwise; never part of what makes
    /// two copies of an event the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Extension attribute: the W3C `tracestate` that goes with `traceparent`, if it has
    /// vendor entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The payload as JSON text: encoded once when the event is made, and copied as it is into
    /// every publication. [`Envelope::data_value`] parses it.
    pub data: Box<RawValue>,
}

/// The trace context is left out: a copy published again after a restart has lost it, and is
/// still the same event.
impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.specversion,
            &self.id,
            &self.source,
            &self.event_type,
            &self.subject,
            self.time,
            &self.tenant,
            self.schemaversion,
            self.sequence,
            &self.datacontenttype,
            self.data.get(),
        ) == (
            &other.specversion,
            &other.id,
            &other.source,
            &other.event_type,
            &other.subject,
            other.time,
            &other.tenant,
            other.schemaversion,
            other.sequence,
            &other.datacontenttype,
            other.data.get(),
        )
    }
}

impl Envelope {
    /// An envelope for a change named `name` (e.g. "earned") from `origin`.
    pub fn new(
        origin: Origin<'_>,
        name: &str,
        id: String,
        sequence: u64,
        time: DateTime<Utc>,
        data: Box<RawValue>,
    ) -> Self {
        Self {
            specversion: SPEC_VERSION.into(),
            id,
            source: format!("/{}/{}", origin.service, origin.tenant),
            event_type: event_type(origin.service, name),
            subject: origin.member.into(),
            time,
            tenant: origin.tenant.into(),
            schemaversion: SCHEMA_VERSION,
            sequence,
            datacontenttype: "application/json".into(),
            traceparent: None,
            tracestate: None,
            data,
        }
    }

    /// An envelope for an event a service stored with its payload as JSON text and its time
    /// in Unix milliseconds (the member and campaign outboxes); a payload that is not JSON
    /// (never written so) travels as `null`.
    pub fn from_stored(
        origin: Origin<'_>,
        name: &str,
        id: String,
        sequence: u64,
        at_ms: i64,
        data: &str,
    ) -> Self {
        let time = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
        let data =
            RawValue::from_string(data.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Self::new(origin, name, id, sequence, time, data)
    }

    /// The envelope with `trace` as its trace context: that of the request whose write made
    /// the event, as its change record carries it ([`crate::trace`]). None leaves it as it is.
    pub fn with_trace(mut self, trace: Option<&crate::trace::TraceContext>) -> Self {
        if let Some(trace) = trace {
            self.traceparent = Some(trace.traceparent.clone());
            self.tracestate = trace.tracestate.clone();
        }
        self
    }

    /// The payload, parsed.
    pub fn data_value(&self) -> serde_json::Value {
        // RawValue holds valid JSON by construction.
        serde_json::from_str(self.data.get()).unwrap_or_default()
    }

    /// The short name of the event: `earned` for `loyalty.ledger.earned.v1`.
    pub fn name(&self) -> &str {
        let rest = self.event_type.strip_prefix("loyalty.").unwrap_or("");
        let rest = rest.split_once('.').map_or("", |(_, r)| r);
        rest.rsplit_once('.').map_or(rest, |(name, _)| name)
    }

    /// The service part of the type: `ledger` for `loyalty.ledger.earned.v1`.
    pub fn service(&self) -> &str {
        let rest = self.event_type.strip_prefix("loyalty.").unwrap_or("");
        rest.split_once('.').map_or(rest, |(s, _)| s)
    }

    /// The subject it is published on: `member.<tenant>.<service>.<name>`.
    pub fn nats_subject(&self) -> String {
        subject(&self.tenant, self.service(), self.name())
    }
}

/// `loyalty.<service>.<name>.v<schema>`.
pub fn event_type(service: &str, name: &str) -> String {
    format!("loyalty.{service}.{name}.v{SCHEMA_VERSION}")
}

/// `member.<tenant>.<service>.<name>`. Tenant ids hold only letters, digits, '-', '_' and '.';
/// a '.' would split the token, so it is written as '_'.
pub fn subject(tenant: &str, service: &str, name: &str) -> String {
    format!(
        "{SUBJECT_ROOT}.{}.{service}.{name}",
        tenant.replace('.', "_")
    )
}

/// Every subject of one service: `member.*.<service>.>`.
pub fn service_subjects(service: &str) -> String {
    format!("{SUBJECT_ROOT}.*.{service}.>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            Origin {
                service: "ledger",
                tenant: "acme.cn",
                member: "alice",
            },
            "earned",
            "01J0000000000000000000000A".into(),
            7,
            DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            serde_json::value::to_raw_value(&serde_json::json!({"points": 10})).unwrap(),
        )
    }

    #[test]
    fn names_type_source_and_subject() {
        let e = sample();
        assert_eq!(e.event_type, "loyalty.ledger.earned.v1");
        assert_eq!(e.name(), "earned");
        assert_eq!(e.service(), "ledger");
        assert_eq!(e.source, "/ledger/acme.cn");
        assert_eq!(e.nats_subject(), "member.acme_cn.ledger.earned");
        assert_eq!(service_subjects("ledger"), "member.*.ledger.>");
    }

    #[test]
    fn json_uses_cloudevents_attribute_names() {
        let v = serde_json::to_value(sample()).unwrap();
        for attr in [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "tenant",
            "schemaversion",
            "sequence",
            "data",
        ] {
            assert!(v.get(attr).is_some(), "missing {attr} in {v}");
        }
        assert_eq!(v["time"], "2023-11-14T22:13:20Z");
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn trace_context_is_an_attribute_only_when_there_is_one() {
        let plain = serde_json::to_value(sample()).unwrap();
        assert!(plain.get("traceparent").is_none(), "{plain}");
        assert!(plain.get("tracestate").is_none(), "{plain}");
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut traced = sample();
        traced.traceparent = Some(parent.into());
        let v = serde_json::to_value(&traced).unwrap();
        assert_eq!(v["traceparent"], parent);
        assert!(v.get("tracestate").is_none(), "{v}");
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back.traceparent.as_deref(), Some(parent));
        // The same event, with or without the trace it was published in.
        assert_eq!(back, sample());
    }
}
