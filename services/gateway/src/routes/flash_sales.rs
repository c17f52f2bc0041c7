//! Flash sales: head office creates a sale (its stock split into quotas per tier, a limit per
//! member, a start and a hold time, as JSON: docs/campaigns.md; `campaign.sales`), tills and
//! e-shops claim a unit for a member (a hold; the claim's id is its `Idempotency-Key`), then
//! confirm it when paid or release it when the checkout fails (`campaign.claims`). A hold
//! neither confirmed nor released lapses by itself.

use super::TenantPath;
use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ServiceError;
use loyalty_common::ids::TenantId;
use loyalty_proto::campaign::v1 as pb;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get))
        .routes(routes!(claim))
        .routes(routes!(get_claim))
        .routes(routes!(confirm))
        .routes(routes!(release))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SalePath {
    tenant: String,
    /// 1 to 64 of letters, digits, `- _ .`.
    sale: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlashSaleDto {
    /// The sale as created (docs/campaigns.md gives its fields).
    #[schema(value_type = Object)]
    sale: serde_json::Value,
    /// Units held or sold, per quota.
    taken: BTreeMap<String, u64>,
    /// Units left, per quota.
    remaining: BTreeMap<String, u64>,
}

fn sale_dto(s: pb::FlashSale) -> Result<FlashSaleDto, ApiError> {
    Ok(FlashSaleDto {
        sale: serde_json::from_str(&s.json).map_err(ServiceError::internal)?,
        taken: s.taken.into_iter().collect(),
        remaining: s.remaining.into_iter().collect(),
    })
}

/// Creates a flash sale. Sending it again answers with the sale; another sale under its id
/// is `ALREADY_EXISTS`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/flash-sales", tag = "flash sales",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    request_body(content = Object, description = "The sale"),
    responses((status = 200, body = FlashSaleDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    // Required of every POST; the sale's id is what makes its creation idempotent.
    _key: IdempotencyKeyHeader,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Reply<FlashSaleDto> {
    let request = pb::CreateFlashSaleRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        json: body.to_string(),
    };
    sale_dto(s.campaigns()?.create_flash_sale(request).await?).map(Json)
}

/// A flash sale with its units taken and left per quota.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/flash-sales/{sale}", tag = "flash sales",
    params(SalePath),
    responses((status = 200, body = FlashSaleDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<SalePath>) -> Reply<FlashSaleDto> {
    let request = pb::FlashSaleRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        sale_id: p.sale,
    };
    sale_dto(s.campaigns()?.get_flash_sale(request).await?).map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ClaimBody {
    member_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimDto {
    claim_id: String,
    sale_id: String,
    member_id: String,
    /// The quota it counts in: the member's tier's, or `*`.
    quota: String,
    /// `held`, `confirmed`, `released` or `lapsed`.
    state: String,
    created_at: i64,
    hold_until: Option<i64>,
    updated_at: i64,
    /// The code a coupon sale issued when the claim was confirmed.
    coupon: Option<String>,
}

fn claim_dto(c: pb::Claim) -> ClaimDto {
    ClaimDto {
        claim_id: c.claim_id,
        sale_id: c.sale_id,
        member_id: c.member_id,
        quota: c.quota,
        state: c.state,
        created_at: c.created_at_ms,
        hold_until: Some(c.hold_until_ms).filter(|t| *t > 0),
        updated_at: c.updated_at_ms,
        coupon: Some(c.coupon).filter(|c| !c.is_empty()),
    }
}

/// Claims one unit for a member: a hold on the member's tier's quota until the sale's hold
/// time has passed. The `Idempotency-Key` is the claim's id.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/flash-sales/{sale}/claims", tag = "flash sales",
    params(SalePath, ("Idempotency-Key" = String, Header)), request_body = ClaimBody,
    responses((status = 200, body = ClaimDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn claim(
    State(s): State<AppState>,
    Path(p): Path<SalePath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<ClaimBody>,
) -> Reply<ClaimDto> {
    let request = pb::ClaimRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        sale_id: p.sale,
        claim_id: key.to_string(),
        member_id: body.member_id,
    };
    Ok(Json(claim_dto(
        s.campaigns()?.claim_flash_sale(request).await?,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClaimPath {
    tenant: String,
    sale: String,
    claim: String,
}

impl ClaimPath {
    fn reference(self) -> Result<pb::ClaimRef, ApiError> {
        Ok(pb::ClaimRef {
            tenant_id: TenantId::parse(&self.tenant)?.to_string(),
            sale_id: self.sale,
            claim_id: self.claim,
        })
    }
}

/// A claim.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}", tag = "flash sales",
    params(ClaimPath),
    responses((status = 200, body = ClaimDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_claim(State(s): State<AppState>, Path(p): Path<ClaimPath>) -> Reply<ClaimDto> {
    Ok(Json(claim_dto(
        s.campaigns()?.get_claim(p.reference()?).await?,
    )))
}

/// Confirms a held claim (the member paid): the unit is sold, and a coupon sale issues its
/// coupon. Confirming again answers with the confirmed claim.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}/confirm", tag = "flash sales",
    params(ClaimPath),
    responses((status = 200, body = ClaimDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn confirm(State(s): State<AppState>, Path(p): Path<ClaimPath>) -> Reply<ClaimDto> {
    Ok(Json(claim_dto(
        s.campaigns()?.confirm_claim(p.reference()?).await?,
    )))
}

/// Releases a held claim (the checkout failed or was abandoned): the unit goes back.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/flash-sales/{sale}/claims/{claim}/release", tag = "flash sales",
    params(ClaimPath),
    responses((status = 200, body = ClaimDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn release(State(s): State<AppState>, Path(p): Path<ClaimPath>) -> Reply<ClaimDto> {
    Ok(Json(claim_dto(
        s.campaigns()?.release_claim(p.reference()?).await?,
    )))
}
