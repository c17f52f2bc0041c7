//! Token signing keys: one small partition, read whole at start-up and on rotation.

use super::rows::{ALL, key_from_row, key_row};
use super::{PAGE_SIZE, ScyllaIdentityStore};
use crate::store::{KeyRepository, StoredKey};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;

#[async_trait]
impl KeyRepository for ScyllaIdentityStore {
    async fn signing_keys(&self) -> ServiceResult<Vec<StoredKey>> {
        self.statements()
            .signing_keys
            .all_pages(self.session(), (ALL.to_string(),), PAGE_SIZE)
            .await?
            .into_iter()
            .map(key_from_row)
            .collect()
    }

    /// An upsert: a new key, or its retirement written over it.
    async fn put_signing_key(&self, key: &StoredKey) -> ServiceResult<()> {
        let (kid, body) = key_row(key)?;
        self.statements()
            .put_signing_key
            .run(self.session(), (ALL.to_string(), kid, body))
            .await
    }
}
