//! The loyalty programme's member rules: the tenant's tier policy and scoring policy, a
//! member's tier (review, approval of a change that waits for a person), the queue of
//! changes awaiting approval, and runs over every member (tier review, scoring) on demand;
//! memberd also runs them on schedule.

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::routes::member_orders::json_document;
use crate::routes::members::{MemberPath, given, member_ref};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ids::TenantId;
use loyalty_proto::member::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_tier_policy, put_tier_policy))
        .routes(routes!(get_scoring_policy, put_scoring_policy))
        .routes(routes!(member_tier))
        .routes(routes!(review_member_tier))
        .routes(routes!(decide_tier_change))
        .routes(routes!(tier_approvals))
        .routes(routes!(review_all_tiers))
        .routes(routes!(score_all))
        .routes(routes!(rotate_key))
}

fn tenant(p: &TenantPath) -> Result<pb::TenantRef, ApiError> {
    Ok(pb::TenantRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
    })
}

/// A body for the member service, which parses it (a mismatch is `400 INVALID_ARGUMENT`
/// naming the problem).
fn put(p: &TenantPath, body: Value) -> Result<pb::PutDocumentRequest, ApiError> {
    Ok(pb::PutDocumentRequest {
        tenant_id: tenant(p)?.tenant_id,
        json: body.to_string(),
    })
}

/// A document from the member service as the reply.
fn reply(document: pb::Document) -> Reply<Value> {
    Ok(Json(json_document(&document.json)?.unwrap_or_default()))
}

/// The tenant's tier policy (see docs/members.md for the fields).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/tier-policy", tag = "programme",
    params(TenantPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_tier_policy(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<Value> {
    reply(s.members().get_tier_policy(tenant(&p)?).await?)
}

/// Sets the tenant's tier policy: tiers with thresholds on rolling 12-month spend or
/// points, earn multipliers and benefits, the review period, grace and approval. Members
/// move under it at their next evaluation.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/tier-policy", tag = "programme",
    params(TenantPath), request_body = Object,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_tier_policy(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<Value>,
) -> Reply<Value> {
    reply(s.members().put_tier_policy(put(&p, body)?).await?)
}

/// The tenant's scoring policy: RFM bands, the churn rule, lifecycle thresholds.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/scoring-policy", tag = "programme",
    params(TenantPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_scoring_policy(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<Value> {
    reply(s.members().get_scoring_policy(tenant(&p)?).await?)
}

/// Sets the tenant's scoring policy; fields left out keep their defaults.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/scoring-policy", tag = "programme",
    params(TenantPath), request_body = Object,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_scoring_policy(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    JsonBody(body): JsonBody<Value>,
) -> Reply<Value> {
    reply(s.members().put_scoring_policy(put(&p, body)?).await?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberTierDto {
    member_id: String,
    tier: Option<String>,
    /// What the ledger multiplies earned points by (10000 = 1x).
    earn_multiplier_bp: u32,
    /// Period, review date, grace, a change awaiting approval, the last transitions.
    #[schema(value_type = Object)]
    state: Option<Value>,
}

/// A member's tier and where it stands in its period.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/tier", tag = "programme",
    params(MemberPath),
    responses((status = 200, body = MemberTierDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn member_tier(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<MemberTierDto> {
    let (tenant, member) = p.ids()?;
    let tier = s
        .members()
        .get_member_tier(member_ref(&tenant, &member))
        .await?;
    Ok(Json(MemberTierDto {
        member_id: tier.member_id,
        tier: given(tier.tier),
        earn_multiplier_bp: tier.earn_multiplier_bp,
        state: json_document(&tier.state_json)?,
    }))
}

/// Evaluates the member's tier now; the decision (`{"decision": "upgrade", ...}`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/tier/reviews", tag = "programme",
    params(MemberPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn review_member_tier(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<Value> {
    let (tenant, member) = p.ids()?;
    reply(
        s.members()
            .review_member_tier(member_ref(&tenant, &member))
            .await?,
    )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DecisionBody {
    /// True to approve the change awaiting approval, false to reject it.
    approve: bool,
}

/// Approves or rejects the member's tier change awaiting approval.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/tier/decisions", tag = "programme",
    params(MemberPath, ("Idempotency-Key" = String, Header)), request_body = DecisionBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn decide_tier_change(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    JsonBody(body): JsonBody<DecisionBody>,
) -> Reply<Value> {
    let (tenant, member) = p.ids()?;
    let request = pb::DecideTierChangeRequest {
        member: Some(member_ref(&tenant, &member)),
        approve: body.approve,
    };
    reply(s.members().decide_tier_change(request).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalsQuery {
    /// The last member id of the previous page.
    after: Option<String>,
    /// 1 to 500; 100 by default.
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingDto {
    member_id: String,
    #[schema(value_type = Object)]
    change: Value,
}

/// Tier changes awaiting approval, by member id.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/tier-approvals", tag = "programme",
    params(TenantPath, ApprovalsQuery),
    responses((status = 200, body = Vec<PendingDto>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn tier_approvals(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<ApprovalsQuery>,
) -> Reply<Vec<PendingDto>> {
    let request = pb::ListTierApprovalsRequest {
        tenant_id: tenant(&p)?.tenant_id,
        after: q.after.unwrap_or_default(),
        limit: q.limit.unwrap_or(100).clamp(1, 500) as u32,
    };
    let approvals = s.members().list_tier_approvals(request).await?;
    approvals
        .pending
        .into_iter()
        .map(|p| {
            Ok(PendingDto {
                member_id: p.member_id,
                change: json_document(&p.change_json)?.unwrap_or_default(),
            })
        })
        .collect::<Result<_, _>>()
        .map(Json)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDto {
    /// Members looked at.
    members: u64,
    /// Members whose tier state or scores changed.
    changed: u64,
}

impl From<pb::Run> for RunDto {
    fn from(r: pb::Run) -> Self {
        Self {
            members: r.members,
            changed: r.changed,
        }
    }
}

/// Reviews every member's tier now (memberd also does this on schedule).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/tier-reviews", tag = "programme",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RunDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn review_all_tiers(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<RunDto> {
    Ok(Json(s.members().review_tiers(tenant(&p)?).await?.into()))
}

/// Scores every member now: RFM, churn risk, lifecycle (memberd also does this on schedule).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/scoring-runs", tag = "programme",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RunDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn score_all(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<RunDto> {
    Ok(Json(s.members().score_members(tenant(&p)?).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotationDto {
    /// Members whose key was re-wrapped under the new tenant key version.
    rewrapped: usize,
}

/// Rotates the tenant's key for personal data: a new key version wraps every member's key
/// (no profile is re-encrypted; reads go on throughout). A member changed during the
/// rotation keeps its older wrapping, still readable, until the next rotation.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/member-key-rotations", tag = "programme",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RotationDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn rotate_key(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<RotationDto> {
    let rotation = s.members().rotate_tenant_key(tenant(&p)?).await?;
    Ok(Json(RotationDto {
        rewrapped: rotation.rewrapped as usize,
    }))
}
