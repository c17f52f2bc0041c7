//! The lucky-draw methods of the in-process client: each request parsed, and the answer as
//! JSON. A draw's seed is `null` until the draw has ended.

use crate::draw::DrawState;
use crate::service::Campaigns;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_proto::campaign::v1 as pb;

fn draw_document(state: &DrawState) -> pb::CampaignDocument {
    let seed = Some(&state.seed).filter(|s| !s.is_empty());
    let value = serde_json::json!({"draw": state.draw, "awarded": state.awarded,
        "points_awarded": state.points_awarded, "seed_sha256": state.seed_sha256,
        "seed": seed});
    pb::CampaignDocument {
        json: value.to_string(),
    }
}

fn document(value: &impl serde::Serialize) -> pb::CampaignDocument {
    pb::CampaignDocument {
        // Plain data: serialising it cannot fail.
        json: serde_json::to_string(value).unwrap_or_default(),
    }
}

pub(super) async fn create(
    c: &Campaigns,
    r: pb::CreateLuckyDrawRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let draw =
        serde_json::from_str(&r.json).map_err(|e| ServiceError::invalid(format!("draw: {e}")))?;
    c.create_draw(&tenant, draw).await?;
    // Answered as it is read, so a running draw's seed stays secret.
    let id = serde_json::from_str::<serde_json::Value>(&r.json)
        .ok()
        .and_then(|v| v["id"].as_str().map(String::from))
        .unwrap_or_default();
    Ok(draw_document(&c.lucky_draw(&tenant, &id).await?))
}

pub(super) async fn get(c: &Campaigns, r: pb::LuckyDrawRef) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(draw_document(&c.lucky_draw(&tenant, &r.draw_id).await?))
}

pub(super) async fn enter(
    c: &Campaigns,
    r: pb::EnterLuckyDrawRequest,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    let member = MemberId::parse(r.member_id)?;
    let entry = c
        .enter_draw(&tenant, (&r.draw_id, &r.entry_id), &member)
        .await?;
    Ok(document(&entry))
}

pub(super) async fn entry(
    c: &Campaigns,
    r: pb::DrawEntryRef,
) -> ServiceResult<pb::CampaignDocument> {
    let tenant = TenantId::parse(r.tenant_id)?;
    Ok(document(
        &c.draw_entry(&tenant, &r.draw_id, &r.entry_id).await?,
    ))
}
