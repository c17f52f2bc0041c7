//! Counts and times every gRPC call by method and status, as a tower layer on the tonic server.

use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// The metadata key the stable error code travels in (`loyalty_common::error::CODE_METADATA_KEY`;
/// repeated, not imported, so that telemetry stays below every other crate).
const ERROR_CODE_HEADER: &str = "x-error-code";

/// Records `grpc_requests_total{method,code,error}` (`code` the gRPC status number, `error`
/// the stable error code or `none`) and `grpc_request_duration_seconds{method}`.
#[derive(Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, RB> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = GrpcMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        GrpcMetricsFuture {
            method: req.uri().path().to_string(),
            started: Instant::now(),
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    pub struct GrpcMetricsFuture<F> {
        method: String,
        started: Instant,
        #[pin]
        inner: F,
    }
}

impl<F, RB, E> Future for GrpcMetricsFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        // A unary call's error is a trailers-only response: its status (and the stable code
        // beside it) are in the headers seen here. A missing status means the call succeeded,
        // or is a stream whose status comes in trailers, which this layer does not see.
        let header = |name: &str| {
            result
                .as_ref()
                .ok()
                .and_then(|resp| resp.headers().get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code = match &result {
            Ok(_) => header("grpc-status").unwrap_or_else(|| "0".into()),
            Err(_) => "transport".into(),
        };
        let error = header(ERROR_CODE_HEADER).unwrap_or_else(|| "none".into());
        let method = std::mem::take(this.method);
        metrics::histogram!("grpc_request_duration_seconds", "method" => method.clone())
            .record(this.started.elapsed().as_secs_f64());
        metrics::counter!("grpc_requests_total", "method" => method, "code" => code, "error" => error)
            .increment(1);
        Poll::Ready(result)
    }
}
