//! Campaigns: head office writes one as JSON (docs/campaigns.md gives its shape;
//! `campaign.campaigns`), submits it, and another staff member approves or rejects it
//! (`campaign.approvals`); it runs between its start and end in its time zone, can be
//! paused, resumed and ended, broadcast to its segment, and a partner's automation rewards
//! one member from it once per `Idempotency-Key` (`campaign.rewards`). A dry run says what it
//! would give, to how many, at what cost, before anyone approves it.

use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem};
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
        .routes(routes!(list, create))
        .routes(routes!(get, rewrite))
        .routes(routes!(change))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(dry_run))
        .routes(routes!(results))
        .routes(routes!(broadcast))
        .routes(routes!(reward))
        .routes(routes!(sweep_birthdays))
        .routes(routes!(check_in))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CampaignPath {
    tenant: String,
    /// 1 to 64 of letters, digits, `- _ .`.
    campaign: String,
}

impl CampaignPath {
    fn reference(self) -> Result<pb::CampaignRef, ApiError> {
        Ok(pb::CampaignRef {
            tenant_id: TenantId::parse(&self.tenant)?.to_string(),
            campaign_id: self.campaign,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StepPath {
    tenant: String,
    campaign: String,
    /// `submit`, `pause`, `resume` or `end`.
    step: String,
}

use super::TenantPath;
use super::document as json;

/// Every campaign of the tenant, with its phase and budget left.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns", tag = "campaigns",
    params(TenantPath),
    responses((status = 200, body = [Object]), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(State(s): State<AppState>, Path(p): Path<TenantPath>) -> Reply {
    let request = pb::TenantRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
    };
    let docs = s.campaigns()?.list_campaigns(request).await?;
    let values = docs
        .json
        .iter()
        .map(|j| serde_json::from_str(j))
        .collect::<Result<Vec<Value>, _>>()
        .map_err(ServiceError::internal)?;
    Ok(Json(Value::Array(values)))
}

/// Writes a new campaign as a draft (the caller is its maker).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns", tag = "campaigns",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    request_body(content = Object, description = "The campaign"),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    // Required of every POST; the campaign's id is what makes its creation idempotent.
    _key: IdempotencyKeyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let request = pb::SaveCampaignRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        json: body.to_string(),
        expected_version: 0,
    };
    json(s.campaigns()?.save_campaign(request).await?)
}

/// A campaign: its definition, status, history, phase and budget counters.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns/{campaign}", tag = "campaigns",
    params(CampaignPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(s): State<AppState>, Path(p): Path<CampaignPath>) -> Reply {
    json(s.campaigns()?.get_campaign(p.reference()?).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RewriteBody {
    /// The version the change was made from.
    version: u64,
    #[schema(value_type = Object)]
    campaign: Value,
}

/// Rewrites a draft or a rejected campaign (it is a draft again, to be submitted anew).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/campaigns/{campaign}", tag = "campaigns",
    params(CampaignPath), request_body = RewriteBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn rewrite(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    JsonBody(body): JsonBody<RewriteBody>,
) -> Reply {
    if body.campaign["id"].as_str() != Some(p.campaign.as_str()) {
        return Err(ServiceError::invalid("campaign.id: must be the id in the path").into());
    }
    let request = pb::SaveCampaignRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        json: body.campaign.to_string(),
        expected_version: body.version.max(1),
    };
    json(s.campaigns()?.save_campaign(request).await?)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NoteBody {
    /// Why (a rejection's reason, a pause's cause).
    #[serde(default)]
    note: String,
}

/// Moves a campaign along: `submit` (for approval), `pause`, `resume` or `end`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/{step}", tag = "campaigns",
    params(StepPath), request_body = NoteBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn change(
    State(s): State<AppState>,
    Path(p): Path<StepPath>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Reply {
    let request = pb::ChangeCampaignRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        campaign_id: p.campaign,
        step: p.step,
        note: body.note,
    };
    json(s.campaigns()?.change_campaign(request).await?)
}

async fn decide(s: AppState, p: CampaignPath, approve: bool, note: String) -> Reply {
    let request = pb::DecideCampaignRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        campaign_id: p.campaign,
        approve,
        note,
    };
    json(s.campaigns()?.decide_campaign(request).await?)
}

/// Approves a submitted campaign; refused to whoever wrote or submitted it.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/approval", tag = "campaigns",
    params(CampaignPath), request_body = NoteBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn approve(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Reply {
    decide(s, p, true, body.note).await
}

/// Rejects a submitted campaign, with the reason; its maker may rewrite and submit it again.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/rejection", tag = "campaigns",
    params(CampaignPath), request_body = NoteBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reject(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Reply {
    decide(s, p, false, body.note).await
}

/// What the campaign would give its segment: members per arm, budget units, and how many
/// members the budget reaches. Writes nothing.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns/{campaign}/dry-run", tag = "campaigns",
    params(CampaignPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn dry_run(State(s): State<AppState>, Path(p): Path<CampaignPath>) -> Reply {
    json(s.campaigns()?.dry_run_campaign(p.reference()?).await?)
}

/// How the campaign is doing, per variant and for the holdout: members reached, rewards
/// paid, coupons redeemed and the rate, orders and spend attributed (a coupon of the
/// campaign on the order, or within `attribution_days` of a reward), incremental spend
/// against the holdout's spend per member, and the return on the discount and points paid.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns/{campaign}/results", tag = "campaigns",
    params(CampaignPath),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn results(State(s): State<AppState>, Path(p): Path<CampaignPath>) -> Reply {
    json(s.campaigns()?.get_campaign_results(p.reference()?).await?)
}

/// Rewards every member of a running campaign's segment not rewarded yet; sending it again
/// reaches only those.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/broadcasts", tag = "campaigns",
    params(CampaignPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn broadcast(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    // Required of every POST; a broadcast rewards each member once whatever the key.
    _key: IdempotencyKeyHeader,
) -> Reply {
    json(s.campaigns()?.broadcast_campaign(p.reference()?).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RewardBody {
    member_id: String,
}

/// Rewards one member from a running campaign, once per `Idempotency-Key` and member (a
/// trigger and a period: `birthday-2027`), within its budget and the member's cap.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/rewards", tag = "campaigns",
    params(CampaignPath, ("Idempotency-Key" = String, Header)), request_body = RewardBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reward(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<RewardBody>,
) -> Reply {
    let request = pb::RewardMemberRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        campaign_id: p.campaign,
        member_id: body.member_id,
        key: key.to_string(),
    };
    json(s.campaigns()?.reward_member(request).await?)
}

/// Runs the tenant's birthday sweep now (it also runs with the other sweeps every
/// `campaign.sweep_interval_secs`): every running birthday campaign rewards the members whose
/// birthday is due, once per member and year, so running it again pays no one twice.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/birthday-sweeps", tag = "campaigns",
    params(TenantPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn sweep_birthdays(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    // Required of every POST; a sweep rewards each member once a year whatever the key.
    _key: IdempotencyKeyHeader,
) -> Reply {
    let request = pb::TenantRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
    };
    json(s.campaigns()?.sweep_birthdays(request).await?)
}

/// Checks a member in to a running check-in campaign (the member's app asks): once per local
/// day in the campaign's time zone, the day's points plus any streak bonus. Asking again the
/// same day answers the same check-in (`new` false) and pays nothing more.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/check-ins", tag = "campaigns",
    params(CampaignPath, ("Idempotency-Key" = String, Header)), request_body = RewardBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn check_in(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    // Required of every POST; a member checks in once a day whatever the key.
    _key: IdempotencyKeyHeader,
    JsonBody(body): JsonBody<RewardBody>,
) -> Reply {
    let request = pb::CheckInRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        campaign_id: p.campaign,
        member_id: body.member_id,
    };
    json(s.campaigns()?.check_in(request).await?)
}
