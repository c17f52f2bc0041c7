//! The loyalty programme's member rules: the tenant's tier policy and scoring policy, a
//! member's tier (review, approval of a change that waits for a person), the queue of
//! changes awaiting approval, and runs over every member (tier review, scoring) on demand;
//! memberd also runs them on schedule.

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::routes::members::MemberPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ServiceError;
use loyalty_common::error::ErrorCode;
use loyalty_common::ids::TenantId;
use loyalty_member::rfm::ScoringPolicy;
use loyalty_member::service::{ScoringRun, TierRun};
use loyalty_member::tier::TierPolicy;
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

fn tenant(p: &TenantPath) -> Result<TenantId, ApiError> {
    Ok(TenantId::parse(&p.tenant)?)
}

/// A body as a domain type; a mismatch is `400 INVALID_ARGUMENT` naming the problem.
fn parse<T: serde::de::DeserializeOwned>(body: Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ServiceError::invalid(format!("{what}: {e}")).into())
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The tenant's tier policy (see docs/members.md for the fields).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/tier-policy", tag = "programme",
    params(TenantPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_tier_policy(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<Value> {
    let tenant = tenant(&p)?;
    let policy = s.members().tier_policy(&tenant).await?.ok_or_else(|| {
        ServiceError::new(
            ErrorCode::TierPolicyNotFound,
            format!("tenant {tenant} has no tier policy; PUT one"),
        )
    })?;
    Ok(Json(to_json(&policy)))
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
    let policy: TierPolicy = parse(body, "tier policy")?;
    s.members().put_tier_policy(&tenant(&p)?, &policy).await?;
    Ok(Json(to_json(&policy)))
}

/// The tenant's scoring policy: RFM bands, the churn rule, lifecycle thresholds.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/scoring-policy", tag = "programme",
    params(TenantPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_scoring_policy(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<Value> {
    let policy = s.members().scoring_policy(&tenant(&p)?).await?;
    Ok(Json(to_json(&policy)))
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
    let policy: ScoringPolicy = parse(body, "scoring policy")?;
    s.members()
        .put_scoring_policy(&tenant(&p)?, &policy)
        .await?;
    Ok(Json(to_json(&policy)))
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
    let members = s.members();
    let facts = members.facts(&tenant, &member).await?;
    let policy = members.tier_policy(&tenant).await?;
    Ok(Json(MemberTierDto {
        earn_multiplier_bp: loyalty_member::service::Members::earn_multiplier_bp(
            policy.as_ref(),
            &facts,
        ),
        member_id: facts.member_id,
        tier: facts.tier,
        state: facts.tier_state.as_ref().map(to_json),
    }))
}

/// Evaluates the member's tier now; the decision (`{"decision": "upgrade", ...}`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/tier/reviews", tag = "programme",
    params(MemberPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn review_member_tier(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<Value> {
    let (tenant, member) = p.ids()?;
    let decision = s.members().review_tier(&tenant, &member).await?;
    Ok(Json(to_json(&decision)))
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
    let decision = s
        .members()
        .decide_tier_change(&tenant, &member, body.approve)
        .await?;
    Ok(Json(to_json(&decision)))
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
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let pending = s
        .members()
        .pending_tier_changes(&tenant(&p)?, q.after.as_deref(), limit)
        .await?;
    Ok(Json(
        pending
            .into_iter()
            .map(|(member_id, change)| PendingDto {
                member_id,
                change: to_json(&change),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDto {
    /// Members looked at.
    members: u64,
    /// Members whose tier state or scores changed.
    changed: u64,
}

impl From<TierRun> for RunDto {
    fn from(r: TierRun) -> Self {
        Self {
            members: r.evaluated,
            changed: r.changed,
        }
    }
}

impl From<ScoringRun> for RunDto {
    fn from(r: ScoringRun) -> Self {
        Self {
            members: r.scored,
            changed: r.changed,
        }
    }
}

/// Reviews every member's tier now (memberd also does this on schedule).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/tier-reviews", tag = "programme",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RunDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn review_all_tiers(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<RunDto> {
    Ok(Json(s.members().review_tiers(&tenant(&p)?).await?.into()))
}

/// Scores every member now: RFM, churn risk, lifecycle (memberd also does this on schedule).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/scoring-runs", tag = "programme",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = RunDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn score_all(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply<RunDto> {
    Ok(Json(s.members().score_members(&tenant(&p)?).await?.into()))
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
    let rewrapped = s.members().rotate_tenant_key(&tenant(&p)?).await?;
    Ok(Json(RotationDto { rewrapped }))
}
