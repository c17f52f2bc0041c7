//! Staff: one partition each. A username is claimed in `usernames` (`IF NOT EXISTS`) before
//! the account's first version is written; a tenant's partition there is its staff list.

use super::rows::id_blob;
use super::versioned::VersionedStatements;
use super::{PAGE_SIZE, ScyllaIdentityStore};
use crate::model::{Staff, Username};
use crate::store::{Applied, StaffRepository};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::StaffId;
use std::collections::HashSet;

#[async_trait]
impl StaffRepository for ScyllaIdentityStore {
    async fn staff(&self, id: StaffId) -> ServiceResult<Option<Staff>> {
        let st = self.statements();
        self.get_versioned(&st.staff, id_blob(id.0)).await
    }

    async fn staff_by_username(
        &self,
        tenant: &str,
        username: &Username,
    ) -> ServiceResult<Option<Staff>> {
        let st = self.statements();
        let claim = (tenant.to_string(), username.as_str().to_string());
        let Some((holder,)) = st.username_holder.first(self.session(), claim).await? else {
            return Ok(None);
        };
        // A claim whose account was never written (its write failed) names nobody.
        let staff: Option<Staff> = self.get_versioned(&st.staff, holder).await?;
        Ok(staff.filter(|s| s.tenant == tenant && s.username == *username))
    }

    async fn put_staff(&self, staff: &Staff) -> ServiceResult<Applied> {
        let st = self.statements();
        let id = id_blob(staff.id.0);
        if staff.version != 1 {
            return self.put_versioned(staff_statements(st), id, staff).await;
        }
        let tenant = staff.tenant.clone();
        let username = staff.username.as_str().to_string();
        let claimed = st
            .claim_username
            .applied(
                self.session(),
                (tenant.clone(), username.clone(), id.clone()),
            )
            .await?;
        if !claimed {
            // Taken, unless by this very account in an earlier attempt whose reply was lost.
            let holder = st
                .username_holder
                .first(self.session(), (tenant.clone(), username.clone()))
                .await?;
            if holder.is_none_or(|(holder,)| holder != id) {
                return Ok(Applied::Conflict);
            }
        }
        let written = self
            .put_versioned(staff_statements(st), id.clone(), staff)
            .await?;
        if written == Applied::Conflict && claimed {
            // The account's own write did not apply (its id is taken): the claim made here is
            // released, and only while it is still this account's. A write that failed with an
            // error keeps its claim: it may have applied, and releasing the claim would leave
            // an account whose username someone else could take.
            if let Err(e) = st
                .release_username
                .applied(self.session(), (tenant.clone(), username.clone(), id))
                .await
            {
                tracing::warn!(
                    tenant, username, error = %e,
                    "releasing the username claim of a staff account that was not written failed; \
                     the username stays taken"
                );
            }
        }
        Ok(written)
    }

    async fn staff_of(&self, tenant: &str) -> ServiceResult<Vec<Staff>> {
        let st = self.statements();
        // (account, username) of every claim: an account may appear under a second username
        // whose release failed, and is listed under its own only.
        let claims: HashSet<(Vec<u8>, String)> = st
            .usernames_of
            .all_pages(self.session(), (tenant.to_string(),), PAGE_SIZE)
            .await?
            .into_iter()
            .map(|(username, holder)| (holder, username))
            .collect();
        let mut ids: Vec<Vec<u8>> = claims.iter().map(|(holder, _)| holder.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut staff: Vec<Staff> = self.get_many(&st.staff_in, ids).await?;
        // Only accounts that hold their claim: a claim left by a failed write names nobody.
        staff.retain(|s| {
            s.tenant == tenant
                && claims.contains(&(id_blob(s.id.0), s.username.as_str().to_string()))
        });
        staff.sort_by(|a, b| a.username.as_str().cmp(b.username.as_str()));
        Ok(staff)
    }
}

fn staff_statements(st: &super::IdentityStatements) -> VersionedStatements<'_, Vec<u8>> {
    VersionedStatements {
        insert: &st.insert_staff,
        update: &st.update_staff,
    }
}
