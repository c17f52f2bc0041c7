//! Merging duplicate members, and reversing a merge by its record. Both are audited (every
//! write through the gateway is) and announced as events.

use crate::problem::{ApiError, JsonBody, Problem};
use crate::routes::members::MemberPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_member::service::{MergeRecord, MergeState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merge))
        .routes(routes!(get))
        .routes(routes!(reverse))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MergePath {
    tenant: String,
    merge_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MergeBody {
    /// The duplicate to merge into the member of the path.
    duplicate: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeDto {
    merge_id: String,
    survivor: String,
    duplicate: String,
    /// `applied` or `reversed`.
    state: String,
    merged_at: i64,
    reversed_at: Option<i64>,
    tags_added: Vec<String>,
    orders_moved: Vec<String>,
    lifetime_spend_moved: i64,
    points_moved: i64,
}

impl From<MergeRecord> for MergeDto {
    fn from(r: MergeRecord) -> Self {
        Self {
            merge_id: r.id,
            survivor: r.survivor,
            duplicate: r.duplicate,
            state: match r.state {
                MergeState::Applied => "applied",
                MergeState::Reversed => "reversed",
            }
            .into(),
            merged_at: r.merged_at.0,
            reversed_at: r.reversed_at.map(|t| t.0),
            tags_added: r.tags_added,
            orders_moved: r.orders_moved,
            lifetime_spend_moved: r.lifetime_spend_moved,
            points_moved: r.points_moved,
        }
    }
}

/// Merges a duplicate into this member: tags, spend, orders and points move; the duplicate's
/// phone, email and ID number are released and its reads answer `409 MEMBER_MERGED`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/merges", tag = "members",
    params(MemberPath, ("Idempotency-Key" = String, Header)), request_body = MergeBody,
    responses((status = 200, body = MergeDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn merge(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    JsonBody(body): JsonBody<MergeBody>,
) -> Reply<MergeDto> {
    let (tenant, survivor) = p.ids()?;
    let duplicate = MemberId::parse(&body.duplicate)?;
    let record = s.members().merge(&tenant, &survivor, &duplicate).await?;
    Ok(Json(record.into()))
}

/// A merge's record.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/merges/{merge_id}", tag = "members",
    params(MergePath),
    responses((status = 200, body = MergeDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<MergePath>) -> Reply<MergeDto> {
    let tenant = TenantId::parse(&p.tenant)?;
    Ok(Json(
        s.members().merge_record(&tenant, &p.merge_id).await?.into(),
    ))
}

/// Reverses a merge: the duplicate comes back with what the merge moved; what the survivor
/// did since stays with it.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/merges/{merge_id}/reversal", tag = "members",
    params(MergePath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = MergeDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reverse(State(s): State<AppState>, Path(p): Path<MergePath>) -> Reply<MergeDto> {
    let tenant = TenantId::parse(&p.tenant)?;
    Ok(Json(
        s.members()
            .reverse_merge(&tenant, &p.merge_id)
            .await?
            .into(),
    ))
}
