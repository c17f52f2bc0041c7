//! The trace context of each event: that of the request whose write made it, so that a
//! consumer's work joins the trace of the till's request that caused it.
//!
//! A service calls [`remember`] with the ids of the events a write makes, as it makes them,
//! inside the request's span; the publisher puts the context on those events
//! (`traceparent`, `tracestate`: envelope attributes and NATS headers) and forgets it once the
//! bus has confirmed them. It is kept here, in memory, because the outbox records are rows of
//! the services' stores, whose formats have no place for it: an event published by another
//! process, or after a restart, goes without one. A trace helps a diagnosis; the event is
//! complete without it.
//!
//! With trace export off (`telemetry.otlp_endpoint` unset) nothing is kept, and [`remember`]
//! costs one atomic load.

use crate::envelope::Envelope;
use crate::publisher::OutboxEvent;
use loyalty_telemetry::propagation::{self, TraceContext};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Events whose trace is kept at most; past it the oldest are dropped (their publication lags
/// far behind, or another process publishes them).
const CAPACITY: usize = 16_384;

#[derive(Default)]
struct Pending {
    by_id: HashMap<String, TraceContext>,
    /// Ids in the order they came, for dropping the oldest; may hold ids already forgotten.
    order: VecDeque<String>,
}

impl Pending {
    fn insert(&mut self, id: String, trace: TraceContext) {
        while self.by_id.len() >= CAPACITY {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.by_id.remove(&oldest);
                }
                None => break,
            }
        }
        if self.order.len() >= 2 * CAPACITY {
            let by_id = &self.by_id;
            self.order.retain(|id| by_id.contains_key(id));
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id, trace);
    }
}

/// Set once anything was remembered: until then the publisher does not take the lock.
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
/// there is one): call it where a write's events are made, before the write commits.
pub fn remember<I>(ids: impl FnOnce() -> I)
where
    I: IntoIterator<Item = String>,
{
    let Some(trace) = propagation::current() else {
        return;
    };
    USED.store(true, Ordering::Relaxed);
    let mut pending = pending();
    for id in ids() {
        pending.insert(id, trace.clone());
    }
}

/// Puts the kept trace context on each of `events` that has one; returns their ids.
pub(crate) fn attach(events: &mut [OutboxEvent]) -> Vec<String> {
    if !USED.load(Ordering::Relaxed) {
        return Vec::new();
    }
    let pending = pending();
    let mut traced = Vec::new();
    for event in events {
        if let Some(trace) = pending.by_id.get(&event.envelope.id) {
            event.envelope.traceparent = Some(trace.traceparent.clone());
            event.envelope.tracestate = trace.tracestate.clone();
            traced.push(event.envelope.id.clone());
        }
    }
    traced
}

/// Drops the trace context of events the bus has confirmed.
pub(crate) fn forget(ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let mut pending = pending();
    for id in ids {
        pending.by_id.remove(id);
    }
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
        for n in 0..CAPACITY + 10 {
            pending.insert(n.to_string(), trace(n));
        }
        assert_eq!(pending.by_id.len(), CAPACITY);
        assert!(!pending.by_id.contains_key("0"));
        assert!(!pending.by_id.contains_key("9"));
        assert!(pending.by_id.contains_key("10"));
        // Forgotten ids leave the order list too, before it outgrows twice the capacity.
        for n in 0..4 * CAPACITY {
            let id = format!("x{n}");
            pending.insert(id.clone(), trace(n));
            pending.by_id.remove(&id);
        }
        assert!(pending.order.len() <= 2 * CAPACITY);
    }

    fn outbox_event(id: &str) -> OutboxEvent {
        let origin = crate::envelope::Origin {
            service: "ledger",
            tenant: "acme",
            member: "m",
        };
        OutboxEvent {
            envelope: Envelope::from_stored(origin, "earned", id.into(), 1, 0, "{}"),
            committed_ms: 0,
        }
    }

    #[test]
    fn the_publisher_puts_a_kept_context_on_its_event_until_confirmed() {
        let traced = "trace-test-traced";
        let kept = trace(7);
        USED.store(true, Ordering::Relaxed);
        pending().insert(traced.into(), kept.clone());
        let mut events = [outbox_event("trace-test-plain"), outbox_event(traced)];
        let ids = attach(&mut events);
        assert_eq!(ids, [traced]);
        assert_eq!(events[0].envelope.traceparent, None);
        assert_eq!(events[1].envelope.traceparent, Some(kept.traceparent));
        // A failed round's retry carries it again; a confirmed one lets it go.
        let mut again = [outbox_event(traced)];
        assert_eq!(attach(&mut again), [traced]);
        forget(&ids);
        let mut after = [outbox_event(traced)];
        assert!(attach(&mut after).is_empty());
        assert_eq!(after[0].envelope.traceparent, None);
    }
}
