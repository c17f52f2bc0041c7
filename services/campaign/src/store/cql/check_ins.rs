//! Check-ins on ScyllaDB: an entity partition per campaign and member
//! (`checkin:<campaign>:<member>`), its state the last day and streak, moved by a conditional
//! write with the check-in's events, so racing check-ins of one day move it once.

use super::sales::back_off;
use super::{ScyllaCampaignStore, decode, encode};
use crate::events::CampaignEvent;
use crate::store::check_ins::{CheckInRepository, CheckedIn, next};
use async_trait::async_trait;
use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

const MAX_TRIES: u32 = 50;

#[async_trait]
impl CheckInRepository for ScyllaCampaignStore {
    async fn check_in(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        day: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<CheckedIn> {
        let (t, key) = (tenant.as_str(), format!("checkin:{campaign}:{member}"));
        for tries in 1..=MAX_TRIES {
            let (version, last) = match self.state(t, &key).await? {
                Some((v, body)) => (Some(v), Some(decode::<(i64, u32)>(&body)?)),
                None => (None, None),
            };
            let checked = next(last, day);
            if !checked.new {
                return Ok(checked);
            }
            let body = encode(&(checked.day, checked.streak))?;
            if self
                .commit(t, &key, version, body, Vec::new(), &events)
                .await?
            {
                return Ok(checked);
            }
            back_off(tries).await;
        }
        Err(ServiceError::unavailable(
            "the member's check-in is busy: retry",
        ))
    }
}
