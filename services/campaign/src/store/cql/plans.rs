//! Campaigns on ScyllaDB: one entity partition per campaign (`plan:<id>`), its state (the
//! campaign's record with its budget counters, JSON) static, its grants (`g`, by member and
//! key) and its members' counts per cap period (`m`) as rows. As for a flash sale, every
//! grant and every change of one is a conditional batch on the partition's version, so the
//! budget, the member's cap and the grant move together or not at all, however many race.
//!
//! The partition's version counts every write, grants included; the record's own `version`
//! (in the body) counts only writes of the campaign, and `put_campaign` checks it. A
//! tenant's campaigns are listed in `listings` (`campaigns`), reserved grants in `due` by
//! when they were made; both are written before what they point at.

use super::indexes::RESERVED_GRANTS;
use super::sales::back_off;
use super::{ScyllaCampaignStore, decode, encode};
use crate::campaign::CampaignRecord;
use crate::campaign::grant::{Grant, GrantState};
use crate::events::CampaignEvent;
use crate::store::{GrantSettled, Granted, PlanRepository};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

const GRANT: &str = "g";
const MEMBER: &str = "m";
/// The tenant's list of its campaigns.
const CAMPAIGNS: &str = "campaigns";
/// The tenants that wrote campaigns, listed in a partition of no tenant's (tenant ids are
/// letters, digits and `-_.`, never `*`).
const EVERY_TENANT: &str = "*";
const TENANTS: &str = "campaign-tenants";
/// Tries of one write against others on the same campaign before the caller is asked to retry.
const MAX_TRIES: u32 = 200;

fn plan_key(campaign: &str) -> String {
    format!("plan:{campaign}")
}

// Row ids join their parts with '/', which no campaign id, member id, grant key or period
// (`all` or a day) holds, so each id reads back as its parts.

/// A grant's row: keys are the caller's, per member.
fn grant_row(member: &str, key: &str) -> String {
    format!("{member}/{key}")
}

/// A reserved grant's pointer in `due`.
fn due_id(campaign: &str, member: &str, key: &str) -> String {
    format!("{campaign}/{member}/{key}")
}

/// A member's count in a period.
fn member_row(g: &Grant) -> String {
    format!("{}/{}", g.period, g.member)
}

/// Records are JSON: their audience and rewards are internally tagged enums, which postcard
/// cannot read back. Grants and counts are postcard, as the embedded store keeps them.
fn to_json(record: &CampaignRecord) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(record).map_err(ServiceError::internal)
}

fn from_json(body: &[u8]) -> ServiceResult<CampaignRecord> {
    serde_json::from_slice(body).map_err(ServiceError::internal)
}

fn busy(campaign: &str) -> ServiceError {
    ServiceError::unavailable(format!(
        "campaign {campaign} is busy: retry with the same key"
    ))
}

impl ScyllaCampaignStore {
    /// The partition's version (every write) and the record.
    async fn plan_state(
        &self,
        tenant: &str,
        campaign: &str,
    ) -> ServiceResult<Option<(i64, CampaignRecord)>> {
        match self.state(tenant, &plan_key(campaign)).await? {
            Some((version, body)) => Ok(Some((version, from_json(&body)?))),
            None => Ok(None),
        }
    }

    async fn read_grant(
        &self,
        tenant: &str,
        campaign: &str,
        member: &str,
        key: &str,
    ) -> ServiceResult<Option<Grant>> {
        let row = grant_row(member, key);
        match self
            .row_of(tenant, &plan_key(campaign), GRANT, &row)
            .await?
        {
            Some(body) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    /// The member's grants in the grant's period.
    async fn grant_count(&self, g: &Grant) -> ServiceResult<u32> {
        let key = plan_key(&g.campaign);
        match self.row_of(&g.tenant, &key, MEMBER, &member_row(g)).await? {
            Some(body) => decode(&body),
            None => Ok(0),
        }
    }

    /// One try of a write of the record: None if a grant or a settle moved the partition
    /// since it was read (the record's own version unchanged: try again).
    async fn try_put(
        &self,
        tenant: &str,
        record: &CampaignRecord,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<bool>> {
        let mut next = record.clone();
        let version = match self.plan_state(tenant, &record.campaign.id).await? {
            None if record.version == 1 => None,
            Some((version, stored)) if stored.version + 1 == record.version => {
                // The counters are the grants': a write of the campaign never moves them.
                (next.reserved, next.spent) = (stored.reserved, stored.spent);
                Some(version)
            }
            _ => return Ok(Some(false)),
        };
        let key = plan_key(&record.campaign.id);
        let done = self
            .commit(tenant, &key, version, to_json(&next)?, Vec::new(), events)
            .await?;
        Ok(done.then_some(true))
    }

    /// One try of a grant: None if another write on the campaign came first. The version
    /// is read before the rows, so rows read after it are at least as new as it is, and
    /// the batch's condition refuses the write if anything moved since.
    async fn try_grant(
        &self,
        grant: &Grant,
        cap: Option<u32>,
        events: &[CampaignEvent],
        pointed: &mut bool,
    ) -> ServiceResult<Option<Granted>> {
        let (t, c) = (grant.tenant.as_str(), grant.campaign.as_str());
        let Some((version, mut plan)) = self.plan_state(t, c).await? else {
            return Ok(Some(Granted::NoCampaign));
        };
        if let Some(stored) = self.read_grant(t, c, &grant.member, &grant.key).await? {
            return Ok(Some(Granted::Exists(Box::new(stored))));
        }
        if plan.budget_left().is_some_and(|left| left < grant.units) {
            return Ok(Some(Granted::BudgetExhausted));
        }
        if grant.state != GrantState::Reserved {
            // Held out at once: it takes nothing and waits for nothing.
            let row = (GRANT, grant_row(&grant.member, &grant.key), encode(grant)?);
            let (key, body) = (plan_key(c), to_json(&plan)?);
            let done = self
                .commit(t, &key, Some(version), body, vec![row], events)
                .await?;
            return Ok(done.then_some(Granted::Yes));
        }
        let held = self.grant_count(grant).await?;
        if cap.is_some_and(|cap| held >= cap) {
            return Ok(Some(Granted::CapReached));
        }
        if !*pointed {
            // Only a grant that may be written is pointed to: refusals leave nothing behind.
            let id = due_id(c, &grant.member, &grant.key);
            self.due_add(RESERVED_GRANTS, grant.created_ms, t, &id)
                .await?;
            *pointed = true;
        }
        plan.reserved += grant.units;
        let rows = vec![
            (GRANT, grant_row(&grant.member, &grant.key), encode(grant)?),
            (MEMBER, member_row(grant), encode(&(held + 1))?),
        ];
        let done = self
            .commit(
                t,
                &plan_key(c),
                Some(version),
                to_json(&plan)?,
                rows,
                events,
            )
            .await?;
        Ok(done.then_some(Granted::Yes))
    }

    /// One try of a change of a grant's state: None if another write on the campaign came
    /// first.
    async fn try_settle_grant(
        &self,
        (tenant, campaign, member, key): (&str, &str, &str, &str),
        (to, at_ms): (GrantState, i64),
        paid_with: &Option<String>,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<GrantSettled>> {
        // Grants live in their campaign's partition: no campaign, no grant.
        let Some((version, mut plan)) = self.plan_state(tenant, campaign).await? else {
            return Ok(Some(GrantSettled::Missing));
        };
        let Some(mut grant) = self.read_grant(tenant, campaign, member, key).await? else {
            return Ok(Some(GrantSettled::Missing));
        };
        if grant.state != GrantState::Reserved || to == GrantState::Reserved {
            return Ok(Some(GrantSettled::NotFrom(Box::new(grant))));
        }
        plan.reserved = plan.reserved.saturating_sub(grant.units);
        let mut rows = Vec::new();
        if to == GrantState::Confirmed {
            plan.spent += grant.units;
        } else {
            let held = self.grant_count(&grant).await?.saturating_sub(1);
            rows.push((MEMBER, member_row(&grant), encode(&held)?));
        }
        grant.state = to;
        grant.updated_ms = at_ms;
        grant.paid_with = paid_with.clone().or(grant.paid_with);
        rows.push((GRANT, grant_row(member, key), encode(&grant)?));
        let done = self
            .commit(
                tenant,
                &plan_key(campaign),
                Some(version),
                to_json(&plan)?,
                rows,
                events,
            )
            .await?;
        Ok(done.then_some(GrantSettled::Yes(Box::new(grant))))
    }
}

#[async_trait]
impl PlanRepository for ScyllaCampaignStore {
    async fn put_campaign(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<bool> {
        let t = tenant.as_str();
        let id = &record.campaign.id;
        let binds = (t.to_string(), CAMPAIGNS.to_string(), id.clone());
        self.statements.list_add.run(self.session(), binds).await?;
        let binds = (EVERY_TENANT.to_string(), TENANTS.to_string(), t.to_string());
        self.statements.list_add.run(self.session(), binds).await?;
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_put(t, record, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy(id))
    }

    async fn campaign(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<CampaignRecord>> {
        Ok(self
            .plan_state(tenant.as_str(), id)
            .await?
            .map(|(_, record)| record))
    }

    async fn campaigns(&self, tenant: &TenantId) -> ServiceResult<Vec<CampaignRecord>> {
        let t = tenant.as_str();
        let mut found = Vec::new();
        for id in self.listed(t, CAMPAIGNS, None, usize::MAX).await? {
            // A listing written before its campaign, whose write was then refused, is skipped.
            if let Some((_, record)) = self.plan_state(t, &id).await? {
                found.push(record);
            }
        }
        Ok(found)
    }

    async fn campaign_tenants(&self) -> ServiceResult<Vec<String>> {
        self.listed(EVERY_TENANT, TENANTS, None, usize::MAX).await
    }

    async fn grant_of(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        key: &str,
    ) -> ServiceResult<Option<Grant>> {
        self.read_grant(tenant.as_str(), campaign, member, key)
            .await
    }

    async fn grant(
        &self,
        grant: &Grant,
        cap: Option<u32>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Granted> {
        let mut pointed = false;
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_grant(grant, cap, &events, &mut pointed).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy(&grant.campaign))
    }

    async fn settle_grant(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        key: &str,
        to: GrantState,
        at_ms: i64,
        paid_with: Option<String>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<GrantSettled> {
        let t = tenant.as_str();
        for tries in 1..=MAX_TRIES {
            let Some(done) = self
                .try_settle_grant((t, campaign, member, key), (to, at_ms), &paid_with, &events)
                .await?
            else {
                back_off(tries).await;
                continue;
            };
            if let GrantSettled::Yes(g) = &done {
                // The settle is committed: a pointer left behind is dropped by the sweep.
                let id = due_id(campaign, member, key);
                if let Err(e) = self.due_remove(RESERVED_GRANTS, g.created_ms, t, &id).await {
                    tracing::warn!(campaign, grant = key, error = %e,
                        "a settled grant's pointer was not dropped; the sweep drops it");
                }
            }
            return Ok(done);
        }
        Err(busy(campaign))
    }

    async fn reserved_grants(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Grant>> {
        let mut found = Vec::new();
        for (at, tenant, id) in self.due_before(RESERVED_GRANTS, before_ms, limit).await? {
            let mut parts = id.splitn(3, '/');
            let (Some(campaign), Some(member), Some(key)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            match self.read_grant(&tenant, campaign, member, key).await? {
                // A pointer of a losing try under the same key has another time: not its own.
                Some(g) if g.state == GrantState::Reserved && g.created_ms == at => found.push(g),
                // Settled, or never written (the sweep asks only for grants made a minute
                // ago or more, far longer than a grant's write takes): done with.
                _ => self.due_remove(RESERVED_GRANTS, at, &tenant, &id).await?,
            }
        }
        Ok(found)
    }
}
