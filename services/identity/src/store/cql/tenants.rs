//! Tenants: one partition each, listed in `tenant_list` (one small partition).

use super::rows::ALL;
use super::versioned::VersionedStatements;
use super::{PAGE_SIZE, ScyllaIdentityStore};
use crate::model::Tenant;
use crate::store::{Applied, TenantRepository};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

#[async_trait]
impl TenantRepository for ScyllaIdentityStore {
    async fn tenant(&self, id: &TenantId) -> ServiceResult<Option<Tenant>> {
        let st = self.statements();
        self.get_versioned(&st.tenant, id.as_str().to_string())
            .await
    }

    async fn put_tenant(&self, tenant: &Tenant) -> ServiceResult<Applied> {
        let st = self.statements();
        let id = tenant.id.as_str().to_string();
        if tenant.version == 1 {
            // Listed first: a tenant is never missing from the list (a listed id whose write
            // did not apply is skipped by `tenants`).
            st.list_tenant
                .run(self.session(), (ALL.to_string(), id.clone()))
                .await?;
        }
        self.put_versioned(
            VersionedStatements {
                insert: &st.insert_tenant,
                update: &st.update_tenant,
            },
            id,
            tenant,
        )
        .await
    }

    async fn tenants(&self) -> ServiceResult<Vec<Tenant>> {
        let st = self.statements();
        let ids: Vec<String> = st
            .tenant_ids
            .all_pages(self.session(), (ALL.to_string(),), PAGE_SIZE)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let mut tenants: Vec<Tenant> = self.get_many(&st.tenants_in, ids).await?;
        tenants.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tenants)
    }
}
