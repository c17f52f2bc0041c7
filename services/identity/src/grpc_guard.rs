//! Who may call which method of a service's gRPC port, checked once per call by a tower layer
//! in front of the service, from one table per service ([`Rpc`]): no method carries access
//! code. Callers in the same process never pass here: they use the service's in-process
//! client, after the edge they came in by (the REST gateway) checked them.
//!
//! For every call the layer reads the caller's credential (`authorization: Bearer <access
//! token or API key>`, or `x-api-key`), authenticates it, reads the tenant the request is about
//! from the request message, keeps the caller inside its tenant, and authorizes the method's
//! permission in the request's domain (the tenant, or `tenant/store` with `x-store-id`).
//! Writes, and reads of personal data in the clear, are recorded in the tenant's audit log
//! before the reply leaves. The caller is then forwarded with any call the service makes to
//! another process ([`loyalty_proto::transport::FORWARDED`]), and a write's home epoch and
//! deadline go with the call into the service's stores (`loyalty_common::write_scope`).

use crate::audit::Outcome;
use crate::checks::{Act, Caller, CallerChecks};
use crate::permissions::{Action, Permission};
use crate::service::Principal;
use bytes::Bytes;
use http_body_util::BodyExt;
use loyalty_common::write_scope::{WRITE_SCOPE, WriteScope};
use loyalty_proto::transport::{FORWARDED, Forwarded};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;

/// The largest request the layer reads to find its tenant (tonic's own default limit).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// What a request is about: its tenant, and the target its audit record names.
pub struct Scope {
    pub tenant: String,
    pub target: String,
}

/// One method of a service: the permission it needs and how to read its scope.
pub struct Rpc {
    pub method: &'static str,
    pub permission: Permission,
    /// The audit action of a read that is recorded whoever sent it (personal data in the
    /// clear); writes are always recorded, as `<service>/<method>`.
    pub audited_read: Option<&'static str>,
    /// Reads the scope from the encoded request message.
    pub scope: fn(&[u8]) -> Result<Scope, prost::DecodeError>,
}

/// An entry of a service's table for a read recorded as `$action` in the audit log:
/// `audited_rpc!("member.read_unmasked", "GetProfileUnmasked", ...)`.
#[macro_export]
macro_rules! audited_rpc {
    ($action:literal, $method:literal, $permission:expr, $request:ty, |$r:ident| $scope:expr) => {
        $crate::grpc_guard::Rpc {
            audited_read: Some($action),
            ..$crate::rpc!($method, $permission, $request, |$r| $scope)
        }
    };
}

/// An entry of a service's table: `rpc!("Earn", p::WALLET_WRITE, pb::EarnRequest, |r| (tenant,
/// target))`, where the closure reads the tenant and the audit target from the message.
#[macro_export]
macro_rules! rpc {
    ($method:literal, $permission:expr, $request:ty, |$r:ident| $scope:expr) => {
        $crate::grpc_guard::Rpc {
            method: $method,
            permission: $permission,
            audited_read: None,
            scope: |bytes| {
                let $r = <$request as ::prost::Message>::decode(bytes)?;
                let (tenant, target): (String, String) = $scope;
                Ok($crate::grpc_guard::Scope { tenant, target })
            },
        }
    };
}

/// The guard of one gRPC service.
#[derive(Clone)]
pub struct GuardLayer {
    /// None: every call is let in (a process told of no identity service).
    inner: Option<Arc<Guard>>,
}

struct Guard {
    /// The identity service in this process, or one in another ([`crate::grpc`]).
    identity: Arc<dyn CallerChecks>,
    /// The full service name (`ledger.v1.LedgerService`), which prefixes audited actions.
    service: &'static str,
    rpcs: &'static [Rpc],
}

impl GuardLayer {
    pub fn new(
        identity: Arc<dyn CallerChecks>,
        service: &'static str,
        rpcs: &'static [Rpc],
    ) -> Self {
        Self {
            inner: Some(Arc::new(Guard {
                identity,
                service,
                rpcs,
            })),
        }
    }

    /// `service` behind this guard.
    pub fn around<S>(&self, service: S) -> Guarded<S> {
        tower::Layer::layer(self, service)
    }

    /// No guard: for a port on a trusted network only.
    pub fn open() -> Self {
        Self { inner: None }
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            guard: self.inner.clone(),
            inner,
        }
    }
}

/// A gRPC service behind its guard.
#[derive(Clone)]
pub struct Guarded<S> {
    guard: Option<Arc<Guard>>,
    inner: S,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

type HttpRequest = http::Request<tonic::body::Body>;
type HttpResponse = http::Response<tonic::body::Body>;

impl<S> tower::Service<HttpRequest> for Guarded<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        use tower::ServiceExt;
        // The clone that was made ready serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let write = WriteScope::from_headers(request.headers());
        let Some(guard) = self.guard.clone() else {
            return Box::pin(within(write, inner.oneshot(request)));
        };
        Box::pin(within(write, async move {
            match guard.admit(request).await {
                Ok((admitted, request)) => Ok(guard.serve(inner, admitted, request).await),
                Err(status) => Ok(status.into_http()),
            }
        }))
    }
}

/// Runs `call` within the write scope its caller sent (decision 0019), so that the stores it
/// writes keep the write's epoch and deadline.
async fn within<T>(write: Option<WriteScope>, call: impl Future<Output = T>) -> T {
    match write {
        Some(scope) => WRITE_SCOPE.scope(scope, call).await,
        None => call.await,
    }
}

/// A call let in.
struct Admitted {
    principal: Principal,
    credential: String,
    store: Option<String>,
    request_id: String,
    scope: Scope,
    /// The audit action, when the call is recorded.
    audit_as: Option<String>,
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Guard {
    async fn admit(&self, request: HttpRequest) -> Result<(Admitted, HttpRequest), Status> {
        let path = request.uri().path();
        let method = path.rsplit('/').next().unwrap_or_default();
        let rpc = self
            .rpcs
            .iter()
            .find(|rpc| rpc.method == method)
            .ok_or_else(|| Status::permission_denied("this method is open to no role"))?;
        let headers = request.headers();
        let credential = crate::credential::from_headers(headers)?
            .ok_or_else(crate::credential::missing)?
            .to_string();
        let request_id = header(headers, "x-request-id").unwrap_or("").to_string();
        let store = header(headers, "x-store-id").map(String::from);
        let principal = self.identity.authenticate(&credential).await?;
        let method = rpc.method;
        let (request, message) = buffered(request).await?;
        let scope = (rpc.scope)(&message)
            .map_err(|e| Status::invalid_argument(format!("the request does not decode: {e}")))?;
        let domain = crate::credential::domain(&principal, &scope.tenant, store.as_deref())?;
        let caller = Caller {
            principal: &principal,
            credential: Some(&credential),
        };
        self.identity
            .authorize(caller, &domain, rpc.permission, &request_id)
            .await?;
        let audit_as = match (rpc.audited_read, rpc.permission.action) {
            (Some(action), _) => Some(action.to_string()),
            (None, Action::Write) => Some(format!("{}/{method}", self.service)),
            (None, _) => None,
        };
        let admitted = Admitted {
            audit_as,
            principal,
            credential,
            store,
            request_id,
            scope,
        };
        Ok((admitted, request))
    }

    async fn serve<S>(&self, inner: S, admitted: Admitted, request: HttpRequest) -> HttpResponse
    where
        S: tower::Service<HttpRequest, Response = HttpResponse, Error = Infallible>,
    {
        use tower::ServiceExt;
        let forwarded = Forwarded {
            credential: admitted.credential.clone(),
            store: admitted.store.clone(),
            request_id: admitted.request_id.clone(),
            subject: admitted.principal.subject.clone(),
        };
        let response = match FORWARDED.scope(forwarded, inner.oneshot(request)).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let Some(action) = &admitted.audit_as else {
            return response;
        };
        // A unary call that failed answers with its status in the headers.
        let outcome = match header(response.headers(), "grpc-status") {
            Some(code) if code != "0" => {
                Outcome::Failed(format!("{:?}", tonic::Code::from_bytes(code.as_bytes())))
            }
            _ => Outcome::Allowed,
        };
        let caller = Caller {
            principal: &admitted.principal,
            credential: Some(&admitted.credential),
        };
        let act = Act {
            tenant: &admitted.scope.tenant,
            action,
            target: &admitted.scope.target,
            outcome,
            request_id: &admitted.request_id,
        };
        // The call answers only once its audit record is stored.
        match self.identity.record(caller, act).await {
            Ok(()) => response,
            Err(e) => Status::from(e).into_http(),
        }
    }
}

/// Reads the whole request (a unary call is one small message) and returns it with the
/// message's bytes, for the guard to read its tenant.
async fn buffered(request: HttpRequest) -> Result<(HttpRequest, Bytes), Status> {
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, MAX_REQUEST + 5)
        .collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("the request could not be read: {e}")))?
        .to_bytes();
    // One gRPC frame: a compression flag, a 4-byte length, the message.
    let message = match body.get(..5) {
        Some([0, len @ ..]) => {
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            body.slice(5..(5 + len).min(body.len()))
        }
        Some(_) => {
            return Err(Status::unimplemented(
                "compressed requests are not accepted",
            ));
        }
        None => Bytes::new(),
    };
    let body = tonic::body::Body::new(http_body_util::Full::new(body));
    Ok((http::Request::from_parts(parts, body), message))
}
