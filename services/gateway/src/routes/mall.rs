//! The points mall: head office keeps its items (`campaign.mall`; JSON, docs/campaigns.md);
//! members' apps, tills and e-shops order them for members (the order's id is its
//! `Idempotency-Key`), stores make pick-ups ready and hand them over against the member's
//! one-time code, logistics partners record deliveries, and orders are cancelled or
//! returned (`campaign.mall_orders`).

use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ServiceError;
use loyalty_common::ids::TenantId;
use loyalty_proto::campaign::v1 as pb;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply = Result<Json<Value>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items))
        .routes(routes!(put_item, get_item))
        .routes(routes!(place))
        .routes(routes!(get_order))
        .routes(routes!(change))
}

use super::TenantPath;
use super::document as json;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// The last item id of the previous page.
    after: Option<String>,
    /// Items per page, 1 to 500 (100 unless given).
    limit: Option<u32>,
}

/// The tenant's items, in id order, each with its version and the units taken and left per
/// stock.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/mall/items", tag = "points mall",
    params(TenantPath, ListQuery),
    responses((status = 200, body = [Object]), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_items(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let request = pb::ListMallItemsRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        after: q.after.unwrap_or_default(),
        limit: q.limit.unwrap_or(0),
    };
    let items = s.campaigns()?.list_mall_items(request).await?;
    let items = items
        .json
        .iter()
        .map(|j| serde_json::from_str(j).map_err(ServiceError::internal))
        .collect::<Result<_, _>>()?;
    Ok(Json(items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemPath {
    tenant: String,
    /// 1 to 64 of letters, digits, `- _ .`.
    item: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PutQuery {
    /// The version read (0 for a new item): refused with `VERSION_CONFLICT` if it changed
    /// since. Absent, the item is written over whatever version it has.
    expected_version: Option<u64>,
}

/// Saves an item: what it is, its names and descriptions in Chinese and English, its price
/// (per tier), who may order it where and when, its stock per store, the member's limit,
/// and how it is received. The body's `id` must be the path's. Units already taken stay.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/mall/items/{item}", tag = "points mall",
    params(ItemPath, PutQuery), request_body(content = Object, description = "The item"),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_item(
    State(s): State<AppState>,
    Path(p): Path<ItemPath>,
    QueryParams(q): QueryParams<PutQuery>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    if body.get("id").and_then(|v| v.as_str()) != Some(p.item.as_str()) {
        return Err(ServiceError::invalid("id: must be the item named in the path").into());
    }
    let tenant_id = TenantId::parse(&p.tenant)?.to_string();
    let campaigns = s.campaigns()?;
    let expected_version = match q.expected_version {
        Some(version) => version,
        None => current_version(campaigns, &tenant_id, &p.item).await?,
    };
    let request = pb::PutMallItemRequest {
        tenant_id,
        json: body.to_string(),
        expected_version,
    };
    json(campaigns.put_mall_item(request).await?)
}

/// The item's version now (0: none yet).
async fn current_version(
    campaigns: &dyn loyalty_campaign::client::CampaignClient,
    tenant: &str,
    item: &str,
) -> Result<u64, ApiError> {
    let request = pb::MallItemRef {
        tenant_id: tenant.to_string(),
        item_id: item.to_string(),
    };
    match campaigns.get_mall_item(request).await {
        Ok(document) => {
            let value: Value =
                serde_json::from_str(&document.json).map_err(ServiceError::internal)?;
            Ok(value["version"].as_u64().unwrap_or(0))
        }
        Err(e) if e.code == loyalty_common::error::ErrorCode::MallItemNotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// An item with its version and the units taken and left per stock.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/mall/items/{item}", tag = "points mall",
    params(ItemPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_item(State(s): State<AppState>, Path(p): Path<ItemPath>) -> Reply {
    let request = pb::MallItemRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        item_id: p.item,
    };
    json(s.campaigns()?.get_mall_item(request).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderBody {
    member_id: String,
    /// The store ordered at, and the one a pick-up is collected from.
    store_id: Option<String>,
    /// The store's brand, for items offered by brand.
    brand_id: Option<String>,
    /// `pickup` or `delivery` (to the address in the member's profile); absent: the item's
    /// first way.
    fulfilment: Option<String>,
    /// Confirm it at once too (the points taken in the same call), for a till or e-shop
    /// with nothing to wait for; absent: false.
    #[serde(default)]
    confirm: bool,
}

/// Orders one unit for a member: the unit is reserved and the points held in the ledger
/// until the order is confirmed (or its hold runs out), or, with `"confirm": true`, taken
/// at once. The `Idempotency-Key` is the
/// order's id: sent again, it answers with the order.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/mall/items/{item}/orders", tag = "points mall",
    params(ItemPath, ("Idempotency-Key" = String, Header)), request_body = OrderBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn place(
    State(s): State<AppState>,
    Path(p): Path<ItemPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<OrderBody>,
) -> Reply {
    let request = pb::PlaceMallOrderRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        item_id: p.item,
        order_id: key.to_string(),
        member_id: body.member_id,
        store_id: body.store_id.unwrap_or_default(),
        brand_id: body.brand_id.unwrap_or_default(),
        fulfilment: body.fulfilment.unwrap_or_default(),
        confirm: body.confirm,
    };
    json(s.campaigns()?.place_mall_order(request).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    tenant: String,
    item: String,
    order: String,
}

/// An order: its state, price, stock, fulfilment, and the coupon a coupon item issued.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/mall/items/{item}/orders/{order}", tag = "points mall",
    params(OrderPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_order(State(s): State<AppState>, Path(p): Path<OrderPath>) -> Reply {
    let request = pb::MallOrderRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        item_id: p.item,
        order_id: p.order,
    };
    json(s.campaigns()?.get_mall_order(request).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StepPath {
    tenant: String,
    item: String,
    order: String,
    /// `confirm` (take the points), `ready` (for pick-up: answers with the one-time
    /// `pickup_code`), `fulfil` (hand over against the code, or record a delivery),
    /// `cancel` or `return` (the unit and the points go back).
    step: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StepBody {
    /// With `fulfil`, for an order ready for pick-up: the code the member shows.
    pickup_code: Option<String>,
}

/// Moves an order on. Each step sent again answers with the order as it is.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/mall/items/{item}/orders/{order}/{step}", tag = "points mall",
    params(StepPath, ("Idempotency-Key" = String, Header)), request_body = StepBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn change(
    State(s): State<AppState>,
    Path(p): Path<StepPath>,
    // Required of every POST; each step is idempotent by the order's state.
    _key: IdempotencyKeyHeader,
    // Optional: only a pick-up's fulfilment carries one.
    body: axum::body::Bytes,
) -> Reply {
    let body: StepBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => StepBody::default(),
        false => serde_json::from_slice::<Option<StepBody>>(&body)
            .map_err(|e| {
                ServiceError::new(
                    loyalty_common::error::ErrorCode::MalformedBody,
                    format!("the body is not a step's JSON: {e}"),
                )
            })?
            .unwrap_or_default(),
    };
    let request = pb::ChangeMallOrderRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        item_id: p.item,
        order_id: p.order,
        step: p.step,
        pickup_code: body.pickup_code.unwrap_or_default(),
    };
    json(s.campaigns()?.change_mall_order(request).await?)
}
