//! Campaigns in the embedded store: a campaign's record as JSON (its budget counters in
//! it), its grants, its members' counts per cap period, and reserved grants by when they
//! were made, each grant moved on the store's one writer with the counters and its events.

use super::{EmbeddedCampaignStore, Inner, encode, key, storage, time_part};
use crate::campaign::CampaignRecord;
use crate::campaign::grant::{Grant, GrantState};
use crate::events::CampaignEvent;
use crate::store::{GrantSettled, Granted, PlanRepository};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

fn plan_key(tenant: &str, campaign: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), campaign.as_bytes()])
}

fn grant_key(tenant: &str, campaign: &str, member: &str, grant: &str) -> Vec<u8> {
    key(&[
        tenant.as_bytes(),
        campaign.as_bytes(),
        member.as_bytes(),
        grant.as_bytes(),
    ])
}

fn member_key(g: &Grant) -> Vec<u8> {
    key(&[
        g.tenant.as_bytes(),
        g.campaign.as_bytes(),
        g.member.as_bytes(),
        g.period.as_bytes(),
    ])
}

fn reserved_key(g: &Grant) -> Vec<u8> {
    key(&[
        &time_part(g.created_ms),
        g.tenant.as_bytes(),
        g.campaign.as_bytes(),
        g.member.as_bytes(),
        g.key.as_bytes(),
    ])
}

impl Inner {
    /// Records are kept as JSON: their audience and rewards are internally tagged enums.
    fn plan(&self, tenant: &str, campaign: &str) -> ServiceResult<Option<CampaignRecord>> {
        self.plans
            .get(plan_key(tenant, campaign))
            .map_err(storage)?
            .map(|v| serde_json::from_slice(&v).map_err(ServiceError::internal))
            .transpose()
    }

    fn put_plan(&self, batch: &mut fjall::OwnedWriteBatch, tenant: &str, r: &CampaignRecord) {
        // Plain data: serialising it cannot fail.
        let json = serde_json::to_vec(r).unwrap_or_default();
        batch.insert(&self.plans, plan_key(tenant, &r.campaign.id), json);
    }

    /// Moves the member's count in the grant's period by one, up or down.
    fn count_grant(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        g: &Grant,
        up: bool,
    ) -> ServiceResult<()> {
        let row = member_key(g);
        let n = Self::get::<u32>(&self.plan_members, &row)?.unwrap_or(0);
        let next = if up {
            n.saturating_add(1)
        } else {
            n.saturating_sub(1)
        };
        batch.insert(&self.plan_members, row, encode(&next)?);
        Ok(())
    }
}

#[async_trait]
impl PlanRepository for EmbeddedCampaignStore {
    async fn put_campaign(
        &self,
        tenant: &TenantId,
        record: &CampaignRecord,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<bool> {
        let (tenant, mut record) = (tenant.to_string(), record.clone());
        self.write_locked(move |inner| {
            let stored = inner.plan(&tenant, &record.campaign.id)?;
            if stored.as_ref().map_or(0, |s| s.version) + 1 != record.version {
                return Ok(false);
            }
            if let Some(s) = stored {
                (record.reserved, record.spent) = (s.reserved, s.spent);
            }
            let mut batch = inner.batch();
            inner.put_plan(&mut batch, &tenant, &record);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(true)
        })
        .await
    }

    async fn campaign(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<CampaignRecord>> {
        self.settled().await?;
        self.inner.plan(tenant.as_str(), id)
    }

    async fn campaigns(&self, tenant: &TenantId) -> ServiceResult<Vec<CampaignRecord>> {
        self.settled().await?;
        let prefix = [tenant.as_str().as_bytes(), &[0]].concat();
        self.inner
            .plans
            .prefix(&prefix)
            .map(|guard| {
                let bytes = guard.value().map_err(storage)?;
                serde_json::from_slice(&bytes).map_err(ServiceError::internal)
            })
            .collect()
    }

    async fn campaign_tenants(&self) -> ServiceResult<Vec<String>> {
        self.settled().await?;
        let mut tenants = std::collections::BTreeSet::new();
        for guard in self.inner.plans.iter() {
            let row = guard.key().map_err(storage)?;
            let tenant = row.split(|b| *b == 0).next().unwrap_or_default();
            tenants.insert(String::from_utf8_lossy(tenant).into_owned());
        }
        Ok(tenants.into_iter().collect())
    }

    async fn grant_of(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        key: &str,
    ) -> ServiceResult<Option<Grant>> {
        self.settled().await?;
        let row = grant_key(tenant.as_str(), campaign, member, key);
        Inner::get(&self.inner.grants, &row)
    }

    async fn grant(
        &self,
        grant: &Grant,
        cap: Option<u32>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Granted> {
        let grant = grant.clone();
        self.write_locked(move |inner| {
            let row = grant_key(&grant.tenant, &grant.campaign, &grant.member, &grant.key);
            if let Some(stored) = Inner::get::<Grant>(&inner.grants, &row)? {
                return Ok(Granted::Exists(Box::new(stored)));
            }
            let Some(mut plan) = inner.plan(&grant.tenant, &grant.campaign)? else {
                return Ok(Granted::NoCampaign);
            };
            if plan.budget_left().is_some_and(|left| left < grant.units) {
                return Ok(Granted::BudgetExhausted);
            }
            let n = Inner::get::<u32>(&inner.plan_members, &member_key(&grant))?.unwrap_or(0);
            if cap.is_some_and(|cap| n >= cap) {
                return Ok(Granted::CapReached);
            }
            let mut batch = inner.batch();
            // A grant held out at once takes nothing and waits for nothing.
            if grant.state == GrantState::Reserved {
                plan.reserved += grant.units;
                inner.put_plan(&mut batch, &grant.tenant, &plan);
                inner.count_grant(&mut batch, &grant, true)?;
                batch.insert(&inner.grant_holds, reserved_key(&grant), []);
            }
            batch.insert(&inner.grants, row, encode(&grant)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(Granted::Yes)
        })
        .await
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
        let row = grant_key(tenant.as_str(), campaign, member, key);
        self.write_locked(move |inner| {
            let Some(mut grant) = Inner::get::<Grant>(&inner.grants, &row)? else {
                return Ok(GrantSettled::Missing);
            };
            if grant.state != GrantState::Reserved || to == GrantState::Reserved {
                return Ok(GrantSettled::NotFrom(Box::new(grant)));
            }
            let Some(mut plan) = inner.plan(&grant.tenant, &grant.campaign)? else {
                return Err(ServiceError::internal("a grant of a campaign that is gone"));
            };
            let mut batch = inner.batch();
            plan.reserved = plan.reserved.saturating_sub(grant.units);
            if to == GrantState::Confirmed {
                plan.spent += grant.units;
            } else {
                inner.count_grant(&mut batch, &grant, false)?;
            }
            inner.put_plan(&mut batch, &grant.tenant, &plan);
            batch.remove(&inner.grant_holds, reserved_key(&grant));
            grant.state = to;
            grant.updated_ms = at_ms;
            grant.paid_with = paid_with.or(grant.paid_with);
            batch.insert(&inner.grants, row, encode(&grant)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(GrantSettled::Yes(Box::new(grant)))
        })
        .await
    }

    async fn reserved_grants(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Grant>> {
        self.settled().await?;
        let end = time_part(before_ms);
        let mut found = Vec::new();
        for guard in self.inner.grant_holds.range(..end.to_vec()).take(limit) {
            let row = guard.key().map_err(storage)?;
            let parts: Vec<&[u8]> = row
                .get(9..)
                .unwrap_or_default()
                .splitn(4, |b| *b == 0)
                .collect();
            let [tenant, campaign, member, id] = parts[..] else {
                return Err(ServiceError::internal("bad reserved grant key"));
            };
            if let Some(g) = Inner::get(&self.inner.grants, &key(&[tenant, campaign, member, id]))?
            {
                found.push(g);
            }
        }
        Ok(found)
    }
}
