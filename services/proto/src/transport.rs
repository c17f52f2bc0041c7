//! How a service reaches another in a different process: a lazily connecting channel,
//! balanced over the callee's replicas, with a deadline on every call, carrying the caller's
//! credential, store and request id so the callee checks the caller itself, a write's home
//! epoch and deadline (`loyalty_common::write_scope`), and the W3C trace context so that its
//! span joins the caller's trace. Service clients (`<service>::client`) are built on it;
//! retries are theirs, since only they know which calls are idempotent.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;
use tonic::transport::channel::Change;
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

/// How often the names of the callee's endpoints are looked up again, so that replicas that
/// come and go (a headless Kubernetes Service's ready pods) are called, or no longer called,
/// within this.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(10);

/// A channel to the replicas at `endpoints` (comma-separated URLs), connected on first use.
/// Calls are balanced over every address the URLs' host names resolve to, looked up again
/// every [`RESOLVE_EVERY`]: a name with one address per replica (a headless Service) spreads
/// the calls, not only the connections, over the replicas.
pub fn connect(endpoints: &str, deadline: Duration) -> Result<Transport, String> {
    let mut parsed = Vec::new();
    for url in endpoints
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        let endpoint = endpoint(url, deadline)?;
        parsed.push(endpoint);
    }
    if parsed.is_empty() {
        return Err("no endpoint given: name one or more URLs, comma-separated".into());
    }
    let named = parsed.iter().any(|e| host_name(e.uri()).is_some());
    let channel = match tokio::runtime::Handle::try_current() {
        Ok(runtime) if named => {
            let (channel, changes) = tonic::transport::Channel::balance_channel(parsed.len() * 8);
            for template in parsed {
                runtime.spawn(follow_addresses(template, deadline, changes.clone()));
            }
            channel
        }
        _ if parsed.len() == 1 => parsed.remove(0).connect_lazy(),
        _ => tonic::transport::Channel::balance_list(parsed.into_iter()),
    };
    let channel = channel.map_request(|mut request: http::Request<tonic::body::Body>| {
        outgoing(request.headers_mut());
        request
    });
    Ok(BoxCloneSyncService::new(channel))
}

fn endpoint(url: &str, deadline: Duration) -> Result<tonic::transport::Endpoint, String> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("{url} is not a gRPC endpoint URL ({e})"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(deadline)
        .tcp_nodelay(true))
}

/// The URL's host when it is a name to resolve, not an address.
fn host_name(uri: &http::Uri) -> Option<&str> {
    let host = uri.host()?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<std::net::IpAddr>().is_err().then_some(host)
}

type Changes = tokio::sync::mpsc::Sender<Change<SocketAddr, tonic::transport::Endpoint>>;

/// Keeps the balanced channel's endpoints to the addresses `template`'s host resolves to:
/// each new one added, each gone one removed, until the channel is dropped. A failed lookup
/// keeps the addresses known before it.
async fn follow_addresses(
    template: tonic::transport::Endpoint,
    deadline: Duration,
    changes: Changes,
) {
    let uri = template.uri().clone();
    let (Some(host), scheme) = (uri.host(), uri.scheme_str().unwrap_or("http")) else {
        return;
    };
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    let mut known: HashSet<SocketAddr> = HashSet::new();
    loop {
        match tokio::net::lookup_host((host, port)).await {
            Ok(found) => {
                let found: HashSet<SocketAddr> = found.collect();
                for gone in known.difference(&found) {
                    if changes.send(Change::Remove(*gone)).await.is_err() {
                        return;
                    }
                }
                for new in found.difference(&known) {
                    let Ok(endpoint) = endpoint(&format!("{scheme}://{new}"), deadline) else {
                        continue;
                    };
                    if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                        return;
                    }
                }
                known = found;
            }
            Err(e) => {
                tracing::warn!(%host, error = %e, "looking up a service's replicas failed; calling the ones known")
            }
        }
        if changes.is_closed() {
            return;
        }
        tokio::time::sleep(RESOLVE_EVERY).await;
    }
}

/// What every outgoing call carries of the request that caused it.
fn outgoing(headers: &mut http::HeaderMap) {
    if let Ok(forwarded) = FORWARDED.try_with(Clone::clone) {
        forward(headers, &forwarded);
    }
    // A write's home epoch and what is left of its deadline (decision 0019).
    if let Some(scope) = loyalty_common::write_scope::current() {
        scope.to_headers(headers);
    }
    // The callee's span joins the caller's trace (`traceparent`); nothing is written unless
    // this process exports traces.
    loyalty_telemetry::propagation::inject_current(headers);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.
    use super::*;

    #[test]
    fn names_are_resolved_and_addresses_are_not() {
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        assert_eq!(
            host_name(&uri("http://memberd-ledger:50051")),
            Some("memberd-ledger")
        );
        assert_eq!(host_name(&uri("http://10.0.0.7:50051")), None);
        assert_eq!(host_name(&uri("http://[::1]:50051")), None);
    }

    #[tokio::test]
    async fn a_call_carries_its_caller_and_its_writes_epoch_and_deadline() {
        use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
        let caller = Forwarded {
            credential: "k-1".into(),
            request_id: "r-1".into(),
            ..Forwarded::default()
        };
        let write = WriteScope {
            epoch: Some(12),
            deadline: Some(tokio::time::Instant::now() + Duration::from_secs(2)),
        };
        let mut headers = http::HeaderMap::new();
        let call = async { outgoing(&mut headers) };
        FORWARDED
            .scope(caller, WRITE_SCOPE.scope(write, call))
            .await;
        assert_eq!(headers["authorization"], "Bearer k-1");
        assert_eq!(headers["x-request-id"], "r-1");
        let received = WriteScope::from_headers(&headers).unwrap();
        assert_eq!(received.epoch, Some(12));
        assert!(received.deadline.is_some(), "{headers:?}");
        // Outside a write: neither.
        let mut headers = http::HeaderMap::new();
        outgoing(&mut headers);
        assert_eq!(WriteScope::from_headers(&headers), None);
    }

    #[tokio::test]
    async fn every_address_of_a_name_becomes_an_endpoint_until_the_channel_goes() {
        let (changes, mut received) = tokio::sync::mpsc::channel(8);
        let template = endpoint("http://localhost:50051", DEFAULT_DEADLINE).unwrap();
        let follower = tokio::spawn(follow_addresses(template, DEFAULT_DEADLINE, changes));
        let Some(Change::Insert(addr, endpoint)) = received.recv().await else {
            panic!("no address of localhost");
        };
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(endpoint.uri().port_u16(), Some(50051));
        // The balanced channel dropped: the follower stops at its next look.
        drop(received);
        tokio::time::timeout(RESOLVE_EVERY * 2, follower)
            .await
            .expect("the follower stops")
            .unwrap();
    }
}
