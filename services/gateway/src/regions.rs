//! Writes in two regions (decision 0019): a write for a tenant runs here only if the tenant is
//! homed here and this region holds its lease; a write for a tenant homed in the other region
//! is forwarded there, once, with the caller's headers (credentials, idempotency key, request
//! id); otherwise it is refused with `503`, a stable code and `Retry-After`, and the client
//! retries with the same idempotency key. Reads are served here.
//!
//! The routing is `loyalty_region::route`; the view it routes by (the homes and the lease) is
//! kept current by the region keeper, which shares it through [`Routing::directory`].

use crate::problem::problem_response;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, header};
use loyalty_common::ErrorCode;
use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
use loyalty_identity::model::PLATFORM;
use loyalty_region::lease::WRITABLE;
use loyalty_region::route::{Directory, Refusal, Route};
use loyalty_region::{Millis, Region};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Set on a forwarded write: the region that forwarded it. A write that carries it is never
/// forwarded again.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("forwarded-by-region");
/// Set on every answer to a write: the region whose process answered it.
pub const ANSWERED_IN: HeaderName = HeaderName::from_static("answered-in-region");
/// Set on every answer to a read of a tenant: how far behind the tenant's home region the
/// data read may be, in milliseconds. 0 for a tenant homed here while this region holds its
/// lease; for one homed in the other region, the age of that region's newest heartbeat to
/// reach this datacenter plus the heartbeat interval (an estimate of the replication lag,
/// give or take the two regions' clock difference); `unknown` otherwise.
pub const STALENESS_BOUND: HeaderName = HeaderName::from_static("staleness-bound-ms");
/// No heartbeat of the other region has been read yet.
pub const BEAT_UNKNOWN: i64 = i64::MIN;
/// How often each region writes its heartbeat.
const BEAT_EVERY_MS: u64 = 1_000;

/// What the gateway routes writes by.
pub struct Routing {
    pub me: Region,
    /// The homes and this region's lease, kept current by the region keeper.
    pub directory: Arc<RwLock<Directory>>,
    /// The keeper's clock: [`Millis`] since this instant.
    pub clock: Instant,
    /// The other region's gateway, `http://host:port`.
    pub peer_url: String,
    pub client: reqwest::Client,
    /// How long a write may run here (`region.write_time_ms`): it must end inside the lease,
    /// and is cut off after this long.
    pub write_time: Duration,
    pub max_body_bytes: usize,
    /// The other region's newest heartbeat read here (wall clock, ms; [`BEAT_UNKNOWN`] until
    /// one is), kept by the region keeper.
    pub peer_beat_ms: AtomicI64,
    /// When the newest renewal of this region's lease that the control keyspace answered
    /// (held or refused) was sent, on the keeper's clock; [`NEVER_ANSWERED`] before the first.
    pub control_answered_ms: AtomicI64,
    /// The keeper stopped renewing this region's lease to end a cut between the regions
    /// (`loyalty_region::keeper`): said by `/readyz`.
    pub yielding: AtomicBool,
}

/// No renewal has been answered yet.
pub const NEVER_ANSWERED: i64 = -1;

impl Routing {
    pub fn now(&self) -> Millis {
        Millis(self.clock.elapsed().as_millis() as u64)
    }

    /// The home of `tenant` as this process knows it.
    fn home_of(&self, tenant: &str) -> Option<loyalty_region::Home> {
        let directory = self.directory.read().unwrap_or_else(|p| p.into_inner());
        directory.home_of(tenant).cloned()
    }

    /// A renewal sent at `sent` was answered.
    pub fn control_answered(&self, sent: Millis) {
        let sent = i64::try_from(sent.0).unwrap_or(i64::MAX);
        self.control_answered_ms.fetch_max(sent, Ordering::Relaxed);
    }

    /// Why this process is not ready, if it is not: the control keyspace has answered no
    /// renewal sent within the last [`WRITABLE`]. Such a region cannot renew its lease (its
    /// datacenter is lost, or it is cut off from the other region and the witness), so it
    /// writes nothing; unready, the load balancer stops sending it clients, and the other
    /// region's keeper, finding it unhealthy, takes its tenants over once its lease lapses.
    /// A fenced region is ready: its renewals are answered (refused), and it forwards.
    pub fn unready_because(&self) -> Option<String> {
        let answered = self.control_answered_ms.load(Ordering::Relaxed);
        let now = self.now();
        let age = u64::try_from(answered).map(|at| now.since(Millis(at))).ok();
        if self.yielding.load(Ordering::Relaxed) {
            return Some(format!(
                "region {}: cut off from the other region, which still renews its lease: this \
                 region stopped renewing its own so that the other can take its tenants over",
                self.me
            ));
        }
        match age {
            Some(age) if age <= WRITABLE => None,
            Some(age) => Some(format!(
                "region {}: the control keyspace answered no lease renewal for {} ms: this \
                 region cannot write (its datacenter lost, or cut off from the other region and \
                 the witness)",
                self.me, age.0
            )),
            None => Some(format!(
                "region {}: no lease renewal answered yet by the control keyspace",
                self.me
            )),
        }
    }
}

/// The tenant a write's path names (`/v1/tenants/{tenant}/...`), if it names one.
fn tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let tenant = rest.split('/').next()?;
    (!tenant.is_empty() && rest.len() > tenant.len()).then_some(tenant)
}

/// A `503` with `Retry-After: 1`: not now, and the client retries with the same key.
fn retry_later(code: ErrorCode, detail: String) -> Response {
    let mut response = problem_response(code, detail);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn refused(refusal: Refusal, tenant: &str) -> Response {
    let code = match refusal {
        Refusal::Fenced => ErrorCode::RegionFenced,
        Refusal::Moving => ErrorCode::RegionMoving,
        Refusal::NotHome => ErrorCode::NotHomeRegion,
        Refusal::Unknown => ErrorCode::NoHomeRegion,
    };
    retry_later(code, format!("tenant {tenant}: {refusal}"))
}

/// `router` with its writes routed between the regions: the outermost layer, so a forwarded
/// write is authenticated, limited and audited in its home region, once.
pub fn routed(router: axum::Router, routing: Arc<Routing>) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(routing, route_writes))
}

/// The middleware: runs, forwards or refuses each write; reads pass.
pub async fn route_writes(
    State(routing): State<Arc<Routing>>,
    request: Request,
    next: Next,
) -> Response {
    let write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let named = tenant_of(request.uri().path()).map(str::to_string);
    if !write {
        let Some(tenant) = named else {
            return next.run(request).await;
        };
        let staleness = staleness(&routing, &tenant);
        let mut response = next.run(request).await;
        if let Some(bound) = staleness {
            response.headers_mut().insert(STALENESS_BOUND, bound);
        }
        return response;
    }
    // The platform's own writes (tenants created, logins, passwords) are the platform
    // tenant's: homed like any once it is placed, and run where they arrive until then.
    let tenant = named.unwrap_or_else(|| PLATFORM.to_string());
    if tenant == PLATFORM && routing.home_of(PLATFORM).is_none() {
        return next.run(request).await;
    }
    let forwarded = request.headers().contains_key(&FORWARDED_BY);
    let now = routing.now();
    let deadline = now.plus(Millis(routing.write_time.as_millis() as u64));
    let route = {
        // Never poisoned: the keeper replaces the view whole.
        let directory = routing.directory.read().unwrap_or_else(|p| p.into_inner());
        directory.route(&tenant, now, deadline, forwarded)
    };
    let mut response = match route {
        // Cut off once it could outlast the lease; its idempotency key settles its outcome.
        // The epoch and the deadline go with it into the services and their stores, which
        // send nothing after the deadline, in this process or another.
        Route::Local { epoch } => {
            let deadline = tokio::time::Instant::now() + routing.write_time;
            let scope = WriteScope {
                epoch: Some(epoch.0),
                deadline: Some(deadline),
            };
            let run = WRITE_SCOPE.scope(scope, next.run(request));
            match tokio::time::timeout_at(deadline, run).await {
                Ok(response) => response,
                Err(_) => retry_later(
                    ErrorCode::Unavailable,
                    "the write did not finish within the region's write time; retry it \
                     with the same Idempotency-Key"
                        .into(),
                ),
            }
        }
        Route::Forward { to } => forward(&routing, &to, request).await,
        Route::Refuse(refusal) => refused(refusal, &tenant),
    };
    if let Ok(me) = HeaderValue::from_str(routing.me.as_str()) {
        response.headers_mut().entry(ANSWERED_IN).or_insert(me);
    }
    response
}

/// The `Staleness-Bound-Ms` of a read of `tenant`; None when no home is known for it.
fn staleness(routing: &Routing, tenant: &str) -> Option<HeaderValue> {
    let now = routing.now();
    let (homed_here, writable) = {
        let directory = routing.directory.read().unwrap_or_else(|p| p.into_inner());
        let here = directory.home_of(tenant)?.region == routing.me;
        (
            here,
            !directory.stale() && directory.lease.may_write(now, now),
        )
    };
    if homed_here {
        // Fenced, this region's view may be old and the other region may be writing.
        return Some(match writable {
            true => HeaderValue::from_static("0"),
            false => HeaderValue::from_static("unknown"),
        });
    }
    match routing.peer_beat_ms.load(Ordering::Relaxed) {
        BEAT_UNKNOWN => Some(HeaderValue::from_static("unknown")),
        at => {
            let age = chrono::Utc::now().timestamp_millis().saturating_sub(at);
            Some(HeaderValue::from(
                u64::try_from(age).unwrap_or(0) + BEAT_EVERY_MS,
            ))
        }
    }
}

/// Sends the write to the tenant's home region's gateway as the caller sent it, and answers
/// with what that gateway answered.
async fn forward(routing: &Routing, to: &Region, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, routing.max_body_bytes).await else {
        return problem_response(ErrorCode::PayloadTooLarge, "the body is too large".into());
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", routing.peer_url.trim_end_matches('/'));
    let mut sent = routing.client.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            sent = sent.header(name, value);
        }
    }
    sent = sent.header(FORWARDED_BY, routing.me.as_str());
    match sent.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let Ok(body) = answer.bytes().await else {
                // Its outcome is unknown here: the client retries with the same key.
                return retry_later(
                    ErrorCode::Unavailable,
                    format!("the answer of the tenant's home region {to} was cut off; retry"),
                );
            };
            let mut response = (status, Body::from(body)).into_response();
            for (name, value) in &headers {
                let hop = name == header::TRANSFER_ENCODING
                    || name == header::CONNECTION
                    || name == header::CONTENT_LENGTH;
                if !hop {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => retry_later(
            ErrorCode::Unavailable,
            format!("the tenant's home region {to} could not be reached ({e}); retry"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_names_its_tenant_in_its_path() {
        assert_eq!(
            tenant_of("/v1/tenants/acme/members/m1/earnings"),
            Some("acme")
        );
        assert_eq!(tenant_of("/v1/tenants"), None);
        assert_eq!(tenant_of("/v1/tenants/acme"), None);
        assert_eq!(tenant_of("/v1/auth/login"), None);
    }

    /// `region.peer_url` may be `https://`: the client forwarding writes speaks TLS (the
    /// system's roots, which the image carries). Here the connection is refused, which a
    /// client without TLS would not get as far as trying.
    #[tokio::test]
    #[allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.
    async fn the_other_regions_gateway_may_be_reached_over_https() {
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = reserved.local_addr().unwrap().port();
        let url = format!("https://127.0.0.1:{port}/readyz");
        let error = reqwest::Client::new().get(url).send().await.unwrap_err();
        assert!(!error.is_builder(), "https is not supported: {error}");
        assert!(error.is_connect(), "{error}");
    }

    #[allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion.
    fn routing_since(started: Instant) -> Routing {
        let me = Region::parse("a").unwrap();
        Routing {
            directory: Arc::new(RwLock::new(Directory::new(me.clone()))),
            me,
            clock: started,
            peer_url: "http://127.0.0.1:9".into(),
            client: reqwest::Client::new(),
            write_time: Duration::from_secs(1),
            max_body_bytes: 1024,
            peer_beat_ms: AtomicI64::new(BEAT_UNKNOWN),
            control_answered_ms: AtomicI64::new(NEVER_ANSWERED),
            yielding: AtomicBool::new(false),
        }
    }

    #[test]
    fn ready_only_while_the_control_keyspace_answers_renewals() {
        let routing = routing_since(Instant::now());
        let reason = routing.unready_because().unwrap_or_default();
        assert!(reason.contains("no lease renewal answered yet"), "{reason}");
        routing.control_answered(routing.now());
        assert_eq!(routing.unready_because(), None);
        // A late answer to an older renewal does not move the mark back.
        routing.control_answered(Millis(0));
        assert_eq!(routing.unready_because(), None);
        // The newest answer was to a renewal sent 5 s ago.
        let Some(started) = Instant::now().checked_sub(Duration::from_secs(10)) else {
            return;
        };
        let stale = routing_since(started);
        stale.control_answered(Millis(5_000));
        let reason = stale.unready_because().unwrap_or_default();
        assert!(reason.contains("answered no lease renewal"), "{reason}");
    }
}
