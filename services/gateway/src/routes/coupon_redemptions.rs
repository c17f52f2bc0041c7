//! The till's coupon routes: a cart evaluated against every coupon the member holds or
//! presents (whether each applies, its discount per line, or why not), and redemptions:
//! redeemed at once or held at checkout (then confirmed, or released, or lapsing by
//! themselves), and undone on a return, once. A redemption's id is its `Idempotency-Key`.

use super::TenantPath;
use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ids::TenantId;
use loyalty_proto::campaign::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(validate))
        .routes(routes!(redeem))
        .routes(routes!(get))
        .routes(routes!(confirm))
        .routes(routes!(release))
        .routes(routes!(undo))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LineBody {
    /// Unique in the cart.
    line_id: String,
    sku: String,
    #[serde(default)]
    category: String,
    quantity: u32,
    /// Minor currency units.
    unit_price: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CartBody {
    member_id: String,
    store_id: String,
    #[serde(default)]
    brand_id: String,
    /// When the sale happens (Unix milliseconds); now if absent.
    at: Option<i64>,
    lines: Vec<LineBody>,
}

fn cart(c: CartBody) -> pb::Cart {
    pb::Cart {
        member_id: c.member_id,
        store_id: c.store_id,
        brand_id: c.brand_id,
        at_ms: c.at.unwrap_or(0),
        lines: c
            .lines
            .into_iter()
            .map(|l| pb::Line {
                line_id: l.line_id,
                sku: l.sku,
                category: l.category,
                quantity: l.quantity,
                unit_price: l.unit_price,
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ValidateBody {
    cart: CartBody,
    /// Codes presented at the till, besides the member's own coupons.
    #[serde(default)]
    codes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineDiscountDto {
    line_id: String,
    amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictDto {
    code: String,
    template_id: String,
    applies: bool,
    /// Why not: `expired`, `not_yet_valid`, `min_spend`, `not_stackable`, `used_up`, ...
    reason: Option<String>,
    message: Option<String>,
    discount: i64,
    lines: Vec<LineDiscountDto>,
    bonus_points: i64,
    stored_value: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationDto {
    subtotal: i64,
    discount: i64,
    total: i64,
    coupons: Vec<VerdictDto>,
    /// Presented codes the tenant has no coupon for.
    unknown_codes: Vec<String>,
}

fn validation_dto(v: pb::Validation) -> ValidationDto {
    ValidationDto {
        subtotal: v.subtotal,
        discount: v.discount,
        total: v.total,
        coupons: v
            .coupons
            .into_iter()
            .map(|c| VerdictDto {
                code: c.code,
                template_id: c.template_id,
                applies: c.applies,
                reason: Some(c.reason).filter(|r| !r.is_empty()),
                message: Some(c.message).filter(|m| !m.is_empty()),
                discount: c.discount,
                lines: c
                    .lines
                    .into_iter()
                    .map(|l| LineDiscountDto {
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

/// Evaluates a cart against the member's coupons and the codes presented: for each,
/// whether it applies, its discount per line, or why not. Changes nothing.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/carts/evaluations", tag = "coupons",
    params(TenantPath), request_body = ValidateBody,
    responses((status = 200, body = ValidationDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn validate(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<ValidateBody>,
) -> Reply<ValidationDto> {
    let request = pb::ValidateCartRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        cart: Some(cart(body.cart)),
        codes: body.codes,
    };
    Ok(Json(validation_dto(
        s.campaigns()?.validate_cart(request).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RedeemBody {
    cart: CartBody,
    codes: Vec<String>,
    order_id: String,
    /// Hold the coupons at checkout this long (1 to 86400 seconds), then confirm or
    /// release; absent, they are redeemed at once.
    hold_secs: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedeemedCouponDto {
    code: String,
    template_id: String,
    discount: i64,
    bonus_points: i64,
    stored_value: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionDto {
    redemption_id: String,
    member_id: String,
    order_id: String,
    store_id: String,
    coupons: Vec<RedeemedCouponDto>,
    /// `held`, `redeemed`, `released` or `undone`.
    state: String,
    discount: i64,
    created_at: i64,
    hold_until: Option<i64>,
    updated_at: i64,
    /// True when this request found it done already.
    replayed: bool,
}

fn redemption_dto(r: pb::RedemptionResult) -> RedemptionDto {
    let d = r.redemption.unwrap_or_default();
    RedemptionDto {
        redemption_id: d.redemption_id,
        member_id: d.member_id,
        order_id: d.order_id,
        store_id: d.store_id,
        coupons: d
            .coupons
            .into_iter()
            .map(|c| RedeemedCouponDto {
                code: c.code,
                template_id: c.template_id,
                discount: c.discount,
                bonus_points: c.bonus_points,
                stored_value: c.stored_value,
            })
            .collect(),
        state: d.state,
        discount: d.discount,
        created_at: d.created_at_ms,
        hold_until: Some(d.hold_until_ms).filter(|t| *t > 0),
        updated_at: d.updated_at_ms,
        replayed: r.replayed,
    }
}

/// Redeems coupons for a cart, or holds them at checkout: all or none, each must apply
/// and no limit may be passed. The `Idempotency-Key` is the redemption's id.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/coupon-redemptions", tag = "coupons",
    params(TenantPath, ("Idempotency-Key" = String, Header)), request_body = RedeemBody,
    responses((status = 200, body = RedemptionDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn redeem(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<RedeemBody>,
) -> Reply<RedemptionDto> {
    let request = pb::RedeemRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        cart: Some(cart(body.cart)),
        codes: body.codes,
        redemption_id: key.to_string(),
        order_id: body.order_id,
        hold_secs: body.hold_secs.unwrap_or(0),
    };
    Ok(Json(redemption_dto(s.campaigns()?.redeem(request).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RedemptionPath {
    tenant: String,
    redemption: String,
}

impl RedemptionPath {
    fn reference(self) -> Result<pb::RedemptionRef, ApiError> {
        Ok(pb::RedemptionRef {
            tenant_id: TenantId::parse(&self.tenant)?.to_string(),
            redemption_id: self.redemption,
        })
    }
}

/// A redemption.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/coupon-redemptions/{redemption}", tag = "coupons",
    params(RedemptionPath),
    responses((status = 200, body = RedemptionDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<RedemptionPath>) -> Reply<RedemptionDto> {
    Ok(Json(redemption_dto(
        s.campaigns()?.get_redemption(p.reference()?).await?,
    )))
}

/// The route of a change of a redemption's state: `POST path`, answered with the
/// redemption; repeating it answers the same, with `replayed`.
macro_rules! settle {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt, $method:ident) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "coupons", params(RedemptionPath),
            responses((status = 200, body = RedemptionDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
        async fn $name(State(s): State<AppState>, Path(p): Path<RedemptionPath>) -> Reply<RedemptionDto> {
            Ok(Json(redemption_dto(s.campaigns()?.$method(p.reference()?).await?)))
        }
    };
}

settle! {
    /// Confirms a checkout's hold (the payment went through): its coupons are redeemed.
    confirm, "/v1/tenants/{tenant}/coupon-redemptions/{redemption}/confirm", confirm_redemption
}

settle! {
    /// Releases a checkout's hold (the payment failed or was abandoned): the uses go back.
    release, "/v1/tenants/{tenant}/coupon-redemptions/{redemption}/release", release_redemption
}

settle! {
    /// Undoes a redemption on a return: its uses go back, once.
    undo, "/v1/tenants/{tenant}/coupon-redemptions/{redemption}/undo", undo_redemption
}
