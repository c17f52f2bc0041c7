//! Automatic triggers: the member service's and the ledger's events, delivered by a durable
//! subscription, reward their member from every running campaign of the tenant whose trigger
//! they match. Each reward's key is what the trigger counts (the member for a welcome or a
//! first purchase, the order, the ledger's warning), so an event delivered twice, or again
//! after a `kill -9`, rewards once: the grant's key is found and answered as it was.

use super::Campaigns;
use super::grants::Rewarded;
use crate::campaign::{Audience, Trigger};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_events::Envelope;
use loyalty_region::background::Handling;

/// The member-service and ledger events triggers read, as subscription filters.
pub const MEMBER_EVENTS: &str = "member.*.member.>";
pub const LEDGER_EVENTS: [&str; 2] = [
    "member.*.ledger.expiring_soon",
    "member.*.ledger.low_balance",
];

impl Campaigns {
    /// Rewards `event`'s member from every running campaign its trigger matches; how many
    /// rewards it paid (or had paid). Refusals that are the campaign's rules (its budget, the
    /// member's cap, the audience, the holdout) are not errors; a failure worth retrying is.
    pub async fn on_event(&self, event: &Envelope) -> ServiceResult<u32> {
        if event.subject.is_empty() {
            return Ok(0);
        }
        let (Ok(tenant), Ok(member)) = (
            TenantId::parse(event.tenant.as_str()),
            MemberId::parse(event.subject.as_str()),
        ) else {
            return Ok(0);
        };
        // In two regions each region's stream holds every tenant's events: the tenant's home
        // rewards, the other region passes the event by.
        match self.handling(tenant.as_str()) {
            Handling::Here => {}
            Handling::Elsewhere => return Ok(0),
            Handling::Wait(why) => {
                return Err(ServiceError::unavailable(format!(
                    "no region may reward {tenant}'s members now ({why}); the event is \
                     delivered again"
                )));
            }
        }
        // Orders are attributed to the campaigns that reached their member before any
        // trigger rewards it again (a reward now is not what brought this order).
        self.attribute(event).await?;
        self.on_referral_event(&tenant, &member, event).await?;
        let data = event.data_value();
        let mut rewarded = 0;
        for view in self.campaigns(&tenant).await? {
            let c = &view.record.campaign;
            let Some(trigger) = &c.trigger else { continue };
            if view.phase != "running" || matches!(c.audience, Audience::Segment { .. }) {
                continue;
            }
            // Only what happened while the campaign ran: a subscription reads the stream from
            // its start, and a member who joined last year is not welcomed by this year's
            // campaign.
            let at = event.time.timestamp_millis();
            if at < view.starts_ms || view.ends_ms.is_some_and(|end| at >= end) {
                continue;
            }
            let Some(key) = self
                .trigger_key(&tenant, &member, trigger, event, &data)
                .await?
            else {
                continue;
            };
            match self.reward(&tenant, &c.id, &member, &key).await {
                Ok(Rewarded::Granted(_)) => rewarded += 1,
                Ok(Rewarded::Holdout) => {}
                Err(e) if is_rule(e.code) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rewarded)
    }

    /// The grant key `event` rewards under for `trigger`, or None if it does not match.
    async fn trigger_key(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        trigger: &Trigger,
        event: &Envelope,
        data: &serde_json::Value,
    ) -> ServiceResult<Option<String>> {
        let (service, name) = (event.service(), event.name());
        let order = || {
            let total = data["total"].as_i64().unwrap_or(0);
            let refund = !data["refund_of"].is_null();
            (service == "member" && name == "order_recorded" && total > 0 && !refund)
                .then_some(total)
        };
        let entry = || {
            data["entry"]["entry_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        Ok(match trigger {
            Trigger::Welcome => {
                (service == "member" && name == "created").then(|| "welcome".into())
            }
            Trigger::OrderAtLeast { amount } => order()
                .filter(|total| total >= amount)
                .map(|_| format!("order-{}", data["order_id"].as_str().unwrap_or_default())),
            Trigger::FirstPurchase => {
                if order().is_none() {
                    return Ok(None);
                }
                self.is_first_order(tenant, member, data)
                    .await?
                    .then(|| "first-purchase".into())
            }
            Trigger::PointsExpiring => (service == "ledger" && name == "expiring_soon")
                .then(|| format!("expiring-{}", entry())),
            Trigger::LowStoredValue => (service == "ledger" && name == "low_balance")
                .then(|| format!("low-sv-{}", entry())),
            Trigger::TierUpgrade { tiers } => {
                let decision = &data["decision"];
                let to = decision["to"].as_str().unwrap_or_default();
                let wanted = tiers.is_empty() || tiers.iter().any(|t| t == to);
                (service == "member"
                    && name == "tier_changed"
                    && decision["decision"] == "upgrade"
                    && !to.is_empty()
                    && wanted)
                    .then(|| format!("tier-{to}"))
            }
            Trigger::Dormant => {
                if !(service == "member"
                    && name == "scores_changed"
                    && data["lifecycle"] == "dormant")
                {
                    return Ok(None);
                }
                self.dormant_spell(tenant, member).await?
            }
            // Swept daily (`birthdays`), never from an event; referrals and check-ins are
            // rewarded by their own rules (`referrals`, `check_ins`).
            Trigger::Birthday { .. } | Trigger::Referral { .. } | Trigger::CheckIn { .. } => None,
        })
    }

    /// The key of the member's dormant spell: its last order, so a scoring run that changes
    /// a dormant member's other scores does not reward it again, and a member who orders
    /// and lapses again is a new spell. None if the member is not dormant any more.
    async fn dormant_spell(
        &self,
        tenant: &TenantId,
        member: &MemberId,
    ) -> ServiceResult<Option<String>> {
        let Some(activity) = self.activity(tenant, member).await? else {
            return Ok(None);
        };
        Ok((activity.lifecycle == "dormant")
            .then(|| format!("dormant-{}", activity.last_order_at_ms)))
    }

    /// Whether the order in `data` is the member's first, as the member service has it.
    async fn is_first_order(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        data: &serde_json::Value,
    ) -> ServiceResult<bool> {
        let Some(activity) = self.activity(tenant, member).await? else {
            return Ok(false);
        };
        let at = data["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
        Ok(at.is_some_and(|at| at == activity.first_order_at_ms))
    }
}

/// Refusals that are a campaign's rules working, not failures.
pub(super) fn is_rule(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::BudgetExhausted
            | ErrorCode::FrequencyCapReached
            | ErrorCode::NotInAudience
            | ErrorCode::CampaignNotRunning
            | ErrorCode::MemberNotFound
            | ErrorCode::MemberErased
    )
}
