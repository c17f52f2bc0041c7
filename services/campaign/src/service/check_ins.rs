//! Daily check-in: a member's app checks the member in to a running check-in campaign once
//! per local day in the campaign's time zone. The day's check-in is stored first (continuing
//! the streak of the day before, or starting one), then rewarded by a grant keyed by the
//! local date, so a retry the same day, or after a crash between the two, answers the same
//! check-in and pays it once.

use super::Campaigns;
use super::grants::Rewarded;
use super::plans::not_found;
use crate::campaign::{Audience, Trigger};
use chrono::{Duration, NaiveDate};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use serde::Serialize;

/// A check-in as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckIn {
    pub campaign: String,
    pub member: String,
    /// The local date checked in (`YYYY-MM-DD` in the campaign's zone).
    pub date: String,
    /// Consecutive days up to `date`.
    pub streak: u32,
    /// Points paid for the day, its streak bonus included.
    pub points: i64,
    /// False when the member had checked in that day already: this is the same check-in.
    pub new: bool,
}

impl Campaigns {
    /// Checks `member` in to check-in campaign `id` today, in the campaign's time zone.
    pub async fn check_in(
        &self,
        tenant: &TenantId,
        id: &str,
        member: &MemberId,
    ) -> ServiceResult<CheckIn> {
        let record = self
            .store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let campaign = &record.campaign;
        if !matches!(campaign.trigger, Some(Trigger::CheckIn { .. })) {
            return Err(ServiceError::invalid(format!(
                "campaign: {id} is not a check-in campaign (its trigger is not `check_in`)"
            )));
        }
        let now = self.now_ms();
        let phase = record.phase(&campaign.schedule.resolve()?, now);
        if phase != "running" {
            return Err(ServiceError::new(
                ErrorCode::CampaignNotRunning,
                format!("campaign {id} is {phase}: members check in only while it runs"),
            ));
        }
        if !matches!(campaign.audience, Audience::Everyone) {
            self.check_audience(tenant, campaign, member).await?;
        }
        let today = campaign.schedule.local_day(now)?;
        let data = serde_json::json!({"campaign": id, "date": date_of(today)});
        let event = self.event(tenant.as_str(), member.as_str(), "member_checked_in", &data);
        let checked = self
            .store
            .check_in(tenant, id, member.as_str(), today, vec![event])
            .await?;
        let arm = campaign.check_in_arm(checked.streak);
        let reward = campaign
            .reward_of(&arm)
            .ok_or_else(|| ServiceError::internal("a check-in arm without its reward"))?;
        let date = date_of(checked.day);
        let key = format!("checkin-{date}");
        let points = match self
            .grant_arm(tenant, &record, member, (&key, now), (&arm, &reward))
            .await?
        {
            Rewarded::Granted(g) => i64::try_from(g.units).unwrap_or(i64::MAX),
            Rewarded::Holdout => 0,
        };
        Ok(CheckIn {
            campaign: id.to_string(),
            member: member.to_string(),
            date,
            streak: checked.streak,
            points,
            new: checked.new,
        })
    }
}

/// A local day number as its date.
fn date_of(day: i64) -> String {
    (NaiveDate::default() + Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}
