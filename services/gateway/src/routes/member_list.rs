//! The member list: a tenant's members, masked, in member id order, narrowed by tag, tier,
//! store or saved segment, a page at a time with a cursor. Finding one member by phone,
//! email or ID number is `member-lookup` (members.rs).

use crate::problem::{ApiError, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::routes::members::ProfileDto;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ids::TenantId;
use loyalty_proto::member::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_members))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberListQuery {
    /// Members holding this tag.
    tag: Option<String>,
    /// Members of this tier (its code).
    tier: Option<String>,
    /// Members who joined at this store.
    store: Option<String>,
    /// Members of this saved segment, as of its last refresh.
    segment: Option<String>,
    /// `next_cursor` of the previous page; leave out for the first.
    cursor: Option<String>,
    /// 1 to 200; default 50.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberListDto {
    /// Masked, in member id order.
    members: Vec<ProfileDto>,
    /// Where the next page starts; none on the last page. A page reads at most 5,000
    /// members, so a narrow filter may return fewer than asked (even none) with a cursor.
    next_cursor: Option<String>,
}

/// A page of the tenant's members, masked, narrowed by tag, tier, store or segment (every
/// one given must match). Erased and merged-away members are left out.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members", tag = "members",
    params(TenantPath, MemberListQuery),
    responses((status = 200, body = MemberListDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_members(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<MemberListQuery>,
) -> Result<Json<MemberListDto>, ApiError> {
    let request = pb::ListMembersRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        cursor: q.cursor.unwrap_or_default(),
        limit: q.limit.unwrap_or(0),
        tag: q.tag.unwrap_or_default(),
        tier: q.tier.unwrap_or_default(),
        store: q.store.unwrap_or_default(),
        segment: q.segment.unwrap_or_default(),
    };
    let page = s.members().list_members(request).await?;
    Ok(Json(MemberListDto {
        members: page.members.into_iter().map(Into::into).collect(),
        next_cursor: (!page.next_cursor.is_empty()).then_some(page.next_cursor),
    }))
}
