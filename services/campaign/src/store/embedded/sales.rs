//! Flash sales in the embedded store: a sale's state (its units taken per quota) as JSON,
//! its members' counts, its claims and the held claims by when they lapse, each claim moved
//! under the store's one writer with its events.

use super::{EmbeddedCampaignStore, Inner, encode, key, storage, time_part};
use crate::events::CampaignEvent;
use crate::sale::{Claim, ClaimState, FlashSale, SaleState};
use crate::store::{ClaimSettled, Claimed, SaleRepository};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

fn sale_key(tenant: &str, sale: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), sale.as_bytes()])
}

fn member_key(c: &Claim) -> Vec<u8> {
    key(&[c.tenant.as_bytes(), c.sale.as_bytes(), c.member.as_bytes()])
}

fn claim_key(tenant: &str, sale: &str, id: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), sale.as_bytes(), id.as_bytes()])
}

fn hold_key(c: &Claim) -> Vec<u8> {
    let until = time_part(c.hold_until_ms.unwrap_or(0));
    key(&[
        &until,
        c.tenant.as_bytes(),
        c.sale.as_bytes(),
        c.id.as_bytes(),
    ])
}

impl Inner {
    /// Sales are kept as JSON: their item is an internally tagged enum.
    fn sale_state(&self, tenant: &str, sale: &str) -> ServiceResult<Option<SaleState>> {
        self.sales
            .get(sale_key(tenant, sale))
            .map_err(storage)?
            .map(|v| serde_json::from_slice(&v).map_err(ServiceError::internal))
            .transpose()
    }

    fn put_sale(&self, batch: &mut fjall::OwnedWriteBatch, tenant: &str, state: &SaleState) {
        // Plain data: serialising it cannot fail.
        let json = serde_json::to_vec(state).unwrap_or_default();
        batch.insert(&self.sales, sale_key(tenant, &state.sale.id), json);
    }

    /// Counts `claim` in (`up`) or out of its quota and its member's count, in `batch`.
    fn count_claim(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        state: &mut SaleState,
        claim: &Claim,
        up: bool,
    ) -> ServiceResult<()> {
        state.count(&claim.quota, up);
        self.put_sale(batch, &claim.tenant, state);
        let row = member_key(claim);
        let held = Self::get::<u32>(&self.sale_members, &row)?.unwrap_or(0);
        let next = if up {
            held.saturating_add(1)
        } else {
            held.saturating_sub(1)
        };
        batch.insert(&self.sale_members, row, encode(&next)?);
        Ok(())
    }
}

#[async_trait]
impl SaleRepository for EmbeddedCampaignStore {
    async fn create_sale(
        &self,
        tenant: &TenantId,
        sale: &FlashSale,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<Option<FlashSale>> {
        let (tenant, sale) = (tenant.to_string(), sale.clone());
        self.write_locked(move |inner| {
            if let Some(stored) = inner.sale_state(&tenant, &sale.id)? {
                return Ok(Some(stored.sale));
            }
            let mut batch = inner.batch();
            inner.put_sale(&mut batch, &tenant, &SaleState::new(sale));
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(None)
        })
        .await
    }

    async fn sale(&self, tenant: &TenantId, id: &str) -> ServiceResult<Option<SaleState>> {
        self.settled().await?;
        self.inner.sale_state(tenant.as_str(), id)
    }

    async fn claim_of(
        &self,
        tenant: &TenantId,
        sale: &str,
        id: &str,
    ) -> ServiceResult<Option<Claim>> {
        self.settled().await?;
        Inner::get(&self.inner.claims, &claim_key(tenant.as_str(), sale, id))
    }

    async fn claim(&self, claim: &Claim, events: Vec<CampaignEvent>) -> ServiceResult<Claimed> {
        let claim = claim.clone();
        self.write_locked(move |inner| {
            let row = claim_key(&claim.tenant, &claim.sale, &claim.id);
            if let Some(stored) = Inner::get::<Claim>(&inner.claims, &row)? {
                return Ok(Claimed::Exists(Box::new(stored)));
            }
            let Some(mut state) = inner.sale_state(&claim.tenant, &claim.sale)? else {
                return Ok(Claimed::NoSale);
            };
            let quota = state.sale.quotas.get(&claim.quota).copied().unwrap_or(0);
            if state.taken(&claim.quota) >= quota {
                return Ok(Claimed::SoldOut);
            }
            let held = Inner::get::<u32>(&inner.sale_members, &member_key(&claim))?.unwrap_or(0);
            if held >= state.sale.per_member_limit {
                return Ok(Claimed::MemberLimit);
            }
            let mut batch = inner.batch();
            inner.count_claim(&mut batch, &mut state, &claim, true)?;
            batch.insert(&inner.claims, row, encode(&claim)?);
            batch.insert(&inner.claim_holds, hold_key(&claim), []);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(Claimed::Yes)
        })
        .await
    }

    async fn settle_claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        id: &str,
        (from, to): (ClaimState, ClaimState),
        at_ms: i64,
        coupon: Option<String>,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<ClaimSettled> {
        let row = claim_key(tenant.as_str(), sale, id);
        self.write_locked(move |inner| {
            let Some(mut claim) = Inner::get::<Claim>(&inner.claims, &row)? else {
                return Ok(ClaimSettled::Missing);
            };
            if claim.state != from {
                return Ok(ClaimSettled::NotFrom(Box::new(claim)));
            }
            let mut batch = inner.batch();
            if from.counts() && !to.counts() {
                let Some(mut state) = inner.sale_state(&claim.tenant, &claim.sale)? else {
                    return Err(ServiceError::internal("a claim of a sale that is gone"));
                };
                inner.count_claim(&mut batch, &mut state, &claim, false)?;
            }
            if from == ClaimState::Held {
                batch.remove(&inner.claim_holds, hold_key(&claim));
                claim.hold_until_ms = None;
            }
            claim.state = to;
            claim.updated_ms = at_ms;
            claim.coupon = coupon.or(claim.coupon);
            batch.insert(&inner.claims, row, encode(&claim)?);
            let seq = inner.log(&mut batch, events)?;
            inner.commit(batch, seq)?;
            Ok(ClaimSettled::Yes(Box::new(claim)))
        })
        .await
    }

    async fn lapsed_claims(&self, before_ms: i64, limit: usize) -> ServiceResult<Vec<Claim>> {
        self.settled().await?;
        let end = time_part(before_ms);
        let mut found = Vec::new();
        for guard in self.inner.claim_holds.range(..end.to_vec()).take(limit) {
            let row = guard.key().map_err(storage)?;
            let mut parts = row.get(9..).unwrap_or_default().splitn(3, |b| *b == 0);
            let (Some(tenant), Some(sale), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(ServiceError::internal("bad claim hold key"));
            };
            if let Some(c) = Inner::get(&self.inner.claims, &key(&[tenant, sale, id]))? {
                found.push(c);
            }
        }
        Ok(found)
    }
}
