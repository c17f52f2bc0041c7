//! The birthday index on ScyllaDB: `member_birthdays ((tenant, hash), member)`. Many members
//! share a birthday, so its rows are not claimed as blind indexes are; they follow the same
//! order around the member's batch, so that a row is there whenever a committed profile holds
//! its hash:
//!
//! - before the batch, the row of the profile's birthday is written (after the write's
//!   claims, so a refused write leaves none);
//! - a batch that does not apply deletes it again, unless the stored profile holds it;
//! - after an applied batch, the row the write gives up is deleted, and put back if the
//!   profile holds it once more by then (another write of the member, as `restore_listed`
//!   does for blind indexes).
//!
//! A page shows a member only if its stored profile holds the hash, as `member_by_index`
//! shows only committed claims: a row left by a batch that never applied is skipped.

use super::{ScyllaMemberStore, rows};
use crate::profile::StoredProfile;
use loyalty_common::error::ServiceResult;
use std::collections::HashMap;

/// Rows read per round of a page, at most.
const ROUND: usize = 500;
/// Partitions per `IN` read of member statics (as for tenant pages).
const STATICS_PER_READ: usize = 100;

impl ScyllaMemberStore {
    pub(super) async fn put_birthday(
        &self,
        tenant: &str,
        member: &str,
        birthday: &[u8; 32],
    ) -> ServiceResult<()> {
        self.statements
            .put_birthday
            .run(
                self.session(),
                (tenant.to_string(), birthday.to_vec(), member.to_string()),
            )
            .await
    }

    /// Deletes the member's row of `birthday`, then puts it back if the member's profile
    /// holds it now: a write of the member that committed meanwhile may have given it back.
    pub(super) async fn drop_birthday(
        &self,
        tenant: &str,
        member: &str,
        birthday: &[u8; 32],
    ) -> ServiceResult<()> {
        self.statements
            .drop_birthday
            .run(
                self.session(),
                (tenant.to_string(), birthday.to_vec(), member.to_string()),
            )
            .await?;
        let (profile, _) = self.read_member(tenant, member).await?;
        if holds(profile.as_ref(), birthday) {
            self.put_birthday(tenant, member, birthday).await?;
        }
        Ok(())
    }

    /// Up to `limit` members whose profile holds `birthday`, after `after`, in member order.
    pub(super) async fn birthday_page(
        &self,
        tenant: &str,
        birthday: &[u8; 32],
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<String>> {
        let mut out = Vec::new();
        // Member ids are never empty, so "" is below every one of them.
        let mut cursor = after.unwrap_or("").to_string();
        while out.len() < limit {
            let want = (limit - out.len()).min(ROUND);
            let candidates: Vec<String> = self
                .statements
                .birthday_members
                .rows(
                    self.session(),
                    (
                        tenant.to_string(),
                        birthday.to_vec(),
                        cursor.clone(),
                        i32::try_from(want).unwrap_or(i32::MAX),
                    ),
                )
                .await?
                .into_iter()
                .map(|(member,)| member)
                .collect();
            let Some(last) = candidates.last().cloned() else {
                break;
            };
            let exhausted = candidates.len() < want;
            let mut profiles = HashMap::new();
            for chunk in candidates.chunks(STATICS_PER_READ) {
                let rows = self
                    .statements
                    .statics_of
                    .rows(self.session(), (tenant.to_string(), chunk.to_vec()))
                    .await?;
                for row in rows {
                    let (member, profile, _) = rows::keyed_member_of(row)?;
                    profiles.insert(member, profile);
                }
            }
            for member in candidates {
                if holds(profiles.get(&member).and_then(Option::as_ref), birthday) {
                    out.push(member);
                }
            }
            if exhausted {
                break;
            }
            cursor = last;
        }
        out.truncate(limit);
        Ok(out)
    }
}

fn holds(profile: Option<&StoredProfile>, birthday: &[u8; 32]) -> bool {
    profile.is_some_and(|p| p.birthday.as_ref() == Some(birthday))
}
