//! Merging duplicate members, and reversing a merge by its record. Both are audited (every
//! write through the gateway is) and announced as events.

use crate::problem::{ApiError, JsonBody, Problem};
use crate::routes::members::MemberPath;
use crate::routes::members::time;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::member::v1 as pb;
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

impl MergePath {
    fn merge(&self) -> Result<pb::MergeRef, ApiError> {
        Ok(pb::MergeRef {
            tenant_id: TenantId::parse(&self.tenant)?.to_string(),
            merge_id: self.merge_id.clone(),
        })
    }
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

impl From<pb::Merge> for MergeDto {
    fn from(r: pb::Merge) -> Self {
        Self {
            merge_id: r.merge_id,
            survivor: r.survivor_member_id,
            duplicate: r.duplicate_member_id,
            state: r.state,
            merged_at: r.merged_at_ms,
            reversed_at: time(r.reversed_at_ms),
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
    let request = pb::MergeMembersRequest {
        tenant_id: tenant.to_string(),
        survivor_member_id: survivor.to_string(),
        duplicate_member_id: duplicate.to_string(),
    };
    Ok(Json(s.members().merge_members(request).await?.into()))
}

/// A merge's record.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/merges/{merge_id}", tag = "members",
    params(MergePath),
    responses((status = 200, body = MergeDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<MergePath>) -> Reply<MergeDto> {
    Ok(Json(s.members().get_merge(p.merge()?).await?.into()))
}

/// Reverses a merge: the duplicate comes back with what the merge moved; what the survivor
/// did since stays with it.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/merges/{merge_id}/reversal", tag = "members",
    params(MergePath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = MergeDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reverse(State(s): State<AppState>, Path(p): Path<MergePath>) -> Reply<MergeDto> {
    Ok(Json(s.members().reverse_merge(p.merge()?).await?.into()))
}
