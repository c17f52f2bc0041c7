//! Check-ins in the embedded store: each member's last day and streak per campaign, moved on
//! the store's one writer with the check-in's events.

use super::{EmbeddedCampaignStore, Inner, encode, key};
use crate::events::CampaignEvent;
use crate::store::check_ins::{CheckInRepository, CheckedIn, next};
use async_trait::async_trait;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::TenantId;

#[async_trait]
impl CheckInRepository for EmbeddedCampaignStore {
    async fn check_in(
        &self,
        tenant: &TenantId,
        campaign: &str,
        member: &str,
        day: i64,
        events: Vec<CampaignEvent>,
    ) -> ServiceResult<CheckedIn> {
        let row = key(&[
            tenant.as_str().as_bytes(),
            campaign.as_bytes(),
            member.as_bytes(),
        ]);
        self.write_locked(move |inner| {
            let last = Inner::get::<(i64, u32)>(&inner.check_ins, &row)?;
            let checked = next(last, day);
            if checked.new {
                let mut batch = inner.batch();
                batch.insert(
                    &inner.check_ins,
                    row,
                    encode(&(checked.day, checked.streak))?,
                );
                let seq = inner.log(&mut batch, events)?;
                inner.commit(batch, seq)?;
            }
            Ok(checked)
        })
        .await
    }
}
