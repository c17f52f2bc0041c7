//! Lucky draws: head office creates a draw (prizes with odds and stock, a cost in points, a
//! limit per member; JSON, docs/campaigns.md; `campaign.draws`), members' apps enter members
//! (the entry's id is its `Idempotency-Key`; `campaign.draw_entries`), and anyone allowed to
//! read a draw sees what it awarded, and its seed once it has ended, to check every roll.

use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
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
        .routes(routes!(create))
        .routes(routes!(get))
        .routes(routes!(enter))
        .routes(routes!(get_entry))
}

use super::TenantPath;
use super::document as json;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DrawPath {
    tenant: String,
    /// 1 to 64 of letters, digits, `- _ .`.
    draw: String,
}

/// Creates a lucky draw with a fresh secret seed, whose SHA-256 the answer publishes.
/// Sending it again answers with the draw; another draw under its id is `ALREADY_EXISTS`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/lucky-draws", tag = "lucky draws",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    request_body(content = Object, description = "The draw"),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    // Required of every POST; the draw's id is what makes its creation idempotent.
    _key: IdempotencyKeyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let request = pb::CreateLuckyDrawRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        json: body.to_string(),
    };
    json(s.campaigns()?.create_lucky_draw(request).await?)
}

/// A draw with what it has awarded; its `seed` is `null` until the draw has ended.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/lucky-draws/{draw}", tag = "lucky draws",
    params(DrawPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<DrawPath>) -> Reply {
    let request = pb::LuckyDrawRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        draw_id: p.draw,
    };
    json(s.campaigns()?.get_lucky_draw(request).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EntryBody {
    member_id: String,
}

/// Enters a member: the draw's cost is taken from the member's points and the entry's roll
/// decides its prize. The `Idempotency-Key` is the entry's id: sent again, it answers with
/// the entry.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/lucky-draws/{draw}/entries", tag = "lucky draws",
    params(DrawPath, ("Idempotency-Key" = String, Header)), request_body = EntryBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn enter(
    State(s): State<AppState>,
    Path(p): Path<DrawPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<EntryBody>,
) -> Reply {
    let request = pb::EnterLuckyDrawRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        draw_id: p.draw,
        entry_id: key.to_string(),
        member_id: body.member_id,
    };
    json(s.campaigns()?.enter_lucky_draw(request).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntryPath {
    tenant: String,
    draw: String,
    entry: String,
}

/// An entry with what decided it: its roll, the prize drawn, the prize won and why not.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/lucky-draws/{draw}/entries/{entry}", tag = "lucky draws",
    params(EntryPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_entry(State(s): State<AppState>, Path(p): Path<EntryPath>) -> Reply {
    let request = pb::DrawEntryRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        draw_id: p.draw,
        entry_id: p.entry,
    };
    json(s.campaigns()?.get_draw_entry(request).await?)
}
