//! A campaign sent to its whole audience at once (a segment's members, as of the segment's
//! last refresh), and its dry run: what it would give, to how many members, and what that
//! costs against its budget, before anyone approves it. Both walk the segment a page at a
//! time; the broadcast rewards each member once under the key `broadcast`, so running it
//! again (after a crash, or to reach members who joined the segment since) rewards only
//! those not rewarded yet.

use super::Campaigns;
use super::grants::Rewarded;
use super::plans::not_found;
use crate::campaign::variant::{Arm, arm};
use crate::campaign::{Audience, Campaign, CampaignRecord};
use futures::StreamExt;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use serde::Serialize;
use std::collections::BTreeMap;

/// The grant key of a broadcast: one per member and campaign.
pub const BROADCAST_KEY: &str = "broadcast";
/// Members rewarded at once by a broadcast.
const IN_FLIGHT: usize = 16;

/// What a broadcast did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Broadcast {
    pub members: u64,
    /// Rewarded now or by an earlier run.
    pub rewarded: u64,
    pub holdout: u64,
    /// Refused because the budget ran out.
    pub over_budget: u64,
    /// Refused by the frequency cap.
    pub capped: u64,
    /// Whose reward could not be paid (left to the sweep, or released).
    pub failed: u64,
}

/// What a campaign would do, before it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DryRun {
    /// Members in the audience.
    pub audience: u64,
    /// Members per arm (variant ids, and `holdout`).
    pub arms: BTreeMap<String, u64>,
    /// Budget units the audience outside the holdout would take.
    pub units: u64,
    /// The budget's limit, if it has one.
    pub budget: Option<u64>,
    /// Members the budget reaches, in the order the segment lists them.
    pub within_budget: u64,
}

impl Campaigns {
    /// Rewards every member of the running campaign's segment not rewarded yet.
    pub async fn broadcast(&self, tenant: &TenantId, id: &str) -> ServiceResult<Broadcast> {
        let record = self.record(tenant, id).await?;
        let now = self.now_ms();
        let window = record.campaign.schedule.resolve()?;
        if record.phase(&window, now) != "running" {
            return Err(ServiceError::new(
                ErrorCode::CampaignNotRunning,
                format!(
                    "campaign {id} is {}: broadcast it while it runs",
                    record.phase(&window, now)
                ),
            ));
        }
        let mut done = Broadcast::default();
        let mut cursor = String::new();
        loop {
            let (members, next) = self
                .audience_page(tenant, &record.campaign, &cursor)
                .await?;
            let outcomes: Vec<ServiceResult<Rewarded>> = futures::stream::iter(members)
                .map(|m| {
                    let record = &record;
                    async move { self.grant_to(tenant, record, &m, BROADCAST_KEY, now).await }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
            for outcome in outcomes {
                done.members += 1;
                match outcome {
                    Ok(Rewarded::Granted(_)) => done.rewarded += 1,
                    Ok(Rewarded::Holdout) => done.holdout += 1,
                    Err(e) if e.code == ErrorCode::BudgetExhausted => done.over_budget += 1,
                    Err(e) if e.code == ErrorCode::FrequencyCapReached => done.capped += 1,
                    Err(_) => done.failed += 1,
                }
            }
            if next.is_empty() {
                return Ok(done);
            }
            cursor = next;
        }
    }

    /// What campaign `id` would give its segment, at any stage of its life.
    pub async fn dry_run(&self, tenant: &TenantId, id: &str) -> ServiceResult<DryRun> {
        let record = self.record(tenant, id).await?;
        let c = &record.campaign;
        let budget = c.budget.map(|b| b.limit);
        let mut run = DryRun {
            budget,
            ..DryRun::default()
        };
        let mut cursor = String::new();
        loop {
            let (members, next) = self.audience_page(tenant, c, &cursor).await?;
            for m in members {
                run.audience += 1;
                let a = arm(c, m.as_str());
                *run.arms.entry(a.name().to_string()).or_default() += 1;
                if let Arm::Variant(v) = a {
                    let units = Campaign::units(&v.reward);
                    run.units += units;
                    if budget.is_none_or(|b| run.units <= b) {
                        run.within_budget += 1;
                    }
                }
            }
            if next.is_empty() {
                return Ok(run);
            }
            cursor = next;
        }
    }

    async fn record(&self, tenant: &TenantId, id: &str) -> ServiceResult<CampaignRecord> {
        crate::code::check_id("campaign", id)?;
        self.store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// One page of the campaign's segment, and the cursor of the next (empty at the end).
    async fn audience_page(
        &self,
        tenant: &TenantId,
        campaign: &Campaign,
        cursor: &str,
    ) -> ServiceResult<(Vec<MemberId>, String)> {
        let Audience::Segment { segment } = &campaign.audience else {
            return Err(ServiceError::invalid(
                "audience: a campaign reaches its whole audience through a segment; make one \
                 that selects these members (a segment can select tiers, tags or everyone)",
            ));
        };
        self.segment_page(tenant, segment, cursor).await
    }
}
