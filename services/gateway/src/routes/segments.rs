//! Saved segments (queries over members' tags, tier, attributes, spend, scores and dates,
//! combined with all/any/not; see docs/members.md), refreshed on demand or on schedule and
//! paged through; and tags added or removed in bulk, by a list of members or a segment.

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::routes::member_orders::json_document;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ids::TenantId;
use loyalty_proto::member::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(put, get, delete))
        .routes(routes!(refresh))
        .routes(routes!(preview))
        .routes(routes!(members))
        .routes(routes!(bulk_tags))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SegmentPath {
    tenant: String,
    /// 1 to 64 of `a-z 0-9 - _`.
    code: String,
}

impl SegmentPath {
    fn tenant(&self) -> Result<TenantId, ApiError> {
        Ok(TenantId::parse(&self.tenant)?)
    }

    fn segment(&self) -> Result<pb::SegmentRef, ApiError> {
        Ok(pb::SegmentRef {
            tenant_id: self.tenant()?.to_string(),
            code: self.code.clone(),
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SegmentBody {
    name: String,
    /// The query, e.g. `{"all": [{"tag": "vip"}, {"spend_12m": {"gte": 100000}}]}`.
    #[schema(value_type = Object)]
    query: serde_json::Value,
    /// Refreshed on schedule this often (at least 5); absent: on demand only.
    refresh_minutes: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshDto {
    count: u64,
    scanned: u64,
    /// Unix milliseconds, UTC.
    at: i64,
    took_ms: u64,
}

impl From<pb::SegmentRefresh> for RefreshDto {
    fn from(r: pb::SegmentRefresh) -> Self {
        Self {
            count: r.count,
            scanned: r.scanned,
            at: r.at_ms,
            took_ms: r.took_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentDto {
    code: String,
    name: String,
    #[schema(value_type = Object)]
    query: serde_json::Value,
    refresh_minutes: Option<u32>,
    created_at: i64,
    updated_at: i64,
    /// The last refresh; absent before the first.
    last_refresh: Option<RefreshDto>,
}

impl TryFrom<pb::Segment> for SegmentDto {
    type Error = ApiError;

    fn try_from(s: pb::Segment) -> Result<Self, ApiError> {
        Ok(Self {
            query: json_document(&s.query_json)?.unwrap_or_default(),
            code: s.code,
            name: s.name,
            refresh_minutes: s.refresh_minutes,
            created_at: s.created_at_ms,
            updated_at: s.updated_at_ms,
            last_refresh: s.last_refresh.map(Into::into),
        })
    }
}

/// The tenant's segments.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/segments", tag = "segments",
    params(TenantPath),
    responses((status = 200, body = Vec<SegmentDto>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<Vec<SegmentDto>> {
    let tenant_id = TenantId::parse(&p.tenant)?.to_string();
    let list = s
        .members()
        .list_segments(pb::TenantRef { tenant_id })
        .await?;
    let segments = list.segments.into_iter().map(TryInto::try_into);
    Ok(Json(segments.collect::<Result<_, _>>()?))
}

/// Creates or replaces a segment. Its members are those of its last refresh until it is
/// refreshed again.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/segments/{code}", tag = "segments",
    params(SegmentPath), request_body = SegmentBody,
    responses((status = 200, body = SegmentDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put(
    State(s): State<AppState>,
    Path(p): Path<SegmentPath>,
    JsonBody(body): JsonBody<SegmentBody>,
) -> Reply<SegmentDto> {
    let request = pb::PutSegmentRequest {
        tenant_id: p.tenant()?.to_string(),
        code: p.code,
        name: body.name,
        query_json: body.query.to_string(),
        refresh_minutes: body.refresh_minutes,
    };
    Ok(Json(s.members().put_segment(request).await?.try_into()?))
}

/// A segment, with its last refresh.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/segments/{code}", tag = "segments",
    params(SegmentPath),
    responses((status = 200, body = SegmentDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<SegmentPath>) -> Reply<SegmentDto> {
    Ok(Json(
        s.members().get_segment(p.segment()?).await?.try_into()?,
    ))
}

/// Deletes a segment and its members list.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/segments/{code}", tag = "segments",
    params(SegmentPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete(State(s): State<AppState>, Path(p): Path<SegmentPath>) -> Reply<serde_json::Value> {
    let deleted = s.members().delete_segment(p.segment()?).await?;
    Ok(Json(serde_json::json!({"deleted": deleted.code})))
}

/// Evaluates the segment over every member now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/segments/{code}/refresh", tag = "segments",
    params(SegmentPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RefreshDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn refresh(State(s): State<AppState>, Path(p): Path<SegmentPath>) -> Reply<RefreshDto> {
    let refresh = s.members().refresh_segment(p.segment()?).await?;
    Ok(Json(refresh.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// 1 to 1000; 100 by default.
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembersPage {
    members: Vec<String>,
    /// Pass as `after` for the next page; absent on the last.
    next: Option<String>,
}

/// A page of the segment's members as of its last refresh, by member id.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/segments/{code}/members", tag = "segments",
    params(SegmentPath, MembersQuery),
    responses((status = 200, body = MembersPage), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn members(
    State(s): State<AppState>,
    Path(p): Path<SegmentPath>,
    QueryParams(q): QueryParams<MembersQuery>,
) -> Reply<MembersPage> {
    let request = pb::ListSegmentMembersRequest {
        tenant_id: p.tenant()?.to_string(),
        segment_code: p.code,
        cursor: q.after.unwrap_or_default(),
        // Any size is taken, and held to the service's range.
        limit: q.limit.unwrap_or(100).clamp(1, 1_000) as u32,
    };
    let page = s.members().list_segment_members(request).await?;
    Ok(Json(MembersPage {
        members: page.member_ids,
        next: (!page.next_cursor.is_empty()).then_some(page.next_cursor),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkTagsBody {
    /// The members to change (at most 10,000)...
    #[serde(default)]
    members: Vec<String>,
    /// ...or every member of this segment as of its last refresh.
    segment: Option<String>,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkTagsDto {
    changed: usize,
    unchanged: usize,
    /// Members not found, or erased.
    skipped: Vec<String>,
}

impl From<pb::MembersTagged> for BulkTagsDto {
    fn from(b: pb::MembersTagged) -> Self {
        Self {
            changed: b.changed as usize,
            unchanged: b.unchanged as usize,
            skipped: b.skipped,
        }
    }
}

/// Adds and removes tags on many members: a list, or a segment.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/member-tags", tag = "segments",
    params(TenantPath, ("Idempotency-Key" = String, Header)), request_body = BulkTagsBody,
    responses((status = 200, body = BulkTagsDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn bulk_tags(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<BulkTagsBody>,
) -> Reply<BulkTagsDto> {
    let request = pb::TagMembersRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        member_ids: body.members,
        segment_code: body.segment,
        add: body.add,
        remove: body.remove,
    };
    Ok(Json(s.members().tag_members(request).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// The query as JSON, as a segment's `query` (URL-encoded).
    query: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewDto {
    count: u64,
    scanned: u64,
    /// Every member was read, so `count` is exact; otherwise it counts the first 50,000
    /// members in member id order.
    complete: bool,
}

/// Counts what a query matches before it is saved (a console shows it while the query is
/// written). Reads at most 50,000 members; stores and records nothing.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/segment-preview", tag = "segments",
    params(TenantPath, PreviewQuery),
    responses((status = 200, body = PreviewDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn preview(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<PreviewQuery>,
) -> Reply<PreviewDto> {
    let request = pb::PreviewSegmentRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        query_json: q.query,
    };
    let preview = s.members().preview_segment(request).await?;
    Ok(Json(PreviewDto {
        count: preview.count,
        scanned: preview.scanned,
        complete: preview.complete,
    }))
}
