//! Ports: what the identity service needs from storage, shaped by what ScyllaDB can do. Every
//! record is one partition written by a conditional write on its version (0 for a new one);
//! a staff member's username is a second partition claimed in the same write. Adapters offer
//! nothing more, so the service behaves the same on the embedded store and on ScyllaDB.

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "cql")]
pub mod cql;
pub mod embedded;

use crate::audit::{AuditRecord, ChainHead};
use crate::model::{ApiKey, Session, Staff, Tenant, Username};
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId, TenantId};
use serde::{Deserialize, Serialize};

/// Whether a conditional write applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Yes,
    /// The record changed since it was read (or the username is taken): re-read and retry,
    /// or report the conflict.
    Conflict,
}

#[async_trait]
pub trait TenantRepository: Send + Sync + 'static {
    async fn tenant(&self, id: &TenantId) -> ServiceResult<Option<Tenant>>;
    /// Writes `tenant` if the stored version is `tenant.version - 1` (none for version 1).
    async fn put_tenant(&self, tenant: &Tenant) -> ServiceResult<Applied>;
    async fn tenants(&self) -> ServiceResult<Vec<Tenant>>;
}

#[async_trait]
pub trait StaffRepository: Send + Sync + 'static {
    async fn staff(&self, id: StaffId) -> ServiceResult<Option<Staff>>;
    async fn staff_by_username(
        &self,
        tenant: &str,
        username: &Username,
    ) -> ServiceResult<Option<Staff>>;
    /// Writes `staff` if the stored version is `staff.version - 1`; a new account (version 1)
    /// also claims its username in its tenant, and conflicts if it is taken.
    async fn put_staff(&self, staff: &Staff) -> ServiceResult<Applied>;
    async fn staff_of(&self, tenant: &str) -> ServiceResult<Vec<Staff>>;
}

#[async_trait]
pub trait SessionRepository: Send + Sync + 'static {
    async fn session(&self, id: SessionId) -> ServiceResult<Option<Session>>;
    async fn put_session(&self, session: &Session) -> ServiceResult<Applied>;
    /// Sessions revoked and not yet expired at `now`: what every replica must refuse.
    async fn revoked_sessions(&self, now: Timestamp) -> ServiceResult<Vec<SessionId>>;
}

#[async_trait]
pub trait ApiKeyRepository: Send + Sync + 'static {
    async fn api_key(&self, id: ApiKeyId) -> ServiceResult<Option<ApiKey>>;
    async fn put_api_key(&self, key: &ApiKey) -> ServiceResult<Applied>;
    async fn api_keys_of(&self, tenant: &TenantId) -> ServiceResult<Vec<ApiKey>>;
}

#[async_trait]
pub trait AuditRepository: Send + Sync + 'static {
    /// The newest record of `tenant`'s chain (`*` for the platform's own acts).
    async fn head(&self, tenant: &str) -> ServiceResult<Option<ChainHead>>;
    /// Appends records that continue the chain from `expected` (none: the chain is new),
    /// moving the head to the last of them, in one write.
    async fn append(
        &self,
        tenant: &str,
        expected: Option<&ChainHead>,
        records: &[AuditRecord],
    ) -> ServiceResult<Applied>;
    /// Records of `tenant` from sequence `from` on, oldest first.
    async fn records(
        &self,
        tenant: &str,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>>;
    /// Every tenant with a chain.
    async fn audited_tenants(&self) -> ServiceResult<Vec<String>>;
    /// Makes every append so far durable on disk. Appends themselves need only survive the
    /// process ending (see [`crate::audit_log`]).
    async fn sync(&self) -> ServiceResult<()>;
}

/// A signing key as stored: its PKCS#8 document, and when it stopped signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

#[async_trait]
pub trait KeyRepository: Send + Sync + 'static {
    async fn signing_keys(&self) -> ServiceResult<Vec<StoredKey>>;
    /// Writes a key if none with its id exists, or updates it (retiring it).
    async fn put_signing_key(&self, key: &StoredKey) -> ServiceResult<()>;
}

/// The reply to an administrative write, kept for its `Idempotency-Key`: a retry with the same
/// key and body gets it again instead of acting twice. Fields that were shown once (new API
/// keys, generated passwords) are not kept; `withheld` names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    /// SHA-256 (hex) of the request's method, path and body.
    pub request_hash: String,
    pub status: u16,
    /// The JSON body, without the withheld fields.
    pub body: serde_json::Value,
    pub withheld: Vec<String>,
    pub at: Timestamp,
}

#[async_trait]
pub trait ReplyRepository: Send + Sync + 'static {
    async fn reply(&self, key: &str) -> ServiceResult<Option<StoredReply>>;
    /// Keeps `reply` under `key`, replacing an older one (whose time is up).
    async fn put_reply(&self, key: &str, reply: &StoredReply) -> ServiceResult<()>;
}
