//! API keys: one partition each, listed per tenant in `api_keys_by_tenant`.

use super::rows::id_blob;
use super::versioned::VersionedStatements;
use super::{PAGE_SIZE, ScyllaIdentityStore};
use crate::model::ApiKey;
use crate::store::{ApiKeyRepository, Applied};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{ApiKeyId, TenantId};

#[async_trait]
impl ApiKeyRepository for ScyllaIdentityStore {
    async fn api_key(&self, id: ApiKeyId) -> ServiceResult<Option<ApiKey>> {
        let st = self.statements();
        self.get_versioned(&st.api_key, id_blob(id.0)).await
    }

    async fn put_api_key(&self, key: &ApiKey) -> ServiceResult<Applied> {
        let st = self.statements();
        let id = id_blob(key.id.0);
        if key.version == 1 {
            // Listed before the key is written, so a key is never missing from its tenant's
            // list. A key's tenant never changes, so later versions need not list it again.
            st.list_api_key
                .run(
                    self.session(),
                    (key.tenant.as_str().to_string(), id.clone()),
                )
                .await?;
        }
        self.put_versioned(
            VersionedStatements {
                insert: &st.insert_api_key,
                update: &st.update_api_key,
            },
            id,
            key,
        )
        .await
    }

    async fn api_keys_of(&self, tenant: &TenantId) -> ServiceResult<Vec<ApiKey>> {
        let st = self.statements();
        let ids: Vec<Vec<u8>> = st
            .api_key_ids_of
            .all_pages(self.session(), (tenant.as_str().to_string(),), PAGE_SIZE)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let mut keys: Vec<ApiKey> = self.get_many(&st.api_keys_in, ids).await?;
        // A listed key whose first write did not apply is not there; one of another tenant
        // cannot be, but is not shown if it were.
        keys.retain(|key| key.tenant == *tenant);
        keys.sort_by_key(|key| key.id);
        Ok(keys)
    }
}
