//! Shared handler state and the transport to the services. In one process the gateway calls the
//! ledger's gRPC service in memory (same encoding, no socket); in `--target gateway` mode it calls
//! a remote one over a channel. Handlers cannot tell the difference.

use loyalty_identity::service::IdentityService;
use loyalty_ledger::grpc_access::Authenticated;
use loyalty_member::service::Members;
use loyalty_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use std::convert::Infallible;
use std::sync::Arc;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// A gRPC transport: in-process service or network channel.
///
/// The error type is concrete (not a boxed error) because tonic's client bounds on a boxed
/// error trip a higher-ranked lifetime limitation in async handlers.
pub type GrpcTransport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    tonic::transport::Error,
>;

pub type LedgerClient = LedgerServiceClient<GrpcTransport>;

/// Wraps a tonic server (e.g. `LedgerServiceServer`) as an in-process transport. Each call
/// carries the caller the gateway authenticated (an extension, which no network peer can
/// send), so the service checks its roles again without verifying the token twice.
pub fn in_process<S>(server: S) -> GrpcTransport
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let server = server.map_request(|mut request: http::Request<tonic::body::Body>| {
        if let Ok(caller) = crate::access::CALLER.try_with(|c| c.authenticated.clone()) {
            request.extensions_mut().insert::<Authenticated>(caller);
        }
        request
    });
    BoxCloneSyncService::new(server.map_err(|e: Infallible| match e {}))
}

/// A lazily connecting channel to a remote service. Each call forwards the credential the
/// caller sent the gateway (`authorization: Bearer ...`), the store it named (`x-store-id`)
/// and the request id, so the service authenticates and authorizes the caller itself.
pub fn remote(endpoint: &str) -> Result<GrpcTransport, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy();
    let channel = channel.map_request(|mut request: http::Request<tonic::body::Body>| {
        if let Ok(caller) = crate::access::CALLER.try_with(Clone::clone) {
            forward(request.headers_mut(), &caller);
        }
        request
    });
    Ok(BoxCloneSyncService::new(channel))
}

fn forward(headers: &mut http::HeaderMap, caller: &crate::access::Caller) {
    let mut set = |name: &'static str, value: &str| {
        // The values came in as header values; one that cannot go out is left out, and the
        // service then refuses the call as unauthenticated rather than misreading it.
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if !caller.credential.is_empty() {
        set("authorization", &format!("Bearer {}", caller.credential));
    }
    if let Some(store) = &caller.authenticated.store {
        set("x-store-id", store);
    }
    if !caller.request_id.is_empty() {
        set("x-request-id", &caller.request_id);
    }
}

#[derive(Clone)]
pub struct AppState {
    ledger: LedgerClient,
    identity: Arc<IdentityService>,
    members: Arc<Members>,
}

impl AppState {
    pub fn new(
        ledger: GrpcTransport,
        identity: Arc<IdentityService>,
        members: Arc<Members>,
    ) -> Self {
        Self {
            ledger: LedgerServiceClient::new(ledger),
            identity,
            members,
        }
    }

    /// The member service (in this process).
    pub fn members(&self) -> &Arc<Members> {
        &self.members
    }

    pub fn identity(&self) -> &Arc<IdentityService> {
        &self.identity
    }

    /// A client handle; cheap to clone.
    pub fn ledger(&self) -> LedgerClient {
        self.ledger.clone()
    }
}
