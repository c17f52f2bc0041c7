//! The scheduled scoring run: RFM scores, the churn-risk flag and the lifecycle stage of
//! every member under the tenant's scoring policy (a setting; the defaults until the tenant
//! sets one). Only members whose scores changed are written, each with a `scores_changed`
//! event.

use super::Members;
use crate::rfm::{self, ScoringPolicy};
use crate::store::MemberWrite;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use serde::Serialize;

const POLICY: (&str, &str) = ("scoring_policy", "current");
const PAGE: usize = 2_000;

/// What a scoring run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScoringRun {
    pub scored: u64,
    pub changed: u64,
}

impl Members {
    /// The tenant's scoring policy (the defaults if it set none).
    pub async fn scoring_policy(&self, tenant: &TenantId) -> ServiceResult<ScoringPolicy> {
        match self.repo.setting(tenant, POLICY.0, POLICY.1).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(ServiceError::internal),
            None => Ok(ScoringPolicy::default()),
        }
    }

    pub async fn put_scoring_policy(
        &self,
        tenant: &TenantId,
        policy: &ScoringPolicy,
    ) -> ServiceResult<()> {
        policy.validate()?;
        let bytes = serde_json::to_vec(policy).map_err(ServiceError::internal)?;
        self.repo
            .put_setting(tenant, POLICY.0, POLICY.1, Some(bytes))
            .await
    }

    /// Scores every member of the tenant now.
    pub async fn score_members(&self, tenant: &TenantId) -> ServiceResult<ScoringRun> {
        let policy = self.scoring_policy(tenant).await?;
        let t = tenant.as_str();
        let now = self.clock.now();
        let policy = &policy;
        // A member changed meanwhile keeps its old scores until the next run.
        let (scored, changed) = self
            .sweep(tenant, PAGE, |mut facts| async move {
                let scores = rfm::score(policy, &facts.value, now);
                if !rfm::apply(&mut facts.value, scores) {
                    return Ok(None);
                }
                facts.version += 1;
                let member = facts.value.member_id.clone();
                let event = self.event(t, &member, "scores_changed", &scores);
                Ok(Some(MemberWrite {
                    tenant: t.into(),
                    member,
                    facts: Some(facts),
                    events: vec![event],
                    ..MemberWrite::default()
                }))
            })
            .await?;
        let run = ScoringRun { scored, changed };
        Ok(run)
    }
}
