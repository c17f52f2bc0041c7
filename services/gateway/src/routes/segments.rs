//! Saved segments (queries over members' tags, tier, attributes, spend, scores and dates,
//! combined with all/any/not; see docs/members.md), refreshed on demand or on schedule and
//! paged through; and tags added or removed in bulk, by a list of members or a segment.

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ServiceError;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_member::service::{BulkTagged, Refresh, Segment, SegmentInput};
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

impl From<Refresh> for RefreshDto {
    fn from(r: Refresh) -> Self {
        Self {
            count: r.count,
            scanned: r.scanned,
            at: r.at.0,
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

impl From<Segment> for SegmentDto {
    fn from(s: Segment) -> Self {
        Self {
            query: serde_json::from_str(&s.query).unwrap_or_default(),
            code: s.code,
            name: s.name,
            refresh_minutes: s.refresh_minutes,
            created_at: s.created_at.0,
            updated_at: s.updated_at.0,
            last_refresh: s.last_refresh.map(Into::into),
        }
    }
}

/// The tenant's segments.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/segments", tag = "segments",
    params(TenantPath),
    responses((status = 200, body = Vec<SegmentDto>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<Vec<SegmentDto>> {
    let tenant = TenantId::parse(&p.tenant)?;
    let segments = s.members().segments(&tenant).await?;
    Ok(Json(segments.into_iter().map(Into::into).collect()))
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
    let input = SegmentInput {
        name: body.name,
        query: body.query,
        refresh_minutes: body.refresh_minutes,
    };
    let segment = s
        .members()
        .put_segment(&p.tenant()?, &p.code, input)
        .await?;
    Ok(Json(segment.into()))
}

/// A segment, with its last refresh.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/segments/{code}", tag = "segments",
    params(SegmentPath),
    responses((status = 200, body = SegmentDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<SegmentPath>) -> Reply<SegmentDto> {
    Ok(Json(
        s.members().segment(&p.tenant()?, &p.code).await?.into(),
    ))
}

/// Deletes a segment and its members list.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/segments/{code}", tag = "segments",
    params(SegmentPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete(State(s): State<AppState>, Path(p): Path<SegmentPath>) -> Reply<serde_json::Value> {
    s.members().delete_segment(&p.tenant()?, &p.code).await?;
    Ok(Json(serde_json::json!({"deleted": p.code})))
}

/// Evaluates the segment over every member now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/segments/{code}/refresh", tag = "segments",
    params(SegmentPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RefreshDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn refresh(State(s): State<AppState>, Path(p): Path<SegmentPath>) -> Reply<RefreshDto> {
    let refresh = s.members().refresh_segment(&p.tenant()?, &p.code).await?;
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
    let (members, next) = s
        .members()
        .segment_members(
            &p.tenant()?,
            &p.code,
            q.after.as_deref(),
            q.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(MembersPage { members, next }))
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

impl From<BulkTagged> for BulkTagsDto {
    fn from(b: BulkTagged) -> Self {
        Self {
            changed: b.changed,
            unchanged: b.unchanged,
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
    let tenant = TenantId::parse(&p.tenant)?;
    let members = s.members();
    let targets = match (body.segment, body.members.is_empty()) {
        (Some(code), true) => members.all_segment_members(&tenant, &code).await?,
        (None, false) if body.members.len() <= 10_000 => body
            .members
            .iter()
            .map(MemberId::parse)
            .collect::<Result<_, _>>()?,
        (None, false) => {
            return Err(
                ServiceError::invalid("at most 10000 members at once; use a segment").into(),
            );
        }
        _ => {
            return Err(ServiceError::invalid("give either members or segment").into());
        }
    };
    let outcome = members
        .tag_many(&tenant, &targets, &body.add, &body.remove)
        .await?;
    Ok(Json(outcome.into()))
}
