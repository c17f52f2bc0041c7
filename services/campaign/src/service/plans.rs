//! Campaigns written, submitted, decided and run by head office: saving a draft (checked
//! whole, naming the field at fault), the maker-checker steps, and the campaign as it stands
//! now (its phase and budget left). Every write is conditional on the version it read, so two
//! staff members acting at once never lose a step.

use super::Campaigns;
use crate::campaign::schedule::Window;
use crate::campaign::{Campaign, CampaignRecord, Reward, Step};
use crate::code;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::TenantId;
use serde::Serialize;

/// A campaign as it stands at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignView {
    #[serde(flatten)]
    pub record: CampaignRecord,
    /// draft, submitted, rejected, scheduled, running, paused or ended.
    pub phase: &'static str,
    pub starts_ms: i64,
    pub ends_ms: Option<i64>,
    /// Budget units left for new grants; None without a budget.
    pub budget_left: Option<u64>,
}

pub(super) fn not_found(id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::CampaignNotFound,
        format!("no campaign {id}: save it first"),
    )
}

fn version_conflict(id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::VersionConflict,
        format!("campaign {id} was changed meanwhile: read it again and retry"),
    )
}

impl Campaigns {
    /// Saves `campaign` as a draft written by `by`: a new one when `expected_version` is
    /// None, else a rewrite of the stored one at that version (a draft or a rejected one).
    pub async fn save_campaign(
        &self,
        tenant: &TenantId,
        campaign: Campaign,
        by: &str,
        expected_version: Option<u64>,
    ) -> ServiceResult<CampaignView> {
        campaign.validate()?;
        for v in &campaign.variants {
            if let Reward::Coupon { template } = &v.reward {
                self.active_template(tenant, template).await?;
            }
        }
        let now = self.now_ms();
        let stored = self.store.campaign(tenant, &campaign.id).await?;
        if let Some(r) = &stored
            && r.campaign == campaign
            && r.version == expected_version.map_or(1, |v| v + 1)
            && r.history
                .last()
                .is_some_and(|t| t.by == by && t.what == "written")
        {
            // A retry of this very write: answer as it did.
            return self.view(r.clone());
        }
        let record = match (stored, expected_version) {
            (None, None) => CampaignRecord::draft(campaign, by, now),
            (Some(_), None) => {
                return Err(ServiceError::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "campaign {} exists: send its version to change it",
                        campaign.id
                    ),
                ));
            }
            (None, Some(_)) => return Err(not_found(&campaign.id)),
            (Some(mut r), Some(version)) => {
                if r.version != version {
                    return Err(version_conflict(&campaign.id));
                }
                r.rewrite(campaign, by, now)?;
                r
            }
        };
        self.write(tenant, record, "campaign_saved", by, None).await
    }

    /// Takes `step` on campaign `id` as staff member `by`, with an optional note (a
    /// rejection's reason).
    pub async fn step_campaign(
        &self,
        tenant: &TenantId,
        id: &str,
        step: Step,
        by: &str,
        note: Option<String>,
    ) -> ServiceResult<CampaignView> {
        code::check_id("campaign", id)?;
        if let Some(n) = &note {
            crate::template::check_name("note", n)?;
        }
        let mut record = self
            .store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let last = record.history.last();
        if last.is_some_and(|t| t.by == by && t.what == step.label()) {
            // A retry of the step just taken: answer as it did.
            return self.view(record);
        }
        record.take(step, by, self.now_ms(), note.clone())?;
        let name = format!("campaign_{}", step.label());
        self.write(tenant, record, &name, by, note).await
    }

    pub async fn campaign(&self, tenant: &TenantId, id: &str) -> ServiceResult<CampaignView> {
        code::check_id("campaign", id)?;
        let record = self
            .store
            .campaign(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.view(record)
    }

    pub async fn campaigns(&self, tenant: &TenantId) -> ServiceResult<Vec<CampaignView>> {
        let records = self.store.campaigns(tenant).await?;
        records.into_iter().map(|r| self.view(r)).collect()
    }

    async fn write(
        &self,
        tenant: &TenantId,
        record: CampaignRecord,
        event: &str,
        by: &str,
        note: Option<String>,
    ) -> ServiceResult<CampaignView> {
        let c = &record.campaign;
        let data = serde_json::json!({"campaign": c.id, "version": record.version,
            "status": record.status, "by": by, "note": note});
        let event = self.event(tenant.as_str(), "", event, &data);
        if !self
            .store
            .put_campaign(tenant, &record, vec![event])
            .await?
        {
            return Err(version_conflict(&c.id));
        }
        // The stored counters are the store's; read them back with the write.
        let stored = self.store.campaign(tenant, &c.id).await?;
        self.view(stored.unwrap_or(record))
    }

    pub(super) fn view(&self, record: CampaignRecord) -> ServiceResult<CampaignView> {
        let Window { starts_ms, ends_ms } = record.campaign.schedule.resolve()?;
        let window = Window { starts_ms, ends_ms };
        Ok(CampaignView {
            phase: record.phase(&window, self.now_ms()),
            budget_left: record.budget_left(),
            starts_ms,
            ends_ms,
            record,
        })
    }
}
