//! The campaign methods of the in-process client: each request parsed, the acting staff
//! member taken from the caller the edge authenticated, and the answer as JSON.

use crate::campaign::Step;
use crate::service::Campaigns;
use crate::service::grants::Rewarded;
use crate::service::referrals;
use loyalty_common::ServiceError;
use loyalty_common::error::{ErrorCode, ServiceResult};
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::campaign::v1 as pb;
use loyalty_proto::transport::FORWARDED;
use serde::Serialize;

fn document(value: &impl Serialize) -> pb::CampaignDocument {
    pb::CampaignDocument {
        // Plain data: serialising it cannot fail.
        json: serde_json::to_string(value).unwrap_or_default(),
    }
}

/// Who is acting: the subject the edge (the gateway or the gRPC guard) authenticated.
fn acting() -> ServiceResult<String> {
    FORWARDED
        .try_with(|f| f.subject.clone())
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::Unauthenticated,
                "a campaign is written and decided by an authenticated staff member",
            )
        })
}

fn note(text: String) -> Option<String> {
    Some(text).filter(|n| !n.is_empty())
}

pub(super) async fn save(
    c: &Campaigns,
    r: pb::SaveCampaignRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let campaign = serde_json::from_str(&r.json)
        .map_err(|e| ServiceError::invalid(format!("campaign: {e}")))?;
    let expected = Some(r.expected_version).filter(|v| *v > 0);
    let view = c
        .save_campaign(&tenant, campaign, &acting()?, expected)
        .await?;
    Ok(document(&view))
}

pub(super) async fn get(c: &Campaigns, r: pb::CampaignRef) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(document(&c.campaign(&tenant, &r.campaign_id).await?))
}

pub(super) async fn list(c: &Campaigns, r: pb::TenantRef) -> ServiceResult<pb::CampaignDocuments> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let views = c.campaigns(&tenant).await?;
    Ok(pb::CampaignDocuments {
        json: views.iter().map(|v| document(v).json).collect(),
    })
}

pub(super) async fn change(
    c: &Campaigns,
    r: pb::ChangeCampaignRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let step = match r.step.as_str() {
        "submit" => Step::Submit,
        "pause" => Step::Pause,
        "resume" => Step::Resume,
        "end" => Step::End,
        _ => {
            return Err(ServiceError::invalid(
                "step: must be submit, pause, resume or end (approve and reject are decisions)",
            ));
        }
    };
    let view = c
        .step_campaign(&tenant, &r.campaign_id, step, &acting()?, note(r.note))
        .await?;
    Ok(document(&view))
}

pub(super) async fn decide(
    c: &Campaigns,
    r: pb::DecideCampaignRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let step = if r.approve {
        Step::Approve
    } else {
        Step::Reject
    };
    let view = c
        .step_campaign(&tenant, &r.campaign_id, step, &acting()?, note(r.note))
        .await?;
    Ok(document(&view))
}

pub(super) async fn dry_run(
    c: &Campaigns,
    r: pb::CampaignRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(document(&c.dry_run(&tenant, &r.campaign_id).await?))
}

pub(super) async fn results(
    c: &Campaigns,
    r: pb::CampaignRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(document(
        &c.campaign_results(&tenant, &r.campaign_id).await?,
    ))
}

pub(super) async fn broadcast(
    c: &Campaigns,
    r: pb::CampaignRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(document(&c.broadcast(&tenant, &r.campaign_id).await?))
}

pub(super) async fn reward(
    c: &Campaigns,
    r: pb::RewardMemberRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let member = MemberId::parse(r.member_id)?;
    match c.reward(&tenant, &r.campaign_id, &member, &r.key).await? {
        Rewarded::Granted(grant) => Ok(document(&grant)),
        Rewarded::Holdout => Ok(document(&serde_json::json!({
            "campaign": r.campaign_id, "member": member.as_str(), "key": r.key,
            "variant": "holdout"}))),
    }
}

pub(super) async fn check_in(
    c: &Campaigns,
    r: pb::CheckInRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let member = MemberId::parse(r.member_id)?;
    Ok(document(
        &c.check_in(&tenant, &r.campaign_id, &member).await?,
    ))
}

pub(super) async fn sweep_birthdays(
    c: &Campaigns,
    r: pb::TenantRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let started = std::time::Instant::now();
    let swept = c.sweep_birthdays_of(&tenant).await?;
    let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(document(&serde_json::json!({"campaigns": swept.campaigns,
        "members": swept.members, "rewarded": swept.rewarded, "took_ms": took_ms})))
}

pub(super) async fn referral_code(
    c: &Campaigns,
    r: pb::MemberReferralsRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let member = MemberId::parse(r.member_id)?;
    let code = c.referral_code(&tenant, &member).await?;
    Ok(document(
        &serde_json::json!({"member_id": member.as_str(), "code": code}),
    ))
}

pub(super) async fn refer(
    c: &Campaigns,
    r: pb::ReferRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let referee = MemberId::parse(r.member_id)?;
    let referral = c.refer(&tenant, &r.campaign_id, &r.code, &referee).await?;
    Ok(document(&referrals::view(&referral)))
}

pub(super) async fn referrals(
    c: &Campaigns,
    r: pb::MemberReferralsRequest,
) -> ServiceResult<pb::CampaignDocuments> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let member = MemberId::parse(r.member_id)?;
    let found = c.referrals_of(&tenant, &member).await?;
    Ok(pb::CampaignDocuments {
        json: found
            .iter()
            .map(|r| document(&referrals::view(r)).json)
            .collect(),
    })
}
