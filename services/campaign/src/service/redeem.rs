//! The till's side: a cart evaluated against every coupon the member holds or presents,
//! coupons redeemed (or held at checkout, then confirmed or released), and a redemption
//! undone on a return, once.

use super::Campaigns;
use crate::cart::{self, Candidate, Cart, Evaluation, Refusal};
use crate::code;
use crate::coupon::{Coupon, RedeemedCoupon, Redemption, RedemptionState};
use crate::store::{Limit, LimitReached, Redeemed, Settled};
use crate::template::CouponTemplate;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The longest a checkout may hold coupons: a day.
pub const MAX_HOLD_SECS: u32 = 86_400;
/// The most codes one cart may present.
const MAX_PRESENTED: usize = 50;
/// A member's coupons read for one evaluation.
const MEMBER_COUPONS: usize = 1_000;

/// A cart's evaluation, with the presented codes the tenant has no coupon for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub evaluation: Evaluation,
    pub unknown_codes: Vec<String>,
}

/// Coupons to redeem for a cart, once per `redemption_id` (the caller's idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemRequest {
    pub cart: Cart,
    pub codes: Vec<String>,
    pub redemption_id: String,
    pub order_id: String,
    /// Held for this long at checkout, then confirmed or given back; None redeems now.
    pub hold_secs: Option<u32>,
}

/// A redemption, and whether this call found it done already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionResult {
    pub redemption: Redemption,
    pub replayed: bool,
}

fn not_active(r: &Redemption, what: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::RedemptionNotActive,
        format!("redemption {} is {}: {what}", r.id, r.state.label()),
    )
}

impl Campaigns {
    /// Evaluates `cart` against the member's coupons and the `presented` codes: for each,
    /// whether it applies, its discount per line, or why not.
    pub async fn validate(
        &self,
        tenant: &TenantId,
        cart: &Cart,
        presented: &[String],
    ) -> ServiceResult<Validation> {
        let member = self.check(cart, presented)?;
        let cart = &self.dated(cart);
        let (presented, unknown_codes) = self.presented(tenant, presented).await?;
        let mut coupons = presented;
        let held = self
            .store
            .member_coupons(tenant, member.as_str(), None, MEMBER_COUPONS)
            .await?;
        for coupon in held {
            // A coupon of the member's that lapsed is no longer offered unless presented.
            if coupon.valid_until_ms > cart.at_ms && !coupons.iter().any(|c| c.code == coupon.code)
            {
                coupons.push(coupon);
            }
        }
        let candidates = self.candidates(tenant, &member, coupons).await?;
        let cart = self.with_tier(tenant, cart, &member, &candidates).await?;
        Ok(Validation {
            evaluation: cart::evaluate(&cart, &candidates),
            unknown_codes,
        })
    }

    /// Redeems the codes for the cart, or holds them, all or none: each must apply and no
    /// limit may be passed. The same `redemption_id` answers with what it did.
    pub async fn redeem(
        &self,
        tenant: &TenantId,
        request: &RedeemRequest,
    ) -> ServiceResult<RedemptionResult> {
        let member = self.check(&request.cart, &request.codes)?;
        code::check_id("redemption_id", &request.redemption_id)?;
        code::check_id("order_id", &request.order_id)?;
        if request.codes.is_empty() {
            return Err(ServiceError::invalid(
                "codes: name at least one coupon to redeem",
            ));
        }
        if request
            .hold_secs
            .is_some_and(|s| !(1..=MAX_HOLD_SECS).contains(&s))
        {
            return Err(ServiceError::invalid(format!(
                "hold_secs: must be 1 to {MAX_HOLD_SECS}, or absent to redeem now"
            )));
        }
        let digest = digest(request);
        if let Some(stored) = self
            .store
            .redemption(tenant, &request.redemption_id)
            .await?
        {
            return replay(stored, &digest);
        }
        let (coupons, unknown) = self.presented(tenant, &request.codes).await?;
        if let Some(code) = unknown.first() {
            return Err(ServiceError::new(
                ErrorCode::CouponNotFound,
                format!("no coupon {code} in this tenant"),
            ));
        }
        let candidates = self.candidates(tenant, &member, coupons).await?;
        let cart = self.dated(&request.cart);
        let cart = self.with_tier(tenant, &cart, &member, &candidates).await?;
        let evaluation = cart::evaluate(&cart, &candidates);
        if let Some(refused) = evaluation.coupons.iter().find(|c| !c.applies) {
            let why = refused.refusal.map_or("it does not apply", |r| r.message());
            let reason = refused.refusal.map_or("", |r| r.code());
            // A limit reached is the same answer whether the evaluation or the commit saw it,
            // unless this redemption's own earlier attempt, cut off part-way, counted the
            // uses: its retry finishes what that attempt began.
            let code = match refused.refusal {
                Some(Refusal::UsedUp | Refusal::MemberLimit | Refusal::TotalLimit) => {
                    ErrorCode::CouponLimitReached
                }
                _ => ErrorCode::CouponNotApplicable,
            };
            let id = &request.redemption_id;
            if code == ErrorCode::CouponLimitReached {
                // Its earlier attempt may have finished since the first look.
                if let Some(stored) = self.store.redemption(tenant, id).await? {
                    return replay(stored, &digest);
                }
                if let Some(pending) = self.store.pending_redemption(tenant, id).await? {
                    let limits: Vec<Limit> = candidates.iter().map(limit_of).collect();
                    return self.resume_redemption(pending, &digest, &limits).await;
                }
            }
            return Err(ServiceError::new(
                code,
                format!("coupon {} ({reason}): {why}", refused.code),
            ));
        }
        let now = self.now_ms();
        let state = match request.hold_secs {
            Some(_) => RedemptionState::Held,
            None => RedemptionState::Redeemed,
        };
        let redemption = Redemption {
            id: request.redemption_id.clone(),
            tenant: tenant.to_string(),
            member: member.to_string(),
            order_id: request.order_id.clone(),
            store: request.cart.store.clone(),
            coupons: evaluation
                .coupons
                .iter()
                .map(|c| RedeemedCoupon {
                    code: c.code.clone(),
                    template: c.template.clone(),
                    discount: c.discount,
                    bonus_points: c.bonus_points,
                    stored_value: c.stored_value,
                })
                .collect(),
            state,
            created_ms: now,
            hold_until_ms: request.hold_secs.map(|s| now + i64::from(s) * 1_000),
            updated_ms: now,
            request_digest: digest.clone(),
        };
        let limits: Vec<Limit> = candidates.iter().map(limit_of).collect();
        let event = self.redemption_event(&redemption, state);
        match self.store.redeem(&redemption, &limits, vec![event]).await? {
            Redeemed::Yes => Ok(RedemptionResult {
                redemption,
                replayed: false,
            }),
            Redeemed::Exists(stored) => replay(*stored, &digest),
            Redeemed::Refused(code, reached) => Err(limit_reached(&code, reached)),
            // An earlier attempt cut off while counting, whose counts reached no limit.
            Redeemed::Pending(earlier) => self.resume_redemption(*earlier, &digest, &limits).await,
        }
    }

    /// Confirms a checkout's hold: the coupons are redeemed. A hold that lapsed is given
    /// back instead, and refused.
    pub async fn confirm(&self, tenant: &TenantId, id: &str) -> ServiceResult<RedemptionResult> {
        let now = self.now_ms();
        let stored = self.redemption(tenant, id).await?;
        if stored.state == RedemptionState::Held && stored.hold_until_ms.is_some_and(|t| t <= now) {
            self.release(tenant, id).await?;
            return Err(not_active(
                &stored,
                "its hold lapsed and its coupons were given back; redeem again",
            ));
        }
        self.settle(
            tenant,
            &stored,
            RedemptionState::Held,
            RedemptionState::Redeemed,
            "confirm it",
        )
        .await
    }

    /// Gives a checkout's hold back (a failed or abandoned payment).
    pub async fn release(&self, tenant: &TenantId, id: &str) -> ServiceResult<RedemptionResult> {
        let stored = self.redemption(tenant, id).await?;
        self.settle(
            tenant,
            &stored,
            RedemptionState::Held,
            RedemptionState::Released,
            "release it",
        )
        .await
    }

    /// Undoes a redemption on a return: its uses are given back, once.
    pub async fn undo(&self, tenant: &TenantId, id: &str) -> ServiceResult<RedemptionResult> {
        let stored = self.redemption(tenant, id).await?;
        self.settle(
            tenant,
            &stored,
            RedemptionState::Redeemed,
            RedemptionState::Undone,
            "undo it (a hold is released instead)",
        )
        .await
    }

    pub async fn redemption(&self, tenant: &TenantId, id: &str) -> ServiceResult<Redemption> {
        self.store.redemption(tenant, id).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::RedemptionNotFound,
                format!("no coupon redemption {id}"),
            )
        })
    }

    /// Moves `r` from `from` to `to`; a redemption already in `to` answers as a replay.
    pub(super) async fn settle(
        &self,
        tenant: &TenantId,
        r: &Redemption,
        from: RedemptionState,
        to: RedemptionState,
        what: &str,
    ) -> ServiceResult<RedemptionResult> {
        if r.state == to {
            return Ok(RedemptionResult {
                redemption: r.clone(),
                replayed: true,
            });
        }
        let event = self.redemption_event(r, to);
        match self
            .store
            .settle(tenant, &r.id, from, to, self.now_ms(), vec![event])
            .await?
        {
            Settled::Yes(now) => Ok(RedemptionResult {
                redemption: *now,
                replayed: false,
            }),
            Settled::NotFrom(now) if now.state == to => Ok(RedemptionResult {
                redemption: *now,
                replayed: true,
            }),
            Settled::NotFrom(now) => Err(not_active(&now, &format!("cannot {what}"))),
            Settled::Missing => Err(ServiceError::new(
                ErrorCode::RedemptionNotFound,
                format!("no coupon redemption {}", r.id),
            )),
        }
    }

    fn redemption_event(
        &self,
        r: &Redemption,
        state: RedemptionState,
    ) -> crate::events::CampaignEvent {
        let name = match state {
            RedemptionState::Held => "coupon_held",
            RedemptionState::Redeemed => "coupon_redeemed",
            RedemptionState::Released => "coupon_released",
            RedemptionState::Undone => "coupon_redemption_undone",
        };
        let codes: Vec<&str> = r.coupons.iter().map(|c| c.code.as_str()).collect();
        self.event(
            &r.tenant,
            &r.member,
            name,
            &serde_json::json!({"redemption": r.id, "order_id": r.order_id, "store": r.store,
                "codes": codes, "discount": r.discount(),
                "coupons": r.coupons}),
        )
    }

    /// The cart at its time, or now when it gives none (0). A redemption's digest is of the
    /// cart as sent, so a retry without a time is still the same request.
    fn dated(&self, cart: &Cart) -> Cart {
        Cart {
            at_ms: if cart.at_ms == 0 {
                self.now_ms()
            } else {
                cart.at_ms
            },
            ..cart.clone()
        }
    }

    /// Checks a cart and the codes presented with it; the cart's member id.
    fn check(&self, cart: &Cart, presented: &[String]) -> ServiceResult<MemberId> {
        cart::check_cart(cart).map_err(ServiceError::invalid)?;
        if presented.len() > MAX_PRESENTED {
            return Err(ServiceError::invalid(format!(
                "codes: at most {MAX_PRESENTED} per cart"
            )));
        }
        code::check_id("cart.store", &cart.store)?;
        MemberId::parse(cart.member.as_str())
    }

    /// The presented codes' coupons, and the codes the tenant has none for.
    async fn presented(
        &self,
        tenant: &TenantId,
        codes: &[String],
    ) -> ServiceResult<(Vec<Coupon>, Vec<String>)> {
        let (mut found, mut unknown) = (Vec::new(), Vec::new());
        for (i, raw) in codes.iter().enumerate() {
            let code = code::normalize(raw)
                .map_err(|e| ServiceError::invalid(format!("codes[{i}]: {}", e.message)))?;
            match self.store.coupon(tenant, &code).await? {
                Some(coupon) => found.push(coupon),
                None => unknown.push(code),
            }
        }
        Ok((found, unknown))
    }

    /// Each coupon with its template and the counters its limits read.
    async fn candidates(
        &self,
        tenant: &TenantId,
        member: &MemberId,
        coupons: Vec<Coupon>,
    ) -> ServiceResult<Vec<Candidate>> {
        let mut templates: HashMap<String, CouponTemplate> = HashMap::new();
        let mut candidates = Vec::with_capacity(coupons.len());
        for coupon in coupons {
            if !templates.contains_key(&coupon.template) {
                let t = self.template(tenant, &coupon.template).await?.value;
                templates.insert(coupon.template.clone(), t);
            }
            let Some(template) = templates.get(&coupon.template).cloned() else {
                continue;
            };
            let usage = self
                .store
                .usage(tenant, &coupon.template, &coupon.code, member.as_str())
                .await?;
            candidates.push(Candidate {
                coupon,
                template,
                usage,
            });
        }
        Ok(candidates)
    }

    /// The cart with the member's tier as the member service has it: the till's word for
    /// it is never taken. Read only when a template asks for a tier.
    async fn with_tier(
        &self,
        tenant: &TenantId,
        cart: &Cart,
        member: &MemberId,
        candidates: &[Candidate],
    ) -> ServiceResult<Cart> {
        let tier = if candidates
            .iter()
            .any(|c| !c.template.eligible.tiers.is_empty())
        {
            self.tier_of(tenant, member).await?
        } else {
            None
        };
        Ok(Cart {
            tier,
            ..cart.clone()
        })
    }
}

/// The limits a candidate's redemption is checked against.
fn limit_of(c: &Candidate) -> Limit {
    Limit {
        code: c.coupon.code.clone(),
        template: c.template.id.clone(),
        uses_per_code: c.template.uses_per_code,
        per_member_limit: c.template.per_member_limit,
        total_limit: c.template.total_limit,
    }
}

/// What a request is, for telling a retry from a reused key.
fn digest(request: &RedeemRequest) -> String {
    let body = serde_json::to_vec(request).unwrap_or_default();
    hex::encode(Sha256::digest(body))
}

impl Campaigns {
    /// Finishes `pending`, this redemption's earlier attempt that was cut off part-way, as
    /// that attempt would have: its retry gets the first result, not a limit its own
    /// attempt's counted uses reached.
    async fn resume_redemption(
        &self,
        pending: Redemption,
        digest: &str,
        limits: &[Limit],
    ) -> ServiceResult<RedemptionResult> {
        if pending.request_digest != digest {
            return replay(pending, digest);
        }
        let event = self.redemption_event(&pending, pending.state);
        match self
            .store
            .resume_redemption(&pending, limits, vec![event])
            .await?
        {
            Redeemed::Yes => Ok(RedemptionResult {
                redemption: pending,
                replayed: false,
            }),
            Redeemed::Exists(stored) => replay(*stored, digest),
            Redeemed::Refused(code, reached) => Err(limit_reached(&code, reached)),
            Redeemed::Pending(_) => Err(ServiceError::unavailable(format!(
                "redemption {} is being recorded by another attempt: retry",
                pending.id
            ))),
        }
    }
}

fn limit_reached(code: &str, reached: LimitReached) -> ServiceError {
    let why = match reached {
        LimitReached::Code => "this code has been used as often as it allows",
        LimitReached::Member => "the member has used this coupon as often as it allows",
        LimitReached::Total => "the coupon's total number of uses is reached",
    };
    ServiceError::new(
        ErrorCode::CouponLimitReached,
        format!("coupon {code}: {why}"),
    )
}

fn replay(stored: Redemption, digest: &str) -> ServiceResult<RedemptionResult> {
    if stored.request_digest != digest {
        return Err(ServiceError::new(
            ErrorCode::IdempotencyConflict,
            format!(
                "redemption {} was made with another cart or codes: use a new redemption id",
                stored.id
            ),
        ));
    }
    Ok(RedemptionResult {
        redemption: stored,
        replayed: true,
    })
}
