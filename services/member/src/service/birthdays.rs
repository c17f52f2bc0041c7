//! Members by birthday ([`crate::birthday`]): the ids of a tenant's members born on a month
//! and day, for the campaign service's daily sweep, which cannot read sealed profiles; and
//! the rebuild of a tenant's index from its profiles, for members registered before the
//! index existed (their profiles hold none until they are next written).

use super::{Members, member_key, vault_error};
use crate::birthday;
use crate::blind::BlindIndex;
use crate::profile::StoredProfile;
use crate::store::{MemberWrite, Written};
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

/// Members in one page of a birthday, at most.
const MAX_PAGE: usize = 1_000;
/// Profiles read, and written at most, per round of a rebuild.
const REBUILD_PAGE: usize = 1_000;

/// What a rebuild of a tenant's birthday index did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BirthdayRebuild {
    /// Profiles looked at.
    pub members: u64,
    /// Profiles whose index row was added, moved or dropped.
    pub changed: u64,
}

impl Members {
    /// Up to `limit` (1 to 1,000) ids of the tenant's members born on `month`/`day`, any
    /// year, after member id `after`, in member id order; and the cursor of the next page
    /// (None on the last). Nothing personal: the sweep learns ids only. 29 February lists
    /// the members born on it; which day they celebrate in other years is the caller's call.
    pub async fn members_born_on(
        &self,
        tenant: &TenantId,
        month: u32,
        day: u32,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<(Vec<String>, Option<String>)> {
        birthday::check_month_day(month, day)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let index = BlindIndex::for_tenant(&self.master, tenant.as_str()).month_day(month, day);
        let page = self
            .repo
            .birthday_members(tenant, &index, after, limit)
            .await?;
        let next = (page.len() == limit)
            .then(|| page.last().cloned())
            .flatten();
        Ok((page, next))
    }

    /// Puts every profile of the tenant in step with the birthday index: each live member's
    /// birthday is opened and hashed, and a profile whose index differs (none, for members
    /// registered before the index) is written with it, which writes its row. Running it
    /// again changes nothing. A member written meanwhile is left as its own write put it.
    pub async fn rebuild_birthday_index(
        &self,
        tenant: &TenantId,
    ) -> ServiceResult<BirthdayRebuild> {
        let blind = BlindIndex::for_tenant(&self.master, tenant.as_str());
        let mut run = BirthdayRebuild::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .repo
                .profiles_page(tenant, after.as_deref(), REBUILD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.member_id.clone());
            let mut writes = Vec::new();
            for mut stored in page {
                run.members += 1;
                let wanted = self.birthday_index_of(tenant, &blind, &stored).await?;
                if stored.birthday == wanted {
                    continue;
                }
                let released_birthday = stored.birthday.take();
                stored.birthday = wanted;
                stored.version += 1;
                writes.push(MemberWrite {
                    tenant: tenant.to_string(),
                    member: stored.member_id.clone(),
                    profile: Some(stored),
                    released_birthday,
                    ..MemberWrite::default()
                });
            }
            let outcomes = self.repo.write_many(writes, None).await?;
            run.changed += outcomes.iter().filter(|w| **w == Written::Yes).count() as u64;
        }
        Ok(run)
    }

    /// The birthday index `stored` should hold: that of its sealed birthday, opened; none
    /// once erased or merged away (out of the sweep), nor for a birthday that is not a date.
    pub(super) async fn birthday_index_of(
        &self,
        tenant: &TenantId,
        blind: &BlindIndex,
        stored: &StoredProfile,
    ) -> ServiceResult<Option<[u8; 32]>> {
        if stored.erased_at.is_some() || stored.merged_into.is_some() {
            return Ok(None);
        }
        let Some(sealed) = stored.sealed.get("birthday") else {
            return Ok(None);
        };
        let ring = self.reading_ring(tenant, stored).await?;
        let value = member_key(&ring, stored)?
            .open("birthday", sealed)
            .map_err(vault_error)?;
        Ok(birthday::month_day(&value).map(|(month, day)| blind.month_day(month, day)))
    }
}
