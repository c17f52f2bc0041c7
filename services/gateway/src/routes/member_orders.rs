//! A member's orders and activity: recording an order (idempotent by its order id: the same
//! order again replays, another under the same id is `409 ORDER_CONFLICT`), which earns its
//! points in the ledger at the member's tier multiplier; the purchase history; and the
//! member's activity (spend, tier, scores, lifecycle).

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::members::{MemberPath, given, member_ref, time};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_proto::member::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record, history))
        .routes(routes!(activity))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LineDto {
    sku: String,
    #[serde(default)]
    category: String,
    /// Minor currency units.
    amount: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OrderBody {
    /// Unique per tenant: 1 to 64 of letters, digits, `- _ .`.
    order_id: String,
    /// When the purchase happened (Unix milliseconds, UTC); now if absent.
    at: Option<i64>,
    /// Minor currency units; negative for a refund (with `refund_of`).
    total: i64,
    #[serde(default)]
    lines: Vec<LineDto>,
    store: Option<String>,
    channel: Option<String>,
    refund_of: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDto {
    order_id: String,
    member_id: String,
    at: i64,
    total: i64,
    lines: Vec<LineDto>,
    store: Option<String>,
    channel: Option<String>,
    refund_of: Option<String>,
    /// Points the ledger credited (absent for a refund, or without a wallet).
    points: Option<i64>,
    recorded_at: i64,
    /// True when this order was recorded by an earlier request.
    replayed: bool,
}

fn order_dto(o: pb::Order, replayed: bool) -> OrderDto {
    OrderDto {
        order_id: o.order_id,
        member_id: o.member_id,
        at: o.at_ms,
        total: o.total,
        lines: o
            .lines
            .into_iter()
            .map(|l| LineDto {
                sku: l.sku,
                category: l.category,
                amount: l.amount,
            })
            .collect(),
        store: given(o.store),
        channel: given(o.channel),
        refund_of: given(o.refund_of),
        points: o.points,
        recorded_at: o.recorded_at_ms,
        replayed,
    }
}

/// Records an order: it counts towards the member's spend, earns points at the member's
/// tier multiplier, and may lift the member to a higher tier at once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/orders", tag = "members",
    params(MemberPath), request_body = OrderBody,
    responses((status = 200, body = OrderDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn record(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    JsonBody(body): JsonBody<OrderBody>,
) -> Reply<OrderDto> {
    let (tenant, member) = p.ids()?;
    let request = pb::RecordOrderRequest {
        member: Some(member_ref(&tenant, &member)),
        order_id: body.order_id,
        at_ms: body.at,
        total: body.total,
        lines: body
            .lines
            .into_iter()
            .map(|l| pb::OrderLine {
                sku: l.sku,
                category: l.category,
                amount: l.amount,
            })
            .collect(),
        store: body.store.unwrap_or_default(),
        channel: body.channel.unwrap_or_default(),
        refund_of: body.refund_of.unwrap_or_default(),
    };
    let recorded = s.members().record_order(request).await?;
    let order = recorded.order.unwrap_or_default();
    Ok(Json(order_dto(order, recorded.replayed)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The `next` cursor of the previous page.
    before: Option<String>,
    /// 1 to 500; 50 by default.
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersPage {
    orders: Vec<OrderDto>,
    /// Pass as `before` for the next page; absent on the last.
    next: Option<String>,
}

/// The member's orders, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/orders", tag = "members",
    params(MemberPath, HistoryQuery),
    responses((status = 200, body = OrdersPage), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn history(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Reply<OrdersPage> {
    let (tenant, member) = p.ids()?;
    let request = pb::ListOrdersRequest {
        member: Some(member_ref(&tenant, &member)),
        cursor: q.before.unwrap_or_default(),
        // Any size is taken, and held to the service's range.
        limit: q.limit.unwrap_or(50).clamp(1, 500) as u32,
    };
    let page = s.members().list_orders(request).await?;
    Ok(Json(OrdersPage {
        orders: page
            .orders
            .into_iter()
            .map(|o| order_dto(o, false))
            .collect(),
        next: given(page.next_cursor),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityDto {
    member_id: String,
    tier: Option<String>,
    /// Minor units over the 12 calendar months to this one.
    spend_12m: i64,
    orders_12m: u32,
    lifetime_spend: i64,
    lifetime_orders: u32,
    first_order_at: Option<i64>,
    last_order_at: Option<i64>,
    /// `{recency, frequency, monetary}`, each 1 to 5; absent before the first scoring run
    /// or for a member who never ordered.
    #[schema(value_type = Object)]
    rfm: Option<serde_json::Value>,
    churn_risk: bool,
    /// `new`, `active`, `at_risk` or `dormant`.
    lifecycle: String,
    /// The member's tier state: period, grace, a change awaiting approval, history.
    #[schema(value_type = Object)]
    tier_state: Option<serde_json::Value>,
    erased: bool,
}

/// The member's activity: spend, tier, scores and lifecycle stage (no personal data).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/activity", tag = "members",
    params(MemberPath),
    responses((status = 200, body = ActivityDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn activity(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ActivityDto> {
    let (tenant, member) = p.ids()?;
    let a = s
        .members()
        .get_activity(member_ref(&tenant, &member))
        .await?;
    Ok(Json(ActivityDto {
        member_id: a.member_id,
        tier: given(a.tier),
        spend_12m: a.spend_12m,
        orders_12m: a.orders_12m,
        lifetime_spend: a.lifetime_spend,
        lifetime_orders: a.lifetime_orders,
        first_order_at: time(a.first_order_at_ms),
        last_order_at: time(a.last_order_at_ms),
        rfm: a.rfm.map(|r| {
            serde_json::json!({
                "recency": r.recency,
                "frequency": r.frequency,
                "monetary": r.monetary,
            })
        }),
        churn_risk: a.churn_risk,
        lifecycle: a.lifecycle,
        tier_state: json_document(&a.tier_state_json)?,
        erased: a.erased,
    }))
}

/// A JSON document from the member service ("" = none) as a part of a reply.
pub(crate) fn json_document(text: &str) -> Result<Option<serde_json::Value>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    let value = serde_json::from_str(text).map_err(loyalty_common::ServiceError::internal)?;
    Ok(Some(value))
}
