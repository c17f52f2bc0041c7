//! The member list a console pages through: a tenant's members in member id order, masked,
//! narrowed by tag, tier, store or saved segment. Erased and merged-away members are left
//! out. A page reads at most [`SCAN_BUDGET`] members' facts, so a narrow filter over a large
//! tenant answers in bounded time with fewer members than asked and a cursor to go on from,
//! rather than reading the whole tenant in one request.

use super::*;

/// Facts rows read per request at most, matching or not.
pub const SCAN_BUDGET: usize = 5_000;
/// Facts rows read per store call.
const CHUNK: usize = 256;

/// What a member list is narrowed to; every field set must match.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub tag: Option<String>,
    pub tier: Option<String>,
    pub store: Option<String>,
    /// A saved segment's members as of its last refresh.
    pub segment: Option<String>,
}

impl MemberFilter {
    fn matches(&self, facts: &MemberFacts) -> bool {
        !facts.erased
            && facts.merged_into.is_none()
            && self.tag.as_ref().is_none_or(|tag| facts.tags.contains(tag))
            && self
                .tier
                .as_ref()
                .is_none_or(|tier| facts.tier.as_ref() == Some(tier))
            && self
                .store
                .as_ref()
                .is_none_or(|store| facts.store.as_ref() == Some(store))
    }
}

/// One page: the members (masked), and where the next page starts (none: the end).
#[derive(Debug)]
pub struct MemberPage {
    pub members: Vec<Profile>,
    pub next_cursor: Option<String>,
    /// How many members' facts were read for this page.
    pub scanned: usize,
}

impl Members {
    /// Up to `limit` members after member id `after` that match `filter`, masked.
    pub async fn list_members(
        &self,
        tenant: &TenantId,
        filter: &MemberFilter,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<MemberPage> {
        let limit = limit.clamp(1, 200);
        let mut matched: Vec<(StoredProfile, Versioned<MemberFacts>)> = Vec::new();
        let mut cursor = after.map(String::from);
        let mut scanned = 0;
        let mut more = true;
        while matched.len() < limit && scanned < SCAN_BUDGET && more {
            let want = CHUNK.min(SCAN_BUDGET - scanned);
            let ids_and_facts = match &filter.segment {
                Some(code) => {
                    let (ids, _) = self
                        .segment_members(tenant, code, cursor.as_deref(), want)
                        .await?;
                    let mut rows = Vec::with_capacity(ids.len());
                    for id in ids {
                        let member = MemberId::parse(&id)?;
                        if let Some(facts) = self.repo.facts(tenant, &member).await? {
                            rows.push((id, Some(facts)));
                        } else {
                            rows.push((id, None));
                        }
                    }
                    rows
                }
                None => self
                    .repo
                    .facts_page(tenant, cursor.as_deref(), want)
                    .await?
                    .into_iter()
                    .map(|facts| (facts.value.member_id.clone(), Some(facts)))
                    .collect(),
            };
            more = ids_and_facts.len() == want;
            for (id, facts) in ids_and_facts {
                scanned += 1;
                cursor = Some(id.clone());
                let Some(facts) = facts.filter(|f| filter.matches(&f.value)) else {
                    continue;
                };
                let member = MemberId::parse(&id)?;
                if let Some(stored) = self.repo.profile(tenant, &member).await?
                    && stored.erased_at.is_none()
                    && stored.merged_into.is_none()
                {
                    matched.push((stored, facts));
                }
                if matched.len() == limit {
                    // There may be more after it; the next page finds out.
                    more = true;
                    break;
                }
            }
        }
        let mut members = Vec::with_capacity(matched.len());
        for (stored, facts) in &matched {
            let ring = self.reading_ring(tenant, stored).await?;
            let mut profile = self.opened(&ring, stored, facts)?;
            profile.personal = profile.personal.masked();
            members.push(profile);
        }
        Ok(MemberPage {
            members,
            next_cursor: cursor.filter(|_| more),
            scanned,
        })
    }
}
