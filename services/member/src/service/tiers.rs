//! Tiers in the service: the tenant's policy (a setting), each member's tier state (in its
//! facts), evaluation when an order is recorded (upgrades happen at once) and in the
//! scheduled review (periods, grace, downgrades), and approval of changes that wait for a
//! person. Every change of state is an event.

use super::{ATTEMPTS, Members, busy, not_found};
use crate::events::MemberEvent;
use crate::facts::MemberFacts;
use crate::store::{MemberWrite, Versioned, Written};
use crate::tier::{self, Decision, Evaluation, TierPolicy, TierState};
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::{ServiceError, Timestamp};
use serde::Serialize;

const POLICY: (&str, &str) = ("tier_policy", "current");
/// Members evaluated per batch of the scheduled review.
const PAGE: usize = 1_000;

/// What a review of every member did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TierRun {
    pub evaluated: u64,
    pub changed: u64,
}

impl Members {
    /// The tenant's tier policy, if it set one.
    pub async fn tier_policy(&self, tenant: &TenantId) -> ServiceResult<Option<TierPolicy>> {
        let stored = self.repo.setting(tenant, POLICY.0, POLICY.1).await?;
        stored
            .map(|bytes| serde_json::from_slice(&bytes).map_err(ServiceError::internal))
            .transpose()
    }

    /// Sets the tenant's tier policy; members move under it at their next evaluation.
    pub async fn put_tier_policy(
        &self,
        tenant: &TenantId,
        policy: &TierPolicy,
    ) -> ServiceResult<()> {
        policy.validate()?;
        let bytes = serde_json::to_vec(policy).map_err(ServiceError::internal)?;
        self.repo
            .put_setting(tenant, POLICY.0, POLICY.1, Some(bytes))
            .await
    }

    /// The earn multiplier of the member's tier (10000 = 1x without a tier or a policy).
    pub fn earn_multiplier_bp(policy: Option<&TierPolicy>, facts: &MemberFacts) -> u32 {
        match (policy, &facts.tier_state) {
            (Some(p), Some(state)) => tier::earn_multiplier_bp(p, state),
            _ => tier::ONE_X_BP,
        }
    }

    /// The member's measure under `policy`: rolling spend, or points from the ledger.
    async fn measure(
        &self,
        policy: &TierPolicy,
        tenant: &str,
        facts: &MemberFacts,
        now: Timestamp,
    ) -> ServiceResult<i64> {
        let points = match (policy.measure, &self.ledger) {
            (tier::Measure::Points, Some(ledger)) => {
                // Ids stored in the facts were parsed when they were written.
                let (tenant, member) =
                    (TenantId::parse(tenant)?, MemberId::parse(&facts.member_id)?);
                ledger.points(&tenant, &member).await?.unwrap_or(0)
            }
            _ => 0,
        };
        Ok(policy.measure_of(facts, points, now))
    }

    /// Evaluates `facts` under `policy` and, if anything changed, updates them (tier and
    /// state); the decision and the events that announce it.
    pub(crate) async fn evaluate_tier(
        &self,
        policy: &TierPolicy,
        tenant: &str,
        facts: &mut MemberFacts,
    ) -> ServiceResult<(Decision, Vec<MemberEvent>)> {
        let now = self.clock.now();
        let measure = self.measure(policy, tenant, facts, now).await?;
        let state = facts
            .tier_state
            .clone()
            .unwrap_or_else(|| TierState::new(facts.created_at));
        let evaluation = tier::evaluate(policy, &state, measure, now);
        let decision = evaluation.decision.clone();
        Ok((decision, self.take(tenant, facts, evaluation, measure)))
    }

    /// Stores `evaluation` in `facts`; its events.
    fn take(
        &self,
        tenant: &str,
        facts: &mut MemberFacts,
        evaluation: Evaluation,
        measure: i64,
    ) -> Vec<MemberEvent> {
        if evaluation.is_unchanged() && facts.tier_state.is_some() {
            return Vec::new();
        }
        let member = facts.member_id.clone();
        let mut events = Vec::new();
        if let Some(withdrawn) = &evaluation.withdrawn {
            let data = serde_json::json!({"change": withdrawn});
            events.push(self.event(tenant, &member, "tier_change_withdrawn", &data));
        }
        let name = match &evaluation.decision {
            Decision::Unchanged => None,
            Decision::Upgrade { .. } | Decision::Downgrade { .. } | Decision::Reassigned { .. } => {
                Some("tier_changed")
            }
            Decision::GraceStarted { .. } => Some("tier_grace_started"),
            Decision::Requalified => Some("tier_requalified"),
            Decision::AwaitingApproval { .. } => Some("tier_change_requested"),
            Decision::Rejected { .. } => Some("tier_change_rejected"),
        };
        if let Some(name) = name {
            let data = serde_json::json!({
                "decision": evaluation.decision,
                "tier": evaluation.state.tier,
                "measure": measure,
            });
            events.push(self.event(tenant, &member, name, &data));
        }
        facts.tier = evaluation.state.tier.clone();
        facts.tier_state = Some(evaluation.state);
        events
    }

    /// Evaluates one member's tier now; the decision.
    pub async fn review_tier(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Decision> {
        let policy = self.require_policy(tenant).await?;
        for _ in 0..ATTEMPTS {
            let (_, mut facts) = self.live(tenant, member).await?;
            let before = facts.value.tier_state.clone();
            let (decision, events) = self
                .evaluate_tier(&policy, tenant.as_str(), &mut facts.value)
                .await?;
            if facts.value.tier_state == before {
                return Ok(decision);
            }
            if self.save_facts(tenant.as_str(), facts, events).await? {
                return Ok(decision);
            }
        }
        Err(busy())
    }

    /// Approves (or rejects) the member's pending tier change; the decision.
    pub async fn decide_tier_change(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        approve: bool,
    ) -> ServiceResult<Decision> {
        let policy = self.require_policy(tenant).await?;
        for _ in 0..ATTEMPTS {
            let (_, mut facts) = self.live(tenant, member).await?;
            let now = self.clock.now();
            let state = facts.value.tier_state.clone().ok_or_else(nothing_pending)?;
            let evaluation = if approve {
                tier::approve(&policy, &state, now)?
            } else {
                tier::reject(&policy, &state, now)?
            };
            let decision = evaluation.decision.clone();
            let measure = state.pending.as_ref().map_or(0, |p| p.measure);
            let events = self.take(tenant.as_str(), &mut facts.value, evaluation, measure);
            if self.save_facts(tenant.as_str(), facts, events).await? {
                return Ok(decision);
            }
        }
        Err(busy())
    }

    /// Reviews every member of the tenant (the scheduled job): periods end, grace runs out,
    /// a changed policy places everyone.
    pub async fn review_tiers(&self, tenant: &TenantId) -> ServiceResult<TierRun> {
        let Some(policy) = self.tier_policy(tenant).await? else {
            return Ok(TierRun::default());
        };
        let t = tenant.as_str();
        let policy = &policy;
        // A member changed meanwhile (an order) was evaluated by that change itself.
        let (evaluated, changed) = self
            .sweep(tenant, PAGE, |mut facts| async move {
                let before = facts.value.tier_state.clone();
                let (_, events) = self.evaluate_tier(policy, t, &mut facts.value).await?;
                if facts.value.tier_state == before {
                    return Ok(None);
                }
                facts.version += 1;
                Ok(Some(facts_write(t, facts, events)))
            })
            .await?;
        let run = TierRun { evaluated, changed };
        Ok(run)
    }

    /// The members whose tier change waits for approval, at most `limit` after `after`.
    pub async fn pending_tier_changes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<Vec<(String, tier::PendingChange)>> {
        let mut out = Vec::new();
        let mut cursor = after.map(str::to_string);
        while out.len() < limit {
            let page = self
                .repo
                .facts_page(tenant, cursor.as_deref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.value.member_id.clone());
            for facts in page {
                let active = facts.value.is_active();
                let pending = facts.value.tier_state.and_then(|s| s.pending);
                if let Some(p) = pending.filter(|_| active) {
                    out.push((facts.value.member_id, p));
                }
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn require_policy(&self, tenant: &TenantId) -> ServiceResult<TierPolicy> {
        self.tier_policy(tenant).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::TierPolicyNotFound,
                format!("tenant {tenant} has no tier policy: set one first"),
            )
        })
    }

    /// Writes new facts and their events; false if the facts changed since they were read.
    async fn save_facts(
        &self,
        tenant: &str,
        mut facts: Versioned<MemberFacts>,
        events: Vec<MemberEvent>,
    ) -> ServiceResult<bool> {
        facts.version += 1;
        let member = facts.value.member_id.clone();
        match self.repo.write(facts_write(tenant, facts, events)).await? {
            Written::Yes => Ok(true),
            Written::Stale => Ok(false),
            _ => Err(not_found(&member)),
        }
    }
}

fn facts_write(
    tenant: &str,
    facts: Versioned<MemberFacts>,
    events: Vec<MemberEvent>,
) -> MemberWrite {
    MemberWrite {
        tenant: tenant.into(),
        member: facts.value.member_id.clone(),
        facts: Some(facts),
        events,
        ..MemberWrite::default()
    }
}

fn nothing_pending() -> ServiceError {
    ServiceError::new(
        ErrorCode::NoPendingTierChange,
        "the member has no tier change awaiting approval",
    )
}
