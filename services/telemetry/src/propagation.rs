//! W3C trace context (`traceparent`, `tracestate`) across process boundaries: read from an
//! incoming request's headers as the parent of its span, written into the headers of the calls
//! it makes, and kept with the events it causes.
//!
//! Nothing here reads or writes a header unless [`crate::init`] turned OTLP export on: with
//! `telemetry.otlp_endpoint` unset, requests, calls and events are exactly as without tracing,
//! and each function costs one atomic load.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header names (lower case, as HTTP/2 and gRPC metadata carry them).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

static ON: AtomicBool = AtomicBool::new(false);

/// Turns propagation on; [`crate::init`] does when it installs the OTLP exporter.
pub(crate) fn turn_on() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether trace context is propagated in this process (OTLP export is on).
pub fn is_on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A trace context as its two W3C header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-<trace id>-<parent span id>-<flags>`.
    pub traceparent: String,
    /// Vendor entries, when there are any.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The trace id: the 32 hex digits after the version.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.split('-').nth(1)
    }
}

/// The current span's trace context, when this process traces and the span belongs to a trace
/// (none outside a request, none with export off: nothing is formatted then).
pub fn current() -> Option<TraceContext> {
    if !is_on() {
        return None;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Carrier::default();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.traceparent.map(|traceparent| TraceContext {
        traceparent,
        tracestate: carrier.tracestate,
    })
}

/// Writes the current span's trace context into the headers of an outgoing call, so that the
/// callee's span is its child. Writes nothing when the current span is in no trace.
pub fn inject_current(headers: &mut http::HeaderMap) {
    if !is_on() {
        return;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// Makes the trace context in the headers of an incoming request the parent of `span`, which
/// must not have been entered yet. Without a valid `traceparent`, `span` starts a trace of
/// its own (or stays the child of the span it was created in).
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !is_on() || !headers.contains_key(TRACEPARENT) {
        return;
    }
    let cx =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    if cx.span().span_context().is_valid() {
        // Fails only when the span is disabled or already started: it then keeps its parent.
        let _ = span.set_parent(cx);
    }
}

/// Makes a trace context carried by a message (an event's `traceparent` and `tracestate`)
/// the parent of `span`, as [`set_remote_parent`] does for request headers.
pub fn set_parent_from(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    if !is_on() {
        return;
    }
    let carrier = Fields {
        traceparent,
        tracestate,
    };
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The propagator's output, kept as strings. An empty `tracestate` (no vendor entries) is left
/// out, as W3C allows: it would only cost a header.
#[derive(Default)]
struct Carrier {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

struct Fields<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Fields<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        let name = http::HeaderName::from_bytes(key.as_bytes());
        let value = http::HeaderValue::try_from(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.

    use super::*;
    use crate::GrpcTraceLayer;
    use opentelemetry::trace::{SpanKind, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use std::sync::{Arc, Mutex};
    use tower::{Layer, Service, ServiceExt};
    use tracing_subscriber::layer::SubscriberExt;

    /// Keeps every finished span.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        fn export(
            &self,
            batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            self.0.lock().unwrap().extend(batch);
            std::future::ready(Ok(()))
        }
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER: &str = "00f067aa0ba902b7";

    fn call(path: &str, headers: http::HeaderMap) -> (http::HeaderMap, Option<TraceContext>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inner = tower::service_fn(|_: http::Request<()>| async {
            // What the handler's own calls and events would carry.
            let mut out = http::HeaderMap::new();
            inject_current(&mut out);
            Ok::<_, std::convert::Infallible>((out, current()))
        });
        let mut service = GrpcTraceLayer.layer(inner);
        let mut request = http::Request::new(());
        *request.uri_mut() = path.parse().unwrap();
        *request.headers_mut() = headers;
        runtime
            .block_on(async { service.ready().await.unwrap().call(request).await })
            .unwrap()
    }

    // One test, because whether propagation is on is the process's: tests side by side would
    // see each other's.
    #[test]
    fn trace_context_goes_in_and_out_of_calls_only_with_export_on() {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut incoming = http::HeaderMap::new();
        let caller = format!("00-{TRACE}-{CALLER}-01");
        incoming.insert(TRACEPARENT, caller.parse().unwrap());

        tracing::subscriber::with_default(subscriber, || {
            // Off: no header read or written, no span of the layer's.
            let (out, carried) = call("/ledger.v1.LedgerService/Earn", incoming.clone());
            assert!(out.is_empty(), "{out:?}");
            assert_eq!(carried, None);
            assert!(kept.0.lock().unwrap().is_empty());

            turn_on();
            // On: the server span is the caller's child, and what the handler sends on names
            // the server span as its parent, in the caller's trace.
            let (out, carried) = call("/ledger.v1.LedgerService/Earn", incoming.clone());
            let sent = out.get(TRACEPARENT).unwrap().to_str().unwrap().to_string();
            assert!(sent.starts_with(&format!("00-{TRACE}-")), "{sent}");
            assert!(!sent.contains(CALLER), "{sent}");
            assert_eq!(out.get(TRACESTATE), None, "no empty tracestate is sent");
            let carried = carried.unwrap();
            assert_eq!(carried.traceparent, sent);
            assert_eq!(carried.trace_id(), Some(TRACE));
            let spans = kept.0.lock().unwrap().clone();
            assert_eq!(spans.len(), 1, "{spans:#?}");
            let server = &spans[0];
            assert_eq!(server.name, "ledger.v1.LedgerService/Earn");
            assert_eq!(server.span_kind, SpanKind::Server);
            assert_eq!(server.span_context.trace_id().to_string(), TRACE);
            assert_eq!(server.parent_span_id.to_string(), CALLER);
            assert!(sent.contains(&server.span_context.span_id().to_string()));

            // Without a traceparent the call starts a trace of its own.
            let (out, _) = call("/ledger.v1.LedgerService/Earn", http::HeaderMap::new());
            let sent = out.get(TRACEPARENT).unwrap().to_str().unwrap();
            assert!(!sent.contains(TRACE), "{sent}");

            // An event's carried context makes a consumer's span its child, tracestate kept.
            let span = tracing::info_span!("event");
            set_parent_from(&span, &caller, Some("vendor=x"));
            let carried = span.in_scope(current).unwrap();
            assert_eq!(carried.trace_id(), Some(TRACE));
            assert_eq!(carried.tracestate.as_deref(), Some("vendor=x"));
        });
    }
}
