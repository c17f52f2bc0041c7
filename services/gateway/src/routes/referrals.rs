//! Referrals: a member's referral code (made on first asking), a new member's referral by a
//! code in a running referral campaign, recorded by the app at sign-up, and a member's
//! referrals as a referee (`campaign.referrals`). docs/campaigns.md gives the rules.

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
        .routes(routes!(referral_code))
        .routes(routes!(list))
        .routes(routes!(refer))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    tenant: String,
    member: String,
}

impl MemberPath {
    fn request(self) -> Result<pb::MemberReferralsRequest, ApiError> {
        Ok(pb::MemberReferralsRequest {
            tenant_id: TenantId::parse(&self.tenant)?.to_string(),
            member_id: self.member,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CampaignPath {
    tenant: String,
    /// A campaign whose trigger is `referral`.
    campaign: String,
}

fn parsed(json: &str) -> Result<Value, ApiError> {
    Ok(serde_json::from_str(json).map_err(ServiceError::internal)?)
}

/// The member's referral code (`R` and 13 characters), made on first asking; asking again
/// answers the same code. The member's phone, email and ID number are remembered (as
/// one-way digests of their blind indexes), so an account opened later with one of them
/// cannot be its own referee.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/referral-code", tag = "referrals",
    params(MemberPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn referral_code(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    // Required of every POST; a member has one code whatever the key.
    _key: IdempotencyKeyHeader,
) -> Reply {
    let document = s.campaigns()?.get_referral_code(p.request()?).await?;
    Ok(Json(parsed(&document.json)?))
}

/// The member's referrals as a referee, in every campaign: state (`pending`, `qualified`,
/// `reversed`), the qualifying order, and the points a reversal took back.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/referrals", tag = "referrals",
    params(MemberPath),
    responses((status = 200, body = [Object]), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply {
    let documents = s.campaigns()?.list_referrals(p.request()?).await?;
    let referrals = documents
        .json
        .iter()
        .map(|j| parsed(j))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Value::Array(referrals)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReferBody {
    /// The referrer's referral code, as the referee typed or scanned it.
    code: String,
    /// The new member: registered, with no order yet.
    member_id: String,
}

/// Records that a new member was referred by the holder of `code` in a running referral
/// campaign. Sending it again answers the same referral; another referrer for the same
/// member is `409 REFERRAL_EXISTS`, the code's holder itself (or an account sharing a phone,
/// email or ID number the holder presented) `422 SELF_REFERRAL`, a member who has ordered
/// `422 REFERRAL_NOT_ELIGIBLE`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/campaigns/{campaign}/referrals", tag = "referrals",
    params(CampaignPath, ("Idempotency-Key" = String, Header)), request_body = ReferBody,
    responses((status = 200, body = Object), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn refer(
    State(s): State<AppState>,
    Path(p): Path<CampaignPath>,
    // Required of every POST; a referee has one referral per campaign whatever the key.
    _key: IdempotencyKeyHeader,
    JsonBody(body): JsonBody<ReferBody>,
) -> Reply {
    let request = pb::ReferRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        campaign_id: p.campaign,
        code: body.code,
        member_id: body.member_id,
    };
    let document = s.campaigns()?.refer(request).await?;
    Ok(Json(parsed(&document.json)?))
}
