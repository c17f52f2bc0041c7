//! Telemetry for every service: a tracing subscriber (text or JSON), OTLP trace export when an
//! endpoint is configured, and a Prometheus recorder whose text the gateway serves at `/metrics`.
//!
//! Spans and logs never carry personal data: member ids are pseudonymous platform ids, and request
//! bodies are never logged.

mod export;
mod grpc_metrics;
mod grpc_trace;
pub mod propagation;

pub use grpc_metrics::GrpcMetricsLayer;
pub use grpc_trace::{GrpcTrace, GrpcTraceLayer};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Telemetry settings (`[telemetry]` in the config file, `MEMBERD_TELEMETRY__*` in the environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Log as JSON lines instead of text.
    pub json: bool,
    /// An `EnvFilter` directive, e.g. `info,loyalty_ledger=debug`. `RUST_LOG` wins when set.
    pub filter: String,
    /// OTLP/gRPC endpoint for traces, e.g. `http://127.0.0.1:4317`; unset turns export off.
    pub otlp_endpoint: Option<String>,
    /// Service name reported to the trace backend; unset: `memberd`, or `memberd-<target>`
    /// once named for a target ([`TelemetryConfig::named_for`]).
    pub service_name: Option<String>,
}

impl TelemetryConfig {
    /// These settings for a process that plays `target` (`ledger`, `gateway`, ...): an unset
    /// service name becomes `memberd-<target>`, so that each process of a platform run one
    /// service per process is told apart in the trace backend.
    pub fn named_for(mut self, target: &str) -> Self {
        if self.service_name.is_none() {
            self.service_name = Some(format!("memberd-{target}"));
        }
        self
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            json: false,
            filter: "info,fjall=warn,lsm_tree=warn".into(),
            otlp_endpoint: None,
            service_name: None,
        }
    }
}

/// Keeps the trace exporter alive; flushes it when dropped.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// The exporter's own runtime, when `init` ran outside one; outlives the last flush.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Installs the global subscriber. Call once, from the binary; tests need not call it.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, Box<dyn std::error::Error>> {
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&config.filter))?;
    let fmt_layer = if config.json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(true).boxed()
    };
    let mut provider = None;
    let mut runtime = None;
    let otel_layer = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (exporter, own_runtime) = export::otlp(endpoint)?;
            runtime = own_runtime;
            let name = config.service_name.as_deref().unwrap_or("memberd");
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(name.to_string())
                .build();
            let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = tracer_provider.tracer("memberd");
            provider = Some(tracer_provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    if provider.is_some() {
        // W3C trace context in and out of every request, call and event; only with export on,
        // so that without it nothing on the wire changes.
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        propagation::turn_on();
    }
    Ok(TelemetryGuard { provider, runtime })
}

/// The process-wide Prometheus recorder, installed on first use so every test in one process
/// shares it instead of failing on a second install.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Durations (`*_seconds`) in seconds; counts of things per operation (`*_size`) in
        // powers of two.
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Suffix("_size".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                )
            })
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours then renders empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
