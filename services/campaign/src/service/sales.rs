//! Flash sales: set up by head office, claimed by members (a hold on one unit of their
//! tier's quota), confirmed when paid or given back (released, or lapsed by the sweep). A
//! coupon sale issues the coupon when the claim is confirmed, once per claim.

use super::Campaigns;
use crate::code;
use crate::sale::{Claim, ClaimState, FlashSale, SaleItem, SaleState};
use crate::store::{ClaimSettled, Claimed};
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};

/// Rows handled per store call by the sweep.
const PAGE: usize = 500;

/// The issue key of a confirmed coupon claim's coupon: one coupon per claim, however often
/// the confirmation is retried.
fn coupon_issue_key(sale: &str, claim: &str) -> String {
    format!("sale-{}", super::short_key(&[sale, claim]))
}

fn not_found(sale: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::SaleNotFound,
        format!("no flash sale {sale}: create it first"),
    )
}

fn claim_not_found(id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::ClaimNotFound,
        format!("no claim {id} in this sale"),
    )
}

fn not_active(claim: &Claim) -> ServiceError {
    ServiceError::new(
        ErrorCode::ClaimNotActive,
        format!(
            "claim {} is {}: claim again if the sale has units left",
            claim.id,
            claim.state.label()
        ),
    )
}

impl Campaigns {
    /// Creates a flash sale. Creating it again with the same settings answers with it;
    /// with other settings is `ALREADY_EXISTS`.
    pub async fn create_sale(
        &self,
        tenant: &TenantId,
        mut sale: FlashSale,
    ) -> ServiceResult<FlashSale> {
        sale.created_ms = self.now_ms();
        sale.validate()?;
        if let SaleItem::Coupon { template } = &sale.item {
            self.active_template(tenant, template).await?;
        }
        let event = self.event(
            tenant.as_str(),
            "",
            "flash_sale_created",
            &serde_json::json!({"sale": sale.id, "name": sale.name, "item": sale.item,
                "quotas": sale.quotas, "per_member_limit": sale.per_member_limit,
                "starts_ms": sale.starts_ms, "ends_ms": sale.ends_ms, "hold_secs": sale.hold_secs}),
        );
        match self.store.create_sale(tenant, &sale, vec![event]).await? {
            None => Ok(sale),
            Some(stored)
                if FlashSale {
                    created_ms: stored.created_ms,
                    ..sale.clone()
                } == stored =>
            {
                Ok(stored)
            }
            Some(_) => Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "a flash sale {} exists with other settings: choose another id",
                    sale.id
                ),
            )),
        }
    }

    /// A sale with the units taken from each quota.
    pub async fn sale(&self, tenant: &TenantId, id: &str) -> ServiceResult<SaleState> {
        code::check_id("sale", id)?;
        self.store
            .sale(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Claims one unit for `member` under `claim_id` (the caller's idempotency key): a hold
    /// on the member's tier's quota until the sale's hold time has passed. The same id
    /// answers with the claim it made.
    pub async fn claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        claim_id: &str,
        member: &MemberId,
    ) -> ServiceResult<Claim> {
        code::check_id("claim_id", claim_id)?;
        let state = self.sale(tenant, sale).await?;
        if let Some(stored) = self.store.claim_of(tenant, sale, claim_id).await? {
            return same_member(stored, member);
        }
        let now = self.now_ms();
        if !state.sale.open_at(now) {
            return Err(ServiceError::new(
                ErrorCode::SaleNotOpen,
                format!("flash sale {sale} takes claims from its start until its end"),
            ));
        }
        let tier = self.tier_of(tenant, member).await?;
        let Some((quota, _)) = state.sale.quota_for(tier.as_deref()) else {
            return Err(ServiceError::new(
                ErrorCode::SaleNotEligible,
                format!("flash sale {sale} has no quota for the member's tier"),
            ));
        };
        let claim = Claim {
            id: claim_id.to_string(),
            tenant: tenant.to_string(),
            sale: sale.to_string(),
            member: member.to_string(),
            quota: quota.to_string(),
            state: ClaimState::Held,
            created_ms: now,
            hold_until_ms: Some(now + i64::from(state.sale.hold_secs) * 1_000),
            updated_ms: now,
            coupon: None,
        };
        let event = self.claim_event(&claim, "flash_sale_claimed");
        match self.store.claim(&claim, vec![event]).await? {
            Claimed::Yes => Ok(claim),
            Claimed::Exists(stored) => same_member(*stored, member),
            Claimed::SoldOut => Err(ServiceError::new(
                ErrorCode::SoldOut,
                format!("flash sale {sale}: the {quota} quota is taken"),
            )),
            Claimed::MemberLimit => Err(ServiceError::new(
                ErrorCode::ClaimLimitReached,
                format!(
                    "flash sale {sale} allows {} unit(s) per member",
                    state.sale.per_member_limit
                ),
            )),
            Claimed::NoSale => Err(not_found(sale)),
        }
    }

    pub async fn sale_claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        claim_id: &str,
    ) -> ServiceResult<Claim> {
        code::check_id("claim_id", claim_id)?;
        self.store
            .claim_of(tenant, sale, claim_id)
            .await?
            .ok_or_else(|| claim_not_found(claim_id))
    }

    /// Confirms a held claim (the member paid): the unit is sold, and a coupon sale's coupon
    /// is issued. A claim whose hold lapsed is given back instead (`CLAIM_NOT_ACTIVE`).
    /// Confirming again answers with the confirmed claim.
    pub async fn confirm_claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        claim_id: &str,
    ) -> ServiceResult<Claim> {
        let claim = self.sale_claim(tenant, sale, claim_id).await?;
        match claim.state {
            ClaimState::Confirmed => return Ok(claim),
            ClaimState::Released | ClaimState::Lapsed => return Err(not_active(&claim)),
            ClaimState::Held => {}
        }
        if claim
            .hold_until_ms
            .is_some_and(|until| self.now_ms() >= until)
        {
            let lapsed = self.give_back(tenant, &claim, ClaimState::Lapsed).await?;
            return Err(not_active(&lapsed));
        }
        let state = self.sale(tenant, sale).await?;
        let coupon = match &state.sale.item {
            SaleItem::Coupon { template } => {
                let member = MemberId::parse(claim.member.as_str())?;
                let key = coupon_issue_key(sale, claim_id);
                Some(self.issue(tenant, template, &member, &key).await?.code)
            }
            SaleItem::Item { .. } => None,
        };
        let mut confirmed = claim.clone();
        confirmed.state = ClaimState::Confirmed;
        confirmed.coupon.clone_from(&coupon);
        let event = self.claim_event(&confirmed, "flash_sale_confirmed");
        let states = (ClaimState::Held, ClaimState::Confirmed);
        let settled = self
            .store
            .settle_claim(
                tenant,
                sale,
                claim_id,
                states,
                self.now_ms(),
                coupon,
                vec![event],
            )
            .await?;
        match settled {
            ClaimSettled::Yes(c) => Ok(*c),
            ClaimSettled::NotFrom(c) if c.state == ClaimState::Confirmed => Ok(*c),
            ClaimSettled::NotFrom(c) => Err(not_active(&c)),
            ClaimSettled::Missing => Err(claim_not_found(claim_id)),
        }
    }

    /// Gives a held claim's unit back (the checkout failed or was abandoned). Releasing a
    /// claim given back already answers with it; a confirmed one is `CLAIM_NOT_ACTIVE`.
    pub async fn release_claim(
        &self,
        tenant: &TenantId,
        sale: &str,
        claim_id: &str,
    ) -> ServiceResult<Claim> {
        let claim = self.sale_claim(tenant, sale, claim_id).await?;
        match claim.state {
            ClaimState::Held => self.give_back(tenant, &claim, ClaimState::Released).await,
            ClaimState::Released | ClaimState::Lapsed => Ok(claim),
            ClaimState::Confirmed => Err(not_active(&claim)),
        }
    }

    /// Gives back every claim whose hold lapsed by now; how many.
    pub async fn lapse_claims(&self) -> ServiceResult<u64> {
        let mut lapsed = 0;
        loop {
            let due = self.store.lapsed_claims(self.now_ms(), PAGE).await?;
            // The other region's stay due until it gives them back: a page of them ends
            // this round.
            let due: Vec<_> = due
                .into_iter()
                .filter(|claim| self.works_here(&claim.tenant))
                .collect();
            if due.is_empty() {
                return Ok(lapsed);
            }
            for claim in due {
                let tenant = TenantId::parse(claim.tenant.as_str())?;
                let after = self.give_back(&tenant, &claim, ClaimState::Lapsed).await?;
                lapsed += u64::from(after.state == ClaimState::Lapsed);
            }
        }
    }

    /// Moves a held claim to `to` (released or lapsed), giving its unit back; the claim as
    /// it is after (moved, or as another change left it).
    async fn give_back(
        &self,
        tenant: &TenantId,
        claim: &Claim,
        to: ClaimState,
    ) -> ServiceResult<Claim> {
        let mut after = claim.clone();
        after.state = to;
        let name = match to {
            ClaimState::Lapsed => "flash_sale_claim_lapsed",
            _ => "flash_sale_claim_released",
        };
        let event = self.claim_event(&after, name);
        let states = (ClaimState::Held, to);
        let settled = self
            .store
            .settle_claim(
                tenant,
                &claim.sale,
                &claim.id,
                states,
                self.now_ms(),
                None,
                vec![event],
            )
            .await?;
        match settled {
            ClaimSettled::Yes(c) | ClaimSettled::NotFrom(c) => Ok(*c),
            ClaimSettled::Missing => Err(claim_not_found(&claim.id)),
        }
    }

    fn claim_event(&self, claim: &Claim, name: &str) -> crate::events::CampaignEvent {
        self.event(
            &claim.tenant,
            &claim.member,
            name,
            &serde_json::json!({"sale": claim.sale, "claim": claim.id, "quota": claim.quota,
                "state": claim.state.label(), "hold_until_ms": claim.hold_until_ms,
                "coupon": claim.coupon}),
        )
    }
}

/// A stored claim answers a retry only for the member it was made for.
fn same_member(stored: Claim, member: &MemberId) -> ServiceResult<Claim> {
    if stored.member == member.as_str() {
        return Ok(stored);
    }
    Err(ServiceError::new(
        ErrorCode::IdempotencyConflict,
        format!(
            "claim id {} was used for another member: use a new id for each claim",
            stored.id
        ),
    ))
}
