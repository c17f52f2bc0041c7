//! The member service's storage port, shaped like the ScyllaDB tables it will have: a profile
//! partition per member written conditionally on its version, an index partition per blind
//! index claimed in the same write, and the tenant's key ring. The embedded adapter keeps
//! them in fjall under `<data_dir>/member`.

use crate::profile::{IndexKind, StoredProfile};
use crate::vault::StoredTenantKey;
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How a conditional write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// The profile changed since it was read: read again and retry.
    Stale,
    /// Another member holds this index.
    Taken(IndexKind, String),
}

#[async_trait]
pub trait MemberRepository: Send + Sync + 'static {
    async fn profile(&self, tenant: &str, member: &str) -> ServiceResult<Option<StoredProfile>>;
    /// Writes `profile` if the stored version is `profile.version - 1`, claiming its indexes
    /// and releasing those in `released`, all or nothing.
    async fn put_profile(
        &self,
        profile: &StoredProfile,
        released: &[(IndexKind, [u8; 32])],
    ) -> ServiceResult<Written>;
    async fn member_by_index(
        &self,
        tenant: &str,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<Option<String>>;
    async fn profiles_of(&self, tenant: &str) -> ServiceResult<Vec<StoredProfile>>;
    async fn tenant_keys(&self, tenant: &str) -> ServiceResult<Vec<StoredTenantKey>>;
    /// Adds a key version unless that version exists (false then).
    async fn add_tenant_key(&self, tenant: &str, key: &StoredTenantKey) -> ServiceResult<bool>;
}

/// Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct EmbeddedMemberStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: fjall::Database,
    profiles: fjall::Keyspace,
    indexes: fjall::Keyspace,
    keys: fjall::Keyspace,
    writing: Mutex<()>,
}

fn storage(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::unavailable(format!("member store: {e}"))
}

fn encode<T: Serialize>(value: &T) -> ServiceResult<Vec<u8>> {
    postcard::to_allocvec(value).map_err(ServiceError::internal)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ServiceResult<T> {
    postcard::from_bytes(bytes).map_err(ServiceError::internal)
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0u8)
}

fn index_key(tenant: &str, kind: IndexKind, index: &[u8; 32]) -> Vec<u8> {
    key(&[tenant.as_bytes(), kind.label().as_bytes(), index])
}

impl EmbeddedMemberStore {
    pub fn open(dir: &Path) -> ServiceResult<Self> {
        let db = fjall::Database::builder(dir)
            .worker_threads(1)
            .open()
            .map_err(|e| {
                ServiceError::unavailable(format!(
                    "cannot open the member store at {} ({e}); is another memberd using it?",
                    dir.display()
                ))
            })?;
        let ks = |name: &str| {
            db.keyspace(name, fjall::KeyspaceCreateOptions::default)
                .map_err(storage)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                profiles: ks("profiles")?,
                indexes: ks("indexes")?,
                keys: ks("tenant_keys")?,
                writing: Mutex::new(()),
                db,
            }),
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _guard = inner.writing.lock().unwrap_or_else(|p| p.into_inner());
            f(&inner)
        })
        .await
        .map_err(ServiceError::internal)?
    }
}

impl Inner {
    fn get<T: DeserializeOwned>(ks: &fjall::Keyspace, key: &[u8]) -> ServiceResult<Option<T>> {
        ks.get(key)
            .map_err(storage)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every row of `tenant` in `ks` (keys start with the tenant and a NUL).
    fn of_tenant<T: DeserializeOwned>(ks: &fjall::Keyspace, tenant: &str) -> ServiceResult<Vec<T>> {
        let prefix = [tenant.as_bytes(), &[0]].concat();
        ks.prefix(prefix)
            .map(|guard| decode(&guard.value().map_err(storage)?))
            .collect()
    }

    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll))
    }
}

#[async_trait]
impl MemberRepository for EmbeddedMemberStore {
    async fn profile(&self, tenant: &str, member: &str) -> ServiceResult<Option<StoredProfile>> {
        let key = key(&[tenant.as_bytes(), member.as_bytes()]);
        Inner::get(&self.inner.profiles, &key)
    }

    async fn put_profile(
        &self,
        profile: &StoredProfile,
        released: &[(IndexKind, [u8; 32])],
    ) -> ServiceResult<Written> {
        let profile = profile.clone();
        let released = released.to_vec();
        self.write(move |inner| {
            let tenant = profile.tenant.as_str();
            let row = key(&[tenant.as_bytes(), profile.member_id.as_bytes()]);
            let stored: Option<StoredProfile> = Inner::get(&inner.profiles, &row)?;
            if stored.map_or(0, |p| p.version) + 1 != profile.version {
                return Ok(Written::Stale);
            }
            for (kind, index) in &profile.indexes {
                let holder: Option<String> =
                    Inner::get(&inner.indexes, &index_key(tenant, *kind, index))?;
                if let Some(holder) = holder.filter(|h| *h != profile.member_id) {
                    return Ok(Written::Taken(*kind, holder));
                }
            }
            let mut batch = inner.batch();
            for (kind, index) in &released {
                batch.remove(&inner.indexes, index_key(tenant, *kind, index));
            }
            for (kind, index) in &profile.indexes {
                let claim = encode(&profile.member_id)?;
                batch.insert(&inner.indexes, index_key(tenant, *kind, index), claim);
            }
            batch.insert(&inner.profiles, row, encode(&profile)?);
            batch.commit().map_err(storage)?;
            Ok(Written::Yes)
        })
        .await
    }

    async fn member_by_index(
        &self,
        tenant: &str,
        kind: IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<Option<String>> {
        Inner::get(&self.inner.indexes, &index_key(tenant, kind, index))
    }

    async fn profiles_of(&self, tenant: &str) -> ServiceResult<Vec<StoredProfile>> {
        Inner::of_tenant(&self.inner.profiles, tenant)
    }

    async fn tenant_keys(&self, tenant: &str) -> ServiceResult<Vec<StoredTenantKey>> {
        Inner::of_tenant(&self.inner.keys, tenant)
    }

    async fn add_tenant_key(&self, tenant: &str, stored: &StoredTenantKey) -> ServiceResult<bool> {
        let row = key(&[tenant.as_bytes(), &stored.version.to_be_bytes()]);
        let value = encode(stored)?;
        self.write(move |inner| {
            if inner.keys.get(&row).map_err(storage)?.is_some() {
                return Ok(false);
            }
            let mut batch = inner.batch();
            batch.insert(&inner.keys, row, value);
            batch.commit().map_err(storage)?;
            Ok(true)
        })
        .await
    }
}
