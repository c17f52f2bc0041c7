//! Administrative writes are idempotent: every POST of the administration routes carries an
//! `Idempotency-Key` (as the ledger's do), and its successful reply is kept for a day
//! (`loyalty_identity::service::REPLY_KEPT_SECS`). A retry with the same key and the same
//! request gets the kept reply again, with `Idempotent-Replayed: true`, instead of creating a
//! second tenant or failing with `ALREADY_EXISTS`; the same key with another request is
//! refused with `IDEMPOTENCY_CONFLICT`. Keys are per caller. A retry that arrives while the
//! first is still being handled is told to retry; that guard is per process, so two retries
//! racing on different gateway replicas can both act.
//!
//! What a reply showed once (a new API key, a generated password, a second factor's secret)
//! is not kept: a retry of such a request gets `ALREADY_APPLIED`, with what was kept (the
//! new key's or account's id), so that the caller can revoke or reset and try again.

use crate::problem::{IDEMPOTENCY_HEADER, problem_response};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::IdempotencyKey;
use loyalty_common::write_scope::{self, WRITE_SCOPE};
use loyalty_identity::client::IdentityClient;
use loyalty_identity::service::{IdentityService, Principal};
use loyalty_identity::store::StoredReply;
use loyalty_proto::identity::v1 as pb;
use loyalty_proto::transport::FORWARDED;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

/// Fields of a reply that are shown once and never kept.
const SHOWN_ONCE: &[&str] = &["key", "initial_password", "temporary_password", "totp_uri"];

/// What the middleware needs.
#[derive(Clone)]
pub struct Replays {
    pub identity: Arc<dyn IdentityClient>,
    /// The largest body read (the gateway's body limit).
    pub max_body_bytes: usize,
    /// Idempotency records being handled now: a second request with the same key waits for
    /// no one and is told to retry.
    pub in_flight: Arc<Mutex<HashSet<String>>>,
}

/// Frees an idempotency record's slot however the request ends.
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The middleware on the administration routes, inside the access guard (which has put the
/// caller in the request's extensions).
pub async fn replay(State(replays): State<Replays>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(caller) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let key = match idempotency_key(&request) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, replays.max_body_bytes).await else {
        return problem_response(ErrorCode::PayloadTooLarge, "the body is too large".into());
    };
    let path = parts.uri.path().to_string();
    let record = IdentityService::reply_record(&caller.subject, &path, key.as_str());
    let kept_as = pb::KeptReplyRef {
        path: path.clone(),
        idempotency_key: key.as_str().to_string(),
    };
    let request_hash = sha256_hex(&[parts.method.as_str().as_bytes(), path.as_bytes(), &body]);
    // Claimed before looking: a retry that looked while the first was finishing could
    // otherwise find nothing kept yet and act again.
    let claimed = replays
        .in_flight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(record.clone());
    if !claimed {
        return problem_response(
            ErrorCode::IdempotencyConflict,
            "a request with this Idempotency-Key is still being handled; retry shortly".into(),
        );
    }
    let slot = InFlight {
        set: Arc::clone(&replays.in_flight),
        key: record.clone(),
    };
    let kept = replays
        .identity
        .get_kept_reply(&caller, kept_as.clone())
        .await;
    match kept.map(|k| k.reply) {
        Ok(Some(kept)) => match serde_json::from_str(&kept.json) {
            Ok(kept) => return replayed(kept, &request_hash),
            Err(e) => return problem_response(ErrorCode::Internal, format!("a kept reply: {e}")),
        },
        Ok(None) => {}
        Err(e) => return problem_response(e.code, e.message),
    }
    // Acting and keeping the reply run to the end even if the client goes away meanwhile:
    // its retry then finds the reply instead of acting twice.
    let identity = Arc::clone(&replays.identity);
    let request = Request::from_parts(parts, Body::from(body));
    let act = async move {
        let _slot = slot;
        let response = next.run(request).await;
        if !response.status().is_success() {
            return response;
        }
        let (parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
            return problem_response(ErrorCode::Internal, "the reply could not be read".into());
        };
        let kept = keepable(parts.status, &bytes, request_hash);
        let keep = pb::KeepReplyRequest {
            r#ref: Some(kept_as),
            reply: Some(pb::Document {
                json: serde_json::to_string(&kept).unwrap_or_default(),
            }),
        };
        if let Err(e) = identity.keep_reply(&caller, keep).await {
            // The write is done; only a retry's replay is lost, which then acts again.
            tracing::warn!(error = %e, "keeping an administrative reply for its key failed");
        }
        Response::from_parts(parts, Body::from(bytes))
    };
    // The task carries the caller on to the services it calls in other processes, and the
    // write's epoch and deadline (decision 0019) into them and their stores.
    let scope = write_scope::current();
    let act = async move {
        match scope {
            Some(scope) => WRITE_SCOPE.scope(scope, act).await,
            None => act.await,
        }
    };
    let done = match FORWARDED.try_with(Clone::clone) {
        Ok(forwarded) => tokio::spawn(FORWARDED.scope(forwarded, act).in_current_span()),
        Err(_) => tokio::spawn(act.in_current_span()),
    };
    match done.await {
        Ok(response) => response,
        Err(_) => problem_response(ErrorCode::Internal, "the request failed".into()),
    }
}

fn idempotency_key(request: &Request) -> Result<IdempotencyKey, Box<Response>> {
    let refuse = |code, why: &str| Box::new(problem_response(code, why.to_string()));
    let value = request.headers().get(IDEMPOTENCY_HEADER).ok_or_else(|| {
        refuse(
            ErrorCode::IdempotencyKeyMissing,
            "send an Idempotency-Key header (1 to 128 letters, digits, '-', '_' or '.') with \
             every POST; a retry with the same key is answered without acting twice",
        )
    })?;
    let text = value.to_str().map_err(|_| {
        refuse(
            ErrorCode::InvalidArgument,
            "the Idempotency-Key header must be ASCII",
        )
    })?;
    IdempotencyKey::parse(text).map_err(|e| Box::new(problem_response(e.code, e.message)))
}

/// The reply as kept: its JSON without the fields shown once.
/// Its time is the identity service's, set when it keeps it.
fn keepable(status: StatusCode, bytes: &Bytes, request_hash: String) -> StoredReply {
    let mut body: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let mut withheld = Vec::new();
    if let Some(fields) = body.as_object_mut() {
        for name in SHOWN_ONCE {
            if fields.remove(*name).is_some() {
                withheld.push((*name).to_string());
            }
        }
    }
    StoredReply {
        request_hash,
        status: status.as_u16(),
        body,
        withheld,
        at: loyalty_common::Timestamp(0),
    }
}

/// The answer to a retry.
fn replayed(kept: StoredReply, request_hash: &str) -> Response {
    if kept.request_hash != request_hash {
        return problem_response(
            ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was used with another request; use a new key for a new request"
                .into(),
        );
    }
    if !kept.withheld.is_empty() {
        return problem_response(
            ErrorCode::AlreadyApplied,
            format!(
                "this request was applied already ({}); {} was shown once and is not kept: \
                 revoke or reset what it created and send a new request with a new key",
                kept.body,
                kept.withheld.join(", ")
            ),
        );
    }
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(kept.body)).into_response();
    response.headers_mut().insert(
        header::HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    response
}
