//! The OTLP/gRPC span exporter. Its channel runs on a Tokio runtime: the caller's when
//! [`crate::init`] is called inside one, else a runtime of its own with one thread, since the
//! binary sets up telemetry before it starts the runtime its services run on.

use opentelemetry_otlp::WithExportConfig;

/// The exporter to `endpoint`, and the runtime made for it, if one was.
pub(crate) fn otlp(
    endpoint: &str,
) -> Result<
    (
        opentelemetry_otlp::SpanExporter,
        Option<tokio::runtime::Runtime>,
    ),
    Box<dyn std::error::Error>,
> {
    let build = || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.to_string())
            .build()
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok((build()?, None));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()?;
    let exporter = {
        let _entered = runtime.enter();
        build()?
    };
    Ok((exporter, Some(runtime)))
}
