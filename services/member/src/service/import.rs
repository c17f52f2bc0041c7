//! Bulk registration for `memberd import`: the tenant's key ring and blind-index key are
//! opened once, rows are sealed on as many threads as the caller likes ([`Importer::prepare`]
//! is CPU work only), and each batch commits in one durable write together with the
//! import's checkpoint, so an interrupted import resumes exactly after its last batch.

use super::Members;
use crate::blind::BlindIndex;
use crate::service::ProfileInput;
use crate::store::{MemberWrite, SettingWrite, Written};
use crate::vault::TenantRing;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};

/// Where import checkpoints are kept among a tenant's settings.
const CHECKPOINTS: &str = "import_checkpoint";

pub struct Importer<'a> {
    members: &'a Members,
    tenant: TenantId,
    ring: TenantRing,
    blind: BlindIndex,
}

impl Members {
    /// An importer into `tenant`.
    pub async fn importer(&self, tenant: &TenantId) -> ServiceResult<Importer<'_>> {
        Ok(Importer {
            members: self,
            tenant: tenant.clone(),
            ring: self.ring(tenant).await?,
            blind: BlindIndex::for_tenant(&self.master, tenant.as_str()),
        })
    }
}

impl Importer<'_> {
    /// The sealed rows of a new member, ready to commit; an error names what is wrong.
    pub fn prepare(&self, member: &MemberId, input: ProfileInput) -> ServiceResult<MemberWrite> {
        self.members.new_member(
            &self.ring,
            &self.blind,
            self.tenant.as_str(),
            member.as_str(),
            input,
            "import",
        )
    }

    /// Commits `writes` and the checkpoint `name` = `value` in one durable batch.
    pub async fn commit(
        &self,
        writes: Vec<MemberWrite>,
        name: &str,
        value: Vec<u8>,
    ) -> ServiceResult<Vec<Written>> {
        let setting = SettingWrite {
            tenant: self.tenant.to_string(),
            kind: CHECKPOINTS.into(),
            name: name.into(),
            value,
        };
        self.members.repo.write_many(writes, Some(setting)).await
    }

    /// The checkpoint `name` of this tenant, if an import saved one.
    pub async fn checkpoint(&self, name: &str) -> ServiceResult<Option<Vec<u8>>> {
        self.members
            .repo
            .setting(&self.tenant, CHECKPOINTS, name)
            .await
    }

    /// Forgets the checkpoint `name` (an import that finished, or one started over).
    pub async fn clear_checkpoint(&self, name: &str) -> ServiceResult<()> {
        self.members
            .repo
            .put_setting(&self.tenant, CHECKPOINTS, name, None)
            .await
    }

    /// The member of the tenant that holds this blind index, if any (dry runs use it).
    pub async fn holder(
        &self,
        kind: crate::profile::IndexKind,
        index: &[u8; 32],
    ) -> ServiceResult<Option<String>> {
        self.members
            .repo
            .member_by_index(&self.tenant, kind, index)
            .await
    }

    /// Whether a member with this id exists already.
    pub async fn exists(&self, member: &MemberId) -> ServiceResult<bool> {
        Ok(self
            .members
            .repo
            .profile(&self.tenant, member)
            .await?
            .is_some())
    }
}
