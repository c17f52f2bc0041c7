//! The birthday sweep: for every running campaign with a birthday trigger, the members whose
//! birthday falls `days_before` days after today in the campaign's time zone (read from the
//! member service's birthday index, which holds no dates in the clear) are rewarded once per
//! member and year, under the key `birthday-<year>`. The sweep looks at today and yesterday,
//! so a day missed while no process ran is made up the next day, and running it again (every
//! sweep, after a `kill -9` halfway) rewards no one twice. In a common year, members born on
//! 29 February are greeted on 28 February.

use super::Campaigns;
use super::grants::Rewarded;
use super::plans::CampaignView;
use super::triggers::is_rule;
use crate::campaign::Trigger;
use chrono::{Datelike, Duration, NaiveDate};
use futures::{StreamExt, stream};
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::member::v1 as member_pb;

/// Rewards of one page of members paid at once: each is a few store writes and a ledger
/// call, and the embedded stores commit concurrent writes together (one sync for many). On
/// ScyllaDB one campaign's grants are conditional writes on its partition and take turns,
/// so more at once would only retry more.
const CONCURRENCY: usize = 32;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BirthdaySweep {
    /// Running birthday campaigns swept.
    pub campaigns: u64,
    /// Members whose birthday the sweep looked at.
    pub members: u64,
    /// Rewards paid now or before (a second sweep finds the first one's).
    pub rewarded: u64,
}

impl Campaigns {
    /// Rewards the birthdays due now in every tenant's running birthday campaigns.
    pub async fn sweep_birthdays(&self) -> ServiceResult<BirthdaySweep> {
        let mut done = BirthdaySweep::default();
        for tenant in self.store.campaign_tenants().await? {
            if !self.works_here(&tenant) {
                continue;
            }
            let tenant = TenantId::parse(tenant.as_str())?;
            let swept = self.sweep_birthdays_of(&tenant).await?;
            done.campaigns += swept.campaigns;
            done.members += swept.members;
            done.rewarded += swept.rewarded;
        }
        Ok(done)
    }

    /// Rewards the birthdays due now in the tenant's running birthday campaigns (the sweep
    /// of one tenant, also asked for by head office to run it at once).
    pub async fn sweep_birthdays_of(&self, tenant: &TenantId) -> ServiceResult<BirthdaySweep> {
        let mut done = BirthdaySweep::default();
        for view in self.campaigns(tenant).await? {
            let Some(Trigger::Birthday { days_before }) = view.record.campaign.trigger else {
                continue;
            };
            if view.phase == "running" {
                done.campaigns += 1;
                self.birthdays_of(tenant, &view, days_before, &mut done)
                    .await?;
            }
        }
        Ok(done)
    }

    async fn birthdays_of(
        &self,
        tenant: &TenantId,
        view: &CampaignView,
        days_before: u32,
        done: &mut BirthdaySweep,
    ) -> ServiceResult<()> {
        let schedule = &view.record.campaign.schedule;
        let today = NaiveDate::default() + Duration::days(schedule.local_day(self.now_ms())?);
        for back in [1, 0] {
            let celebrated = today - Duration::days(back) + Duration::days(i64::from(days_before));
            let key = format!("birthday-{}", celebrated.year());
            for (month, day) in born_on(celebrated) {
                let mut after = String::new();
                loop {
                    let page = self.members_born_on(tenant, month, day, &after).await?;
                    let id = &view.record.campaign.id;
                    let key = &key;
                    let outcomes: Vec<ServiceResult<Rewarded>> =
                        stream::iter(page.member_ids.clone())
                            .map(|member: String| async move {
                                let member = MemberId::parse(member.as_str())?;
                                self.reward(tenant, id, &member, key).await
                            })
                            .buffer_unordered(CONCURRENCY)
                            .collect()
                            .await;
                    for outcome in outcomes {
                        done.members += 1;
                        match outcome {
                            Ok(Rewarded::Granted(_)) => done.rewarded += 1,
                            Ok(Rewarded::Holdout) => {}
                            Err(e) if is_rule(e.code) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if page.next_cursor.is_empty() {
                        break;
                    }
                    after = page.next_cursor;
                }
            }
        }
        Ok(())
    }

    async fn members_born_on(
        &self,
        tenant: &TenantId,
        month: u32,
        day: u32,
        after: &str,
    ) -> ServiceResult<member_pb::MembersPage> {
        let members = self.members.as_ref().ok_or_else(|| {
            ServiceError::unavailable("birthdays are read from the member service: none is set")
        })?;
        members
            .list_members_born_on(member_pb::ListMembersBornOnRequest {
                tenant_id: tenant.to_string(),
                month,
                day,
                after: after.to_string(),
                limit: 1_000,
            })
            .await
    }
}

/// The birthdays celebrated on `date`: its own month and day, and 29 February on
/// 28 February of a common year.
pub fn born_on(date: NaiveDate) -> Vec<(u32, u32)> {
    let mut days = vec![(date.month(), date.day())];
    let leap = NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some();
    if (date.month(), date.day()) == (2, 28) && !leap {
        days.push((2, 29));
    }
    days
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::born_on;
    use chrono::NaiveDate;

    #[test]
    fn leap_day_birthdays_are_greeted_on_28_february_in_common_years() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(born_on(day(2027, 2, 28)), [(2, 28), (2, 29)]);
        assert_eq!(born_on(day(2028, 2, 28)), [(2, 28)]);
        assert_eq!(born_on(day(2028, 2, 29)), [(2, 29)]);
        assert_eq!(born_on(day(2027, 3, 1)), [(3, 1)]);
    }
}
