//! Tags: added and removed one member at a time or in bulk. Tags are plain labels (`vip`,
//! `campaign:2026-11`) kept in the member's facts, where segments read them.

use super::{ATTEMPTS, Members, View, busy};
use crate::profile::Profile;
use crate::store::{MemberWrite, Written};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use serde::Serialize;

/// Tags a member has at most.
const MAX_TAGS: usize = 200;
/// Members tagged in one batch of a bulk change.
const BULK_BATCH: usize = 500;

/// A tag: 1 to 64 lower-case letters, digits, `-`, `_` or `:` (e.g. `vip`, `campaign:2026-11`).
pub fn check_tag(tag: &str) -> ServiceResult<()> {
    let ok = (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "tag {tag:?} is not 1 to 64 lower-case letters, digits, '-', '_' or ':'"
        )))
    }
}

/// Checks a member's whole set of tags.
pub(crate) fn check_tags(tags: &std::collections::BTreeSet<String>) -> ServiceResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ServiceError::invalid(format!(
            "a member has at most {MAX_TAGS} tags"
        )));
    }
    tags.iter().try_for_each(|t| check_tag(t))
}

/// What a bulk tag change did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BulkTagged {
    /// Members whose tags changed.
    pub changed: usize,
    /// Members that had the tags as asked already.
    pub unchanged: usize,
    /// Members not found, or erased.
    pub skipped: Vec<String>,
}

impl Members {
    /// Adds and removes tags (a tag added and removed in one call ends up removed); the
    /// profile, masked.
    pub async fn tag(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        add: &[String],
        remove: &[String],
    ) -> ServiceResult<Profile> {
        let outcome = self
            .tag_many(tenant, std::slice::from_ref(member), add, remove)
            .await?;
        if let Some(skipped) = outcome.skipped.first() {
            // The reason, with its own error code.
            self.live(tenant, &MemberId::parse(skipped)?).await?;
        }
        self.profile(tenant, member, View::Masked).await
    }

    /// Adds and removes tags on many members, in batches; a member that is missing or
    /// erased is skipped and named.
    pub async fn tag_many(
        &self,
        tenant: &TenantId,
        members: &[MemberId],
        add: &[String],
        remove: &[String],
    ) -> ServiceResult<BulkTagged> {
        for tag in add.iter().chain(remove) {
            check_tag(tag)?;
        }
        let mut outcome = BulkTagged::default();
        for chunk in members.chunks(BULK_BATCH) {
            let mut pending: Vec<&MemberId> = chunk.iter().collect();
            for _ in 0..ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let mut writes = Vec::new();
                let mut written = Vec::new();
                for member in pending.drain(..) {
                    let Some(write) = self.tag_write(tenant, member, add, remove).await? else {
                        outcome.skipped.push(member.to_string());
                        continue;
                    };
                    match write {
                        Some(w) => {
                            writes.push(w);
                            written.push(member);
                        }
                        None => outcome.unchanged += 1,
                    }
                }
                let results = self.repo.write_many(writes, None).await?;
                for (member, result) in written.into_iter().zip(results) {
                    match result {
                        Written::Yes => outcome.changed += 1,
                        _ => pending.push(member),
                    }
                }
            }
            if !pending.is_empty() {
                return Err(busy());
            }
        }
        Ok(outcome)
    }

    /// The write that changes one member's tags: None if the member is missing or erased,
    /// Some(None) if its tags are as asked already.
    async fn tag_write(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        add: &[String],
        remove: &[String],
    ) -> ServiceResult<Option<Option<MemberWrite>>> {
        let Some(mut facts) = self.repo.facts(tenant, member).await? else {
            return Ok(None);
        };
        if !facts.value.is_active() {
            return Ok(None);
        }
        let before = facts.value.tags.clone();
        facts.value.tags.extend(add.iter().cloned());
        for tag in remove {
            facts.value.tags.remove(tag);
        }
        if facts.value.tags == before {
            return Ok(Some(None));
        }
        check_tags(&facts.value.tags)?;
        let added: Vec<_> = facts.value.tags.difference(&before).collect();
        let removed: Vec<_> = before.difference(&facts.value.tags).collect();
        let data = serde_json::json!({"added": added, "removed": removed});
        let event = self.event(tenant.as_str(), member.as_str(), "tagged", &data);
        facts.version += 1;
        Ok(Some(Some(MemberWrite {
            tenant: tenant.to_string(),
            member: member.to_string(),
            facts: Some(facts),
            events: vec![event],
            ..MemberWrite::default()
        })))
    }
}
