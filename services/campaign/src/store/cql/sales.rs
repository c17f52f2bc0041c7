//! Flash sales on ScyllaDB: one entity partition per sale (`sale:<id>`), its state (the sale
//! and the units taken per quota, JSON) static, its claims (`c`) and its members' counts
//! (`m`) as rows. Every claim and every change of one is a conditional batch on the sale's
//! version, so the quota, the member's limit and the claim move together or not at all: the
//! partition is the sale's one lock (a hot sale is a hot partition, as the benchmark shows).
//! Held claims are listed in `due` by when they lapse, before they are written.

use super::indexes::CLAIM_HOLDS;
use super::{ScyllaCampaignStore, decode, encode};
use crate::events::CampaignEvent;
use crate::sale::{Claim, ClaimState, FlashSale, SaleState};
use crate::store::{ClaimSettled, Claimed, SaleRepository};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;
use std::time::Duration;

const CLAIM: &str = "c";
const MEMBER: &str = "m";
/// Tries of one write against others on the same sale before the caller is asked to retry.
const MAX_TRIES: u32 = 200;

fn sale_key(id: &str) -> String {
    format!("sale:{id}")
}

/// A held claim's pointer in `due`: the sale and the claim.
fn due_id(sale: &str, claim: &str) -> String {
    format!("{sale}/{claim}")
}

fn to_json(state: &SaleState) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(state).map_err(ServiceError::internal)
}

fn from_json(body: &[u8]) -> ServiceResult<SaleState> {
    serde_json::from_slice(body).map_err(ServiceError::internal)
}

/// A short random pause after losing a write to another on the same sale, longer with each
/// try, so that the writers spread out instead of colliding again (campaigns' grants too).
pub(super) async fn back_off(tries: u32) {
    let cap = u64::from(tries.min(10)) * 5;
    let ms = rand::random_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn busy() -> ServiceError {
    ServiceError::unavailable("the flash sale is busy: retry with the same claim id")
}

impl ScyllaCampaignStore {
    /// A row's body in an entity partition (a claim, a grant, a member's count).
    pub(super) async fn row_of(
        &self,
        tenant: &str,
        key: &str,
        kind: &str,
        id: &str,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let binds = (
            tenant.to_string(),
            key.to_string(),
            kind.to_string(),
            id.to_string(),
        );
        let row = self
            .statements
            .row_body
            .first(self.session(), binds)
            .await?;
        Ok(row.and_then(|(body,)| body))
    }

    async fn sale_state(
        &self,
        tenant: &str,
        sale: &str,
    ) -> ServiceResult<Option<(i64, SaleState)>> {
        match self.state(tenant, &sale_key(sale)).await? {
            Some((version, body)) => Ok(Some((version, from_json(&body)?))),
            None => Ok(None),
        }
    }

    async fn member_count(&self, claim: &Claim) -> ServiceResult<u32> {
        let key = sale_key(&claim.sale);
        match self
            .row_of(&claim.tenant, &key, MEMBER, &claim.member)
            .await?
        {
            Some(body) => decode(&body),
            None => Ok(0),
        }
    }

    async fn read_claim(&self, tenant: &str, sale: &str, id: &str) -> ServiceResult<Option<Claim>> {
        match self.row_of(tenant, &sale_key(sale), CLAIM, id).await? {
            Some(body) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    /// One try of a claim: None if another write on the sale came first.
    async fn try_claim(
        &self,
        claim: &Claim,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<Claimed>> {
        let t = &claim.tenant;
        // The sale's version first: every row read after it is at least as new, and a write
        // that lands in between moves it, so the commit below fails and is tried again. Read
        // the other way round, two claims with one id could both be counted.
        let Some((version, mut state)) = self.sale_state(t, &claim.sale).await? else {
            return Ok(Some(Claimed::NoSale));
        };
        if let Some(stored) = self.read_claim(t, &claim.sale, &claim.id).await? {
            return Ok(Some(Claimed::Exists(Box::new(stored))));
        }
        let quota = state.sale.quotas.get(&claim.quota).copied().unwrap_or(0);
        if state.taken(&claim.quota) >= quota {
            return Ok(Some(Claimed::SoldOut));
        }
        let held = self.member_count(claim).await?;
        if held >= state.sale.per_member_limit {
            return Ok(Some(Claimed::MemberLimit));
        }
        state.count(&claim.quota, true);
        let rows = vec![
            (CLAIM, claim.id.clone(), encode(claim)?),
            (MEMBER, claim.member.clone(), encode(&(held + 1))?),
        ];
        let key = sale_key(&claim.sale);
        let body = to_json(&state)?;
        let done = self
            .commit(t, &key, Some(version), body, rows, events)
            .await?;
        Ok(done.then_some(Claimed::Yes))
    }

    /// One try of a change of a claim's state: None if another write on the sale came first.
    async fn try_settle(
        &self,
        (tenant, sale, id): (&str, &str, &str),
        (from, to): (ClaimState, ClaimState),
        at_ms: i64,
        coupon: &Option<String>,
        events: &[CampaignEvent],
    ) -> ServiceResult<Option<ClaimSettled>> {
        // The sale's version before the claim, for the reason `try_claim` gives.
        let Some((version, mut state)) = self.sale_state(tenant, sale).await? else {
            return Ok(Some(ClaimSettled::Missing));
        };
        let Some(mut claim) = self.read_claim(tenant, sale, id).await? else {
            return Ok(Some(ClaimSettled::Missing));
        };
        if claim.state != from {
            return Ok(Some(ClaimSettled::NotFrom(Box::new(claim))));
        }
        let mut rows = Vec::new();
        if from.counts() && !to.counts() {
            state.count(&claim.quota, false);
            let held = self.member_count(&claim).await?.saturating_sub(1);
            rows.push((MEMBER, claim.member.clone(), encode(&held)?));
        }
        claim.state = to;
        claim.updated_ms = at_ms;
        claim.hold_until_ms = claim.hold_until_ms.filter(|_| to == ClaimState::Held);
        claim.coupon = coupon.clone().or(claim.coupon);
        rows.push((CLAIM, claim.id.clone(), encode(&claim)?));
        let body = to_json(&state)?;
        let done = self
            .commit(tenant, &sale_key(sale), Some(version), body, rows, events)
            .await?;
        Ok(done.then_some(ClaimSettled::Yes(Box::new(claim))))
    }
}

#[async_trait]
impl SaleRepository for ScyllaCampaignStore {
    async fn create_sale(
        &self,
        tenant: &TenantId,
        sale: &FlashSale,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Option<FlashSale>> {
        let t = tenant.as_str();
        let body = to_json(&SaleState::new(sale.clone()))?;
        if self.create(t, &sale_key(&sale.id), body, &events).await? {
            return Ok(None);
        }
        match self.sale_state(t, &sale.id).await? {
            Some((_, stored)) => Ok(Some(stored.sale)),
            None => Err(busy()),
        }
    }

    async fn sale(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<SaleState>> {
        Ok(self
            .sale_state(tenant.as_str(), id)
            .await?
            .map(|(_, state)| state))
    }

    async fn claim_of(
        &self,
        tenant: &TenantId,
        sale: &str,
        id: &str,
    ) -> ServiceResult<Option<Claim>> {
        self.read_claim(tenant.as_str(), sale, id).await
    }

    async fn claim(&self, claim: &Claim, events: Vec<CampaignEvent>) -> ServiceResult<Claimed> {
        if let Some(until) = claim.hold_until_ms {
            let id = due_id(&claim.sale, &claim.id);
            self.due_add(CLAIM_HOLDS, until, &claim.tenant, &id).await?;
        }
        for tries in 1..=MAX_TRIES {
            if let Some(done) = self.try_claim(claim, &events).await? {
                return Ok(done);
            }
            back_off(tries).await;
        }
        Err(busy())
    }

    async fn settle_claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        id: &str,
        states: (ClaimState, ClaimState),
        at_ms: i64,
        coupon: Option<String>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ClaimSettled> {
        let t = tenant.as_str();
        for tries in 1..=MAX_TRIES {
            let done = self
                .try_settle((t, sale, id), states, at_ms, &coupon, &events)
                .await?;
            match done {
                // A held claim's pointer in `due` is dropped by the sweep that reads it.
                Some(settled) => return Ok(settled),
                None => back_off(tries).await,
            }
        }
        Err(busy())
    }

    async fn lapsed_claims(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Claim>> {
        let mut found = Vec::new();
        for (at, tenant, id) in self.due_before(CLAIM_HOLDS, before_ms, limit).await? {
            let Some((sale, claim)) = id.split_once('/') else {
                continue;
            };
            match self.read_claim(&tenant, sale, claim).await? {
                Some(c) if c.state == ClaimState::Held => found.push(c),
                // Settled, or never written: the pointer is done with.
                _ => self.due_remove(CLAIM_HOLDS, at, &tenant, &id).await?,
            }
        }
        Ok(found)
    }
}
