//! The embedded store of the identity service: fjall in `<data_dir>/identity`. Rows are JSON
//! (low volume, and readable when an operator needs to look), except audit records (one per
//! write), which are postcard. A write checks its condition and
//! commits under one lock, with an fsync, on a blocking thread: in one process that is what a
//! conditional write on one partition is.

use super::{
    ApiKeyRepository, Applied, AuditRepository, KeyRepository, ReplyRepository, SessionRepository,
    StaffRepository, StoredKey, StoredReply, TenantRepository,
};
use crate::audit::{AuditEvent, AuditRecord, ChainHead, Outcome};
use crate::model::{ApiKey, Session, Staff, Tenant, Username};
use crate::rbac::{PolicyRule, PolicyStore};
use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{ApiKeyId, SessionId, StaffId, TenantId};
use loyalty_common::store_metrics::timed;
use loyalty_common::{ServiceError, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct EmbeddedIdentityStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    tenants: Keyspace,
    staff: Keyspace,
    /// `<tenant> NUL <username>` → staff id.
    usernames: Keyspace,
    sessions: Keyspace,
    api_keys: Keyspace,
    /// `<tenant> NUL <key id>` → nothing.
    api_keys_by_tenant: Keyspace,
    /// A policy rule's JSON → nothing.
    policy: Keyspace,
    /// `<tenant> NUL <seq, big-endian>` → record.
    audit: Keyspace,
    audit_heads: Keyspace,
    keys: Keyspace,
    /// Replies to administrative writes by their idempotency record key.
    replies: Keyspace,
    /// Held from a write's check to its commit.
    writing: Mutex<()>,
}

fn storage(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::unavailable(format!("identity store: {e}"))
}

fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(ServiceError::internal)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    serde_json::from_slice(bytes).map_err(ServiceError::internal)
}

/// Audit records, unlike the other rows, are many (one per write), so they are stored
/// compactly: postcard, with the hashes as bytes, about half the bytes of JSON to write, flush
/// and compact. (Postcard cannot read the tagged `Outcome` enum, hence this mirror.)
#[derive(Serialize, serde::Deserialize)]
struct StoredRecord {
    tenant: String,
    seq: u64,
    actor: String,
    action: String,
    target: String,
    /// 0 allowed, 1 denied, 2 failed, with the code of the last two.
    outcome: u8,
    outcome_code: String,
    request_id: String,
    at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn encode_record(record: &AuditRecord) -> ServiceResult<Vec<u8>> {
    let (outcome, outcome_code) = match &record.event.outcome {
        Outcome::Allowed => (0, String::new()),
        Outcome::Denied(code) => (1, code.clone()),
        Outcome::Failed(code) => (2, code.clone()),
    };
    let bytes = |hex_text: &str| hex::decode(hex_text).map_err(ServiceError::internal);
    let stored = StoredRecord {
        tenant: record.tenant.clone(),
        seq: record.seq,
        actor: record.event.actor.clone(),
        action: record.event.action.clone(),
        target: record.event.target.clone(),
        outcome,
        outcome_code,
        request_id: record.event.request_id.clone(),
        at: record.event.at.0,
        prev_hash: bytes(&record.prev_hash)?,
        hash: bytes(&record.hash)?,
    };
    postcard::to_allocvec(&stored).map_err(ServiceError::internal)
}

fn decode_record(bytes: &[u8]) -> ServiceResult<AuditRecord> {
    let unreadable = |why: String| {
        ServiceError::internal(format!(
            "an audit record cannot be read ({why}); it was altered"
        ))
    };
    let s: StoredRecord = match postcard::from_bytes(bytes) {
        Ok(stored) => stored,
        // Written before records were postcard (JSON starts with '{').
        Err(_) if bytes.first() == Some(&b'{') => {
            return serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()));
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let outcome = match s.outcome {
        0 => Outcome::Allowed,
        1 => Outcome::Denied(s.outcome_code),
        2 => Outcome::Failed(s.outcome_code),
        other => return Err(unreadable(format!("outcome {other}"))),
    };
    Ok(AuditRecord {
        tenant: s.tenant,
        seq: s.seq,
        event: AuditEvent {
            actor: s.actor,
            action: s.action,
            target: s.target,
            outcome,
            request_id: s.request_id,
            at: Timestamp(s.at),
        },
        prev_hash: hex::encode(s.prev_hash),
        hash: hex::encode(s.hash),
    })
}

fn pair(a: &str, b: &[u8]) -> Vec<u8> {
    [a.as_bytes(), &[0], b].concat()
}

impl EmbeddedIdentityStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> ServiceResult<Self> {
        let db = Database::builder(dir)
            .worker_threads(1)
            .open()
            .map_err(|e| {
                ServiceError::unavailable(format!(
                    "cannot open the identity store at {} ({e}); is another memberd using this \
                 data directory?",
                    dir.display()
                ))
            })?;
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(storage)
        };
        let inner = Inner {
            tenants: ks("tenants")?,
            staff: ks("staff")?,
            usernames: ks("usernames")?,
            sessions: ks("sessions")?,
            api_keys: ks("api_keys")?,
            api_keys_by_tenant: ks("api_keys_by_tenant")?,
            policy: ks("policy")?,
            audit: ks("audit")?,
            audit_heads: ks("audit_heads")?,
            keys: ks("signing_keys")?,
            replies: ks("replies")?,
            writing: Mutex::new(()),
            db,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Every port of the identity service, on this store.
    pub fn ports(&self) -> crate::service::IdentityPorts {
        let store = Arc::new(self.clone());
        crate::service::IdentityPorts {
            tenants: store.clone(),
            staff: store.clone(),
            sessions: store.clone(),
            api_keys: store.clone(),
            audit: store.clone(),
            keys: store.clone(),
            replies: store.clone(),
            policy: store,
        }
    }

    /// Runs `f` with the write lock on a blocking thread.
    async fn write<T, F>(&self, f: F) -> ServiceResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, MutexGuard<'_, ()>) -> ServiceResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic mid-write leaves nothing half-committed: the batch commits or not.
            let guard = inner.writing.lock().unwrap_or_else(|p| p.into_inner());
            f(&inner, guard)
        })
        .await
        .map_err(ServiceError::internal)?
    }
}

impl Inner {
    fn get<T: DeserializeOwned>(ks: &Keyspace, key: &[u8]) -> ServiceResult<Option<T>> {
        timed("identity", ks.name(), "get", || {
            ks.get(key).map_err(storage)
        })?
        .map(|v| decode(&v))
        .transpose()
    }

    fn version_of<T: DeserializeOwned>(
        ks: &Keyspace,
        key: &[u8],
        version: impl Fn(&T) -> u64,
    ) -> ServiceResult<u64> {
        Ok(Self::get::<T>(ks, key)?.as_ref().map_or(0, version))
    }

    fn commit(&self, batch: fjall::OwnedWriteBatch) -> ServiceResult<Applied> {
        timed("identity", "journal", "write", || {
            batch.commit().map_err(storage)
        })?;
        Ok(Applied::Yes)
    }

    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(PersistMode::SyncAll))
    }
}

#[async_trait]
impl TenantRepository for EmbeddedIdentityStore {
    async fn tenant(&self, id: &TenantId) -> ServiceResult<Option<Tenant>> {
        Inner::get(&self.inner.tenants, id.as_str().as_bytes())
    }

    async fn put_tenant(&self, tenant: &Tenant) -> ServiceResult<Applied> {
        let tenant = tenant.clone();
        self.write(move |inner, _guard| {
            let key = tenant.id.as_str().as_bytes();
            let stored = Inner::version_of(&inner.tenants, key, |t: &Tenant| t.version)?;
            if stored + 1 != tenant.version {
                return Ok(Applied::Conflict);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.tenants, key, encode(&tenant)?);
            inner.commit(batch)
        })
        .await
    }

    async fn tenants(&self) -> ServiceResult<Vec<Tenant>> {
        self.inner
            .tenants
            .iter()
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
    }
}

#[async_trait]
impl StaffRepository for EmbeddedIdentityStore {
    async fn staff(&self, id: StaffId) -> ServiceResult<Option<Staff>> {
        Inner::get(&self.inner.staff, &id.0.to_bytes())
    }

    async fn staff_by_username(
        &self,
        tenant: &str,
        username: &Username,
    ) -> ServiceResult<Option<Staff>> {
        let key = pair(tenant, username.as_str().as_bytes());
        let Some(id) = self.inner.usernames.get(&key).map_err(storage)? else {
            return Ok(None);
        };
        Inner::get(&self.inner.staff, &id)
    }

    async fn put_staff(&self, staff: &Staff) -> ServiceResult<Applied> {
        let staff = staff.clone();
        self.write(move |inner, _guard| {
            let key = staff.id.0.to_bytes();
            let stored = Inner::version_of(&inner.staff, &key, |s: &Staff| s.version)?;
            if stored + 1 != staff.version {
                return Ok(Applied::Conflict);
            }
            let mut batch = inner.batch();
            if staff.version == 1 {
                let name = pair(&staff.tenant, staff.username.as_str().as_bytes());
                if inner.usernames.contains_key(&name).map_err(storage)? {
                    return Ok(Applied::Conflict);
                }
                batch.insert(&inner.usernames, name, key.to_vec());
            }
            batch.insert(&inner.staff, key.to_vec(), encode(&staff)?);
            inner.commit(batch)
        })
        .await
    }

    async fn staff_of(&self, tenant: &str) -> ServiceResult<Vec<Staff>> {
        let prefix = pair(tenant, b"");
        let mut out = Vec::new();
        for guard in self.inner.usernames.prefix(&prefix) {
            let id = guard.value().map_err(storage)?;
            if let Some(staff) = Inner::get(&self.inner.staff, &id)? {
                out.push(staff);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ReplyRepository for EmbeddedIdentityStore {
    async fn reply(&self, key: &str) -> ServiceResult<Option<StoredReply>> {
        Inner::get(&self.inner.replies, key.as_bytes())
    }

    async fn put_reply(&self, key: &str, reply: &StoredReply) -> ServiceResult<()> {
        let key = key.to_string();
        let value = encode(reply)?;
        self.write(move |inner, _guard| {
            let mut batch = inner.batch();
            batch.insert(&inner.replies, key.as_bytes(), value);
            inner.commit(batch).map(|_| ())
        })
        .await
    }
}

#[async_trait]
impl SessionRepository for EmbeddedIdentityStore {
    async fn session(&self, id: SessionId) -> ServiceResult<Option<Session>> {
        Inner::get(&self.inner.sessions, &id.0.to_bytes())
    }

    async fn put_session(&self, session: &Session) -> ServiceResult<Applied> {
        let session = session.clone();
        self.write(move |inner, _guard| {
            let key = session.id.0.to_bytes();
            let stored = Inner::version_of(&inner.sessions, &key, |s: &Session| s.version)?;
            if stored + 1 != session.version {
                return Ok(Applied::Conflict);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.sessions, key.to_vec(), encode(&session)?);
            inner.commit(batch)
        })
        .await
    }

    async fn revoked_sessions(&self, now: Timestamp) -> ServiceResult<Vec<SessionId>> {
        let mut out = Vec::new();
        for guard in self.inner.sessions.iter() {
            let session: Session = decode(&guard.value().map_err(storage)?)?;
            if session.revoked_at.is_some() && session.expires_at > now {
                out.push(session.id);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ApiKeyRepository for EmbeddedIdentityStore {
    async fn api_key(&self, id: ApiKeyId) -> ServiceResult<Option<ApiKey>> {
        Inner::get(&self.inner.api_keys, &id.0.to_bytes())
    }

    async fn put_api_key(&self, key: &ApiKey) -> ServiceResult<Applied> {
        let api_key = key.clone();
        self.write(move |inner, _guard| {
            let key = api_key.id.0.to_bytes();
            let stored = Inner::version_of(&inner.api_keys, &key, |k: &ApiKey| k.version)?;
            if stored + 1 != api_key.version {
                return Ok(Applied::Conflict);
            }
            let mut batch = inner.batch();
            let listed = pair(api_key.tenant.as_str(), &key);
            batch.insert(&inner.api_keys_by_tenant, listed, []);
            batch.insert(&inner.api_keys, key.to_vec(), encode(&api_key)?);
            inner.commit(batch)
        })
        .await
    }

    async fn api_keys_of(&self, tenant: &TenantId) -> ServiceResult<Vec<ApiKey>> {
        let prefix = pair(tenant.as_str(), b"");
        let mut out = Vec::new();
        for guard in self.inner.api_keys_by_tenant.prefix(&prefix) {
            let k = guard.key().map_err(storage)?;
            if let Some(key) = Inner::get(&self.inner.api_keys, &k[prefix.len()..])? {
                out.push(key);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl AuditRepository for EmbeddedIdentityStore {
    async fn head(&self, tenant: &str) -> ServiceResult<Option<ChainHead>> {
        Inner::get(&self.inner.audit_heads, tenant.as_bytes())
    }

    async fn append(
        &self,
        tenant: &str,
        expected: Option<&ChainHead>,
        records: &[AuditRecord],
    ) -> ServiceResult<Applied> {
        let Some(last) = records.last() else {
            return Ok(Applied::Yes);
        };
        // Encoded before the blocking thread takes over: only bytes move there.
        let head = encode(&last.head())?;
        let rows = records
            .iter()
            .map(|record| {
                Ok((
                    pair(tenant, &record.seq.to_be_bytes()),
                    encode_record(record)?,
                ))
            })
            .collect::<ServiceResult<Vec<_>>>()?;
        let tenant = tenant.to_string();
        let expected = expected.cloned();
        self.write(move |inner, _guard| {
            let stored: Option<ChainHead> = Inner::get(&inner.audit_heads, tenant.as_bytes())?;
            if stored != expected {
                return Ok(Applied::Conflict);
            }
            // Written to the operating system, not synced: the appender syncs on a timer.
            let mut batch = inner.db.batch();
            for (key, value) in rows {
                batch.insert(&inner.audit, key, value);
            }
            batch.insert(&inner.audit_heads, tenant.as_bytes(), head);
            inner.commit(batch)
        })
        .await
    }

    async fn records(
        &self,
        tenant: &str,
        from: u64,
        limit: usize,
    ) -> ServiceResult<Vec<AuditRecord>> {
        let start = pair(tenant, &from.to_be_bytes());
        let end = pair(tenant, &u64::MAX.to_be_bytes());
        self.inner
            .audit
            .range(start..=end)
            .take(limit)
            .map(|guard| decode_record(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn sync(&self) -> ServiceResult<()> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.db.persist(PersistMode::SyncData))
            .await
            .map_err(ServiceError::internal)?
            .map_err(storage)
    }

    async fn audited_tenants(&self) -> ServiceResult<Vec<String>> {
        self.inner
            .audit_heads
            .iter()
            .map(|guard| {
                let k = guard.key().map_err(storage)?;
                Ok(String::from_utf8_lossy(&k).into_owned())
            })
            .collect()
    }
}

#[async_trait]
impl KeyRepository for EmbeddedIdentityStore {
    async fn signing_keys(&self) -> ServiceResult<Vec<StoredKey>> {
        self.inner
            .keys
            .iter()
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
    }

    async fn put_signing_key(&self, key: &StoredKey) -> ServiceResult<()> {
        let key = key.clone();
        self.write(move |inner, _guard| {
            let mut batch = inner.batch();
            batch.insert(&inner.keys, key.kid.as_bytes(), encode(&key)?);
            inner.commit(batch).map(|_| ())
        })
        .await
    }
}

#[async_trait]
impl PolicyStore for EmbeddedIdentityStore {
    async fn load(&self) -> ServiceResult<Vec<PolicyRule>> {
        self.inner
            .policy
            .iter()
            .map(|guard| decode(&guard.key().map_err(storage)?))
            .collect()
    }

    async fn add(&self, rule: &PolicyRule) -> ServiceResult<bool> {
        let key = encode(rule)?;
        self.write(move |inner, _guard| {
            if inner.policy.contains_key(&key).map_err(storage)? {
                return Ok(false);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.policy, key, []);
            inner.commit(batch).map(|_| true)
        })
        .await
    }

    async fn remove(&self, rule: &PolicyRule) -> ServiceResult<bool> {
        let key = encode(rule)?;
        self.write(move |inner, _guard| {
            if !inner.policy.contains_key(&key).map_err(storage)? {
                return Ok(false);
            }
            let mut batch = inner.batch();
            batch.remove(&inner.policy, key);
            inner.commit(batch).map(|_| true)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
