//! The one mapping between `campaign.v1` messages and the campaign service's domain, used by
//! the in-process client (and so by the gRPC port, which serves through it).

use crate::cart::{Cart, Evaluation, Line};
use crate::coupon::{Coupon, Redemption};
use crate::sale::{Claim, FlashSale, SaleState};
use crate::service::issue::Issued;
use crate::service::redeem::{RedemptionResult, Validation};
use crate::store::Versioned;
use crate::template::CouponTemplate;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_proto::campaign::v1 as pb;

/// A cart as the domain has it (an unset time, 0, is the service's now).
pub fn cart(cart: Option<pb::Cart>) -> ServiceResult<Cart> {
    let c = cart.ok_or_else(|| ServiceError::invalid("cart is required"))?;
    Ok(Cart {
        member: c.member_id,
        store: c.store_id,
        brand: Some(c.brand_id).filter(|b| !b.is_empty()),
        at_ms: c.at_ms,
        // The member service's word, read when a template asks.
        tier: None,
        lines: c
            .lines
            .into_iter()
            .map(|l| Line {
                id: l.line_id,
                sku: l.sku,
                category: Some(l.category).filter(|c| !c.is_empty()),
                quantity: l.quantity,
                unit_price: l.unit_price,
            })
            .collect(),
    })
}

pub fn template_in(json: &str) -> ServiceResult<CouponTemplate> {
    serde_json::from_str(json).map_err(|e| ServiceError::invalid(format!("template: {e}")))
}

pub fn template(t: &Versioned<CouponTemplate>) -> pb::Template {
    pb::Template {
        // Plain data: serialising it cannot fail.
        json: serde_json::to_string(&t.value).unwrap_or_default(),
        version: t.version,
    }
}

pub fn coupon(c: Coupon) -> pb::Coupon {
    pb::Coupon {
        code: c.code,
        template_id: c.template,
        member_id: c.member.unwrap_or_default(),
        issued_at_ms: c.issued_ms,
        valid_from_ms: c.valid_from_ms,
        valid_until_ms: c.valid_until_ms,
        batch: c.batch.unwrap_or_default(),
    }
}

pub fn issued(i: Issued) -> pb::IssueResult {
    pb::IssueResult {
        added: i.added,
        already: i.already,
        taken: i.taken,
    }
}

pub fn validation(v: Validation) -> pb::Validation {
    let Evaluation {
        subtotal,
        discount,
        total,
        coupons,
    } = v.evaluation;
    pb::Validation {
        subtotal,
        discount,
        total,
        coupons: coupons
            .into_iter()
            .map(|c| pb::CouponVerdict {
                code: c.code,
                template_id: c.template,
                applies: c.applies,
                reason: c.refusal.map(|r| r.code().to_string()).unwrap_or_default(),
                message: c
                    .refusal
                    .map(|r| r.message().to_string())
                    .unwrap_or_default(),
                discount: c.discount,
                lines: c
                    .lines
                    .into_iter()
                    .map(|l| pb::LineDiscount {
                        line_id: l.line_id,
                        amount: l.amount,
                    })
                    .collect(),
                bonus_points: c.bonus_points,
                stored_value: c.stored_value,
            })
            .collect(),
        unknown_codes: v.unknown_codes,
    }
}

pub fn redemption(r: Redemption) -> pb::Redemption {
    let discount = r.discount();
    pb::Redemption {
        redemption_id: r.id,
        member_id: r.member,
        order_id: r.order_id,
        store_id: r.store,
        coupons: r
            .coupons
            .into_iter()
            .map(|c| pb::RedeemedCoupon {
                code: c.code,
                template_id: c.template,
                discount: c.discount,
                bonus_points: c.bonus_points,
                stored_value: c.stored_value,
            })
            .collect(),
        state: r.state.label().to_string(),
        created_at_ms: r.created_ms,
        hold_until_ms: r.hold_until_ms.unwrap_or(0),
        updated_at_ms: r.updated_ms,
        discount,
    }
}

pub fn result(r: RedemptionResult) -> pb::RedemptionResult {
    pb::RedemptionResult {
        redemption: Some(redemption(r.redemption)),
        replayed: r.replayed,
    }
}

pub fn sale_in(json: &str) -> ServiceResult<FlashSale> {
    serde_json::from_str(json).map_err(|e| ServiceError::invalid(format!("flash sale: {e}")))
}

pub fn sale(state: SaleState) -> pb::FlashSale {
    let remaining = state
        .sale
        .quotas
        .iter()
        .map(|(quota, units)| (quota.clone(), units.saturating_sub(state.taken(quota))))
        .collect();
    pb::FlashSale {
        // Plain data: serialising it cannot fail.
        json: serde_json::to_string(&state.sale).unwrap_or_default(),
        taken: state.taken.into_iter().collect(),
        remaining,
    }
}

pub fn claim(c: Claim) -> pb::Claim {
    pb::Claim {
        claim_id: c.id,
        sale_id: c.sale,
        member_id: c.member,
        quota: c.quota,
        state: c.state.label().to_string(),
        created_at_ms: c.created_ms,
        hold_until_ms: c.hold_until_ms.unwrap_or(0),
        updated_at_ms: c.updated_ms,
        coupon: c.coupon.unwrap_or_default(),
    }
}
