//! How a service reaches another in a different process: a lazily connecting channel,
//! balanced over the callee's replicas, with a deadline on every call, carrying the caller's
//! credential, store and request id so the callee checks the caller itself, and the W3C trace
//! context so that its span joins the caller's trace. Service clients
//! (`<service>::client`) are built on it; retries are theirs, since only they know which
//! calls are idempotent.

use std::time::Duration;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// A gRPC transport. The error type is concrete (not a boxed error) because tonic's client
/// bounds on a boxed error trip a higher-ranked lifetime limitation in async handlers.
pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    tonic::transport::Error,
>;

/// What an outgoing call says about the request that caused it.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// The credential the caller presented (an access token or an API key); empty for work
    /// of the platform's own (a scheduled review).
    pub credential: String,
    /// The store the caller named (`X-Store-Id`), which narrows its permissions.
    pub store: Option<String>,
    pub request_id: String,
    /// Who the edge authenticated (`staff:<id>`, `key:<id>`), for services that record who
    /// acted (a campaign's maker and checker); never sent on: a callee in another process
    /// authenticates the credential itself.
    pub subject: String,
}

tokio::task_local! {
    /// Set by the edge (the gateway, or a gRPC server) around each request it serves.
    pub static FORWARDED: Forwarded;
}

/// How long a call may take, connecting included, unless the client says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// A channel to the replicas at `endpoints` (comma-separated URLs), connected on first use.
pub fn connect(endpoints: &str, deadline: Duration) -> Result<Transport, String> {
    let mut parsed = Vec::new();
    for url in endpoints
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url} is not a gRPC endpoint URL ({e})"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(deadline)
            .tcp_nodelay(true);
        parsed.push(endpoint);
    }
    if parsed.is_empty() {
        return Err("no endpoint given: name one or more URLs, comma-separated".into());
    }
    let channel = if parsed.len() == 1 {
        parsed.remove(0).connect_lazy()
    } else {
        tonic::transport::Channel::balance_list(parsed.into_iter())
    };
    let channel = channel.map_request(|mut request: http::Request<tonic::body::Body>| {
        if let Ok(forwarded) = FORWARDED.try_with(Clone::clone) {
            forward(request.headers_mut(), &forwarded);
        }
        // The callee's span joins the caller's trace (`traceparent`); nothing is written
        // unless this process exports traces.
        loyalty_telemetry::propagation::inject_current(request.headers_mut());
        request
    });
    Ok(BoxCloneSyncService::new(channel))
}

fn forward(headers: &mut http::HeaderMap, forwarded: &Forwarded) {
    let mut set = |name: &'static str, value: &str| {
        // The values came in as header values; one that cannot go out is left out, and the
        // callee then refuses the call as unauthenticated rather than misreading it.
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if !forwarded.credential.is_empty() {
        set("authorization", &format!("Bearer {}", forwarded.credential));
    }
    if let Some(store) = &forwarded.store {
        set("x-store-id", store);
    }
    if !forwarded.request_id.is_empty() {
        set("x-request-id", &forwarded.request_id);
    }
}

/// Runs an idempotent call again, twice at most, when the callee was unreachable or
/// overloaded; any other answer is final.
pub async fn retry_idempotent<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_times(2)
        .with_jitter();
    (|| call())
        .retry(backoff)
        .when(|status: &tonic::Status| {
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::ResourceExhausted
            )
        })
        .await
}
