//! A span for every gRPC call a server takes, whose parent is the caller's span when the call
//! carries a W3C `traceparent`: one trace across the processes a request passes through.

use std::task::{Context, Poll};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

/// Runs every call inside a server span named after its method (`ledger.v1.LedgerService/Earn`:
/// the method, never the message), child of the caller's trace context. Health checks get no
/// span; with OTLP export off no call does, and no header is read.
#[derive(Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner }
    }
}

/// The service [`GrpcTraceLayer`] makes.
#[derive(Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for GrpcTrace<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // Health probes would only bury the requests' traces under roots of their own.
        if !crate::propagation::is_on() || req.uri().path().starts_with(HEALTH) {
            return self.inner.call(req).instrument(tracing::Span::none());
        }
        let span = server_span(req.uri().path());
        crate::propagation::set_remote_parent(&span, req.headers());
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        future.instrument(span)
    }
}

/// The gRPC health checking service's methods.
const HEALTH: &str = "/grpc.health.v1.Health/";

fn server_span(path: &str) -> tracing::Span {
    let method = path.strip_prefix('/').unwrap_or(path);
    let (service, name) = method.split_once('/').unwrap_or((method, ""));
    tracing::info_span!(
        "grpc",
        otel.name = method,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = name,
    )
}
