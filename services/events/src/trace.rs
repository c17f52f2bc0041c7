//! The trace context of each event: that of the request whose write made it, so that a
//! consumer's work joins the trace of the till's request that caused it.
//!
//! It travels in three steps:
//! 1. A service calls [`remember`] with the ids of the events a write makes, as it makes them,
//!    inside the request's span: the context is kept in memory by event id, because the store
//!    may write the change on another task (the ledger's group commit does).
//! 2. The store writes each change record with [`encode_traced`]: the change as postcard,
//!    then the kept context. So whichever process publishes the event (another replica, or
//!    this one after a restart) finds the context in the record.
//! 3. The store reads a record with [`decode_traced`], and the service's outbox puts the
//!    context on the event's envelope (`traceparent`, `tracestate`: attributes and NATS
//!    headers).
//!
//! The context goes after the change, not inside it: a decoder that takes the change alone
//! (a record written before this form, or read by an older binary during a rolling upgrade)
//! reads it as before, since postcard stops at the change's end. A record without a context,
//! or with a form this binary does not know, gives the change without one: a trace helps a
//! diagnosis, the event is complete without it.
//!
//! With trace export off (`telemetry.otlp_endpoint` unset) nothing is kept or written, and
//! [`remember`] costs one atomic load.

use crate::envelope::Envelope;
use loyalty_common::error::{ServiceError, ServiceResult};
use loyalty_telemetry::propagation;
pub use loyalty_telemetry::propagation::TraceContext;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Events whose context is kept at most, and for how long: long enough for the write that
/// makes them, and its retries, to encode them. Past either, the oldest are dropped.
const CAPACITY: usize = 16_384;
const HOLD: Duration = Duration::from_secs(60);

/// The tag of the one form of context a record carries today: `traceparent`, then
/// `tracestate` if any, as postcard.
const CONTEXT_V1: u8 = 1;

#[derive(Default)]
struct Pending {
    by_id: HashMap<String, (TraceContext, Instant)>,
    /// Ids in the order they came, for dropping the oldest.
    order: VecDeque<(Instant, String)>,
}

impl Pending {
    fn insert(&mut self, id: String, trace: TraceContext, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            let stale = now.saturating_duration_since(*at) > HOLD;
            if !stale && self.by_id.len() < CAPACITY {
                break;
            }
            if let Some((at, oldest)) = self.order.pop_front() {
                // Unless the id was remembered again since (it has a newer entry in the order).
                if self.by_id.get(&oldest).is_some_and(|(_, kept)| *kept == at) {
                    self.by_id.remove(&oldest);
                }
            }
        }
        self.order.push_back((now, id.clone()));
        self.by_id.insert(id, (trace, now));
    }
}

/// Set once anything was remembered: until then encoding does not take the lock.
static USED: AtomicBool = AtomicBool::new(false);

fn pending() -> MutexGuard<'static, Pending> {
    static PENDING: OnceLock<Mutex<Pending>> = OnceLock::new();
    // Plain maps, never left half-changed.
    PENDING
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Keeps the current request's trace context for the events `ids` names (called only when
/// there is one): call it where a write's events are made, before the write is encoded.
pub fn remember<I>(ids: impl FnOnce() -> I)
where
    I: IntoIterator<Item = String>,
{
    if let Some(trace) = propagation::current() {
        keep(ids(), &trace);
    }
}

/// Keeps `trace` as the context of the events `ids` names, as [`remember`] does with the
/// current request's.
pub fn keep(ids: impl IntoIterator<Item = String>, trace: &TraceContext) {
    USED.store(true, Ordering::Relaxed);
    let now = Instant::now();
    let mut pending = pending();
    for id in ids {
        pending.insert(id, trace.clone(), now);
    }
}

/// The context kept for the event `id`, if any (`id` is formatted only when something was
/// kept, so that a process without trace export pays nothing).
pub fn kept(id: impl std::fmt::Display) -> Option<TraceContext> {
    if !USED.load(Ordering::Relaxed) {
        return None;
    }
    let id = id.to_string();
    pending().by_id.get(&id).map(|(trace, _)| trace.clone())
}

/// A change record: `change` as postcard, then the trace context kept for its event `id`.
pub fn encode_traced<T: Serialize>(
    change: &T,
    id: impl std::fmt::Display,
) -> ServiceResult<Vec<u8>> {
    let mut record = postcard::to_stdvec(change).map_err(ServiceError::internal)?;
    if let Some(trace) = kept(id) {
        let context = (&trace.traceparent, &trace.tracestate);
        record.push(CONTEXT_V1);
        record.extend(postcard::to_stdvec(&context).map_err(ServiceError::internal)?);
    }
    Ok(record)
}

/// The change of a record [`encode_traced`] wrote (or a plain postcard record), with its
/// trace context if it carries one this binary can read.
pub fn decode_traced<T: DeserializeOwned>(
    record: &[u8],
) -> ServiceResult<(T, Option<TraceContext>)> {
    let (change, rest) = postcard::take_from_bytes(record).map_err(ServiceError::internal)?;
    let trace = match rest.split_first() {
        Some((&CONTEXT_V1, context)) => postcard::from_bytes::<(String, Option<String>)>(context)
            .ok()
            .map(|(traceparent, tracestate)| TraceContext {
                traceparent,
                tracestate,
            }),
        _ => None,
    };
    Ok((change, trace))
}

/// The span a consumer handles a delivery of `event` in: a child of the trace context the
/// message carried (its headers on NATS, the envelope's attributes on the embedded bus). None
/// with trace export off.
pub(crate) fn delivery_span(
    event: &Envelope,
    durable: &str,
    system: &'static str,
    carried: Option<(&str, Option<&str>)>,
) -> tracing::Span {
    if !propagation::is_on() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "event",
        otel.name = %format_args!("process {}", event.event_type),
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.type = "process",
        messaging.consumer.group.name = durable,
        cloudevents.event_id = %event.id,
        cloudevents.event_type = %event.event_type,
    );
    let carried = carried.or_else(|| {
        event
            .traceparent
            .as_deref()
            .map(|parent| (parent, event.tracestate.as_deref()))
    });
    if let Some((traceparent, tracestate)) = carried {
        propagation::set_parent_from(&span, traceparent, tracestate);
    }
    span
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.
    use super::*;

    fn trace(n: usize) -> TraceContext {
        TraceContext {
            traceparent: format!("00-{n:032x}-{n:016x}-01"),
            tracestate: None,
        }
    }

    #[test]
    fn keeps_at_most_its_capacity_dropping_the_oldest() {
        let mut pending = Pending::default();
        let now = Instant::now();
        for n in 0..CAPACITY + 10 {
            pending.insert(n.to_string(), trace(n), now);
        }
        assert_eq!(pending.by_id.len(), CAPACITY);
        assert!(!pending.by_id.contains_key("0"));
        assert!(!pending.by_id.contains_key("9"));
        assert!(pending.by_id.contains_key("10"));
        assert_eq!(pending.order.len(), CAPACITY);
    }

    #[test]
    fn drops_what_it_kept_longer_than_a_write_takes() {
        let mut pending = Pending::default();
        let start = Instant::now();
        pending.insert("old".into(), trace(1), start);
        pending.insert("again".into(), trace(2), start);
        // Remembered again later: its newer entry stays when the older one goes.
        let later = start + HOLD / 2;
        pending.insert("again".into(), trace(3), later);
        pending.insert(
            "new".into(),
            trace(4),
            start + HOLD + Duration::from_secs(1),
        );
        assert!(!pending.by_id.contains_key("old"));
        assert_eq!(pending.by_id["again"].0, trace(3));
        assert!(pending.by_id.contains_key("new"));
        assert_eq!(pending.order.len(), 2);
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Change {
        member: String,
        points: i64,
    }

    fn change() -> Change {
        Change {
            member: "m1".into(),
            points: 250,
        }
    }

    #[test]
    fn a_record_carries_the_context_kept_for_its_event() {
        let kept_trace = TraceContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: Some("acme=1".into()),
        };
        keep(["trace-test-kept".to_string()], &kept_trace);
        let record = encode_traced(&change(), "trace-test-kept").unwrap();
        let (back, trace) = decode_traced::<Change>(&record).unwrap();
        assert_eq!(back, change());
        assert_eq!(trace, Some(kept_trace));
        // A decoder that knows only the change reads it as before.
        assert_eq!(postcard::from_bytes::<Change>(&record).unwrap(), change());

        // An event nobody remembered: the plain record, as written before this form.
        let plain = encode_traced(&change(), "trace-test-none").unwrap();
        assert_eq!(plain, postcard::to_stdvec(&change()).unwrap());
        assert_eq!(decode_traced::<Change>(&plain).unwrap(), (change(), None));
    }

    #[test]
    fn a_context_in_a_form_this_binary_does_not_know_is_left_out() {
        let mut record = postcard::to_stdvec(&change()).unwrap();
        record.extend([2, 7, 7, 7]);
        assert_eq!(decode_traced::<Change>(&record).unwrap(), (change(), None));
        let mut torn = postcard::to_stdvec(&change()).unwrap();
        torn.extend([CONTEXT_V1, 60, b'0']);
        assert_eq!(decode_traced::<Change>(&torn).unwrap(), (change(), None));
        // A record cut inside the change is an error, not a change.
        let whole = postcard::to_stdvec(&change()).unwrap();
        assert!(decode_traced::<Change>(&whole[..2]).is_err());
    }
}
